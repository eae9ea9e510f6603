"""Stage evaluate and what reports on a run: metrics, plots, the paper's table."""
