"""`SampleFigure`: the matplotlib Figure `show` returns, which a notebook shows as a cell's value.

IPython draws a plain `Figure` only once pyplot was imported or `%matplotlib inline` ran (that is
what registers its PNG formatter): in a fresh kernel `sg.show(sample)` printed
`<Figure size 800x1000 with 2 Axes>` and no picture. `_repr_png_` is the display protocol
IPython falls back on; where the inline backend's formatter is registered, it is used instead
(it matches any Figure), so the picture is shown once either way. Imported by show.py only when
a sample is drawn: matplotlib is the notebook extra's.
"""

from __future__ import annotations

import io

from matplotlib.figure import Figure


class SampleFigure(Figure):
    """A Figure that draws itself as PNG for IPython's display, as the inline backend would."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", bbox_inches="tight")
        return buffer.getvalue()
