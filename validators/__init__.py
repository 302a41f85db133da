"""Validators: every sample judged against an analytic rubric before anything can accept it.

rubric.py (YAML -> scores and levels), routing.py (accepted | review | rejected + audit),
checks/ (image, quality, text, dataset checks, registered by name), context.py (batch state:
hashes, taxonomy), validate.py (functions for the pipeline and `synthgate validate`),
sources.py (files -> samples), predictions.py (a detector's COCO results judged as labels),
summary.py (counts, tables, error analysis), defects.py (known defects for benchmarks and gold
review items).
"""
