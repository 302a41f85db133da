"""Pure dataset formats: COCO, JSONL, YOLO and VOC readers, writers and checks; no pipeline, no database."""
