"""Dataset formats at the edges: COCO (and later YOLO, balancing, merging) <-> Samples."""
