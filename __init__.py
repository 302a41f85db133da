"""synthgate: labelled synthetic data, judged by a rubric and by people before it is merged."""

__version__ = "0.1.0"
