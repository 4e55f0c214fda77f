"""Figures and reports: PNG figures drawn on Agg canvases (never pyplot) and the HTML report of a run."""
