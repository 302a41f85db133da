"""Checks by name (`CHECKS`), each `<criterion>_<what>`: image.py (labels), quality.py (pixels),
text.py (spans and texts), dataset.py (whole COCO files); the contract is in base.py.

Importing this package registers every check.
"""

from synthgate.validators.checks import dataset, image, quality, text
from synthgate.validators.checks.base import CHECKS

__all__ = ["CHECKS", "dataset", "image", "quality", "text"]
