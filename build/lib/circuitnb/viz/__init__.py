"""Figures, live widgets and offline explorers."""
