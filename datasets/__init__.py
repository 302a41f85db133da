"""Real datasets at the edges: COCO/YOLO/VOC formats, balancing, merging, augmentation."""
