"""Checks by name (`CHECKS`), each `<criterion>_<what>`: image.py (labels), quality.py (pixels),
text.py (spans and texts), dataset.py (whole COCO files); the contract is in base.py."""
