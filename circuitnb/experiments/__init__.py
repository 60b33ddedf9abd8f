"""One function per paper table or figure; each returns a tidy pandas frame."""
from .data_model import attribute_shares, mse_summary, mse_table, natural_summary

__all__ = ["attribute_shares", "mse_summary", "mse_table", "natural_summary"]
