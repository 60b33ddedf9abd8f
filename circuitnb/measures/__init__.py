"""Paper quantities, statistics and verdicts."""
