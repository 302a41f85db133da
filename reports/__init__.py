"""Readable reports of a balance run: report.md and report.html with PNG plots.

`write_report(folder, summary, run_dirs=[...])` is the one entry point (render.py); the figures
are drawn by plots.py with matplotlib's Agg backend.
"""

from synthgate.reports.render import write_report

__all__ = ["write_report"]
