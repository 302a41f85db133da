"""Readable reports of a balance run: report.md and report.html with their figures.

`write_report(folder, summary, run_dirs=[...])` is the one entry point (render.py); the figures
are drawn by plots.py: bar charts as SVG (svg.py), the example grid as a PNG.
"""

from synthgate.reports.render import write_report

__all__ = ["write_report"]
