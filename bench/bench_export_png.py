"""`synthgate export --format yolo|voc` of a folder of PNG images (as a run writes them), against
the floor of opening each file's header.

YOLO and VOC exports read each image's header for its EXIF orientation (and VOC's <depth>):
`image_files.image_header`. Builds N PNGs (default 200 at 512x512: crops of the real photos of
DATA, cycled) and a COCO file with one box each, then times fresh processes (kernel CPU, best
of `--rounds`, rounds interleaved):

- floor: Python opening every image with Pillow (`Image.open` and `.size`: the header only);
- `synthgate export coco.json --format yolo` and `--format voc` (images hard-linked beside the
  labels, as by default).

Printed: CPU seconds and ms per image of each, and the exports' CPU over the floor's.
Usage: python bench/bench_export_png.py [DATA] [--images 200] [--side 512] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from _support import best_of, shared_data
from PIL import Image

FLOOR = (
    "import sys; from pathlib import Path; from PIL import Image\n"
    "for path in sorted(Path(sys.argv[1]).glob('*.png')):\n"
    "    with Image.open(path) as image: image.size\n"
)


def write_images(photos: list[Path], count: int, side: int, folder: Path) -> dict:
    """`count` PNGs of side x side, each a crop of a photo (cycled), and their COCO file."""
    images, annotations = [], []
    for index in range(count):
        with Image.open(photos[index % len(photos)]) as photo:
            photo = photo.convert("RGB").resize((side, side))
        name = f"{index:06d}.png"
        photo.save(folder / name)
        images.append({"id": index + 1, "file_name": name, "width": side, "height": side})
        box = [side / 8, side / 6, side / 2, side / 3]
        annotations.append(
            {"id": index + 1, "image_id": index + 1, "category_id": 1, "bbox": box,
             "area": box[2] * box[3], "iscrowd": 0}
        )  # fmt: skip
    return {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "thing", "supercategory": "thing"}],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data", nargs="?", type=Path, default=shared_data())
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--side", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    photos = sorted((args.data / "images").glob("*.jpg"))
    if not photos:
        raise SystemExit(f"{args.data / 'images'}: no .jpg photos; pass a COCO dataset folder")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        coco = Path(tmp) / "coco.json"
        coco.write_text(json.dumps(write_images(photos, args.images, args.side, folder)))
        export = [sys.executable, "-m", "synthgate", "export", str(coco), "--images", str(folder)]
        found = best_of(
            {
                "floor (Image.open each)": [sys.executable, "-c", FLOOR, str(folder)],
                "export --format yolo": [*export, "-f", "yolo", "-o", f"{tmp}/yolo", "--force"],
                "export --format voc": [*export, "-f", "voc", "-o", f"{tmp}/voc", "--force"],
            },
            args.rounds,
        )
    print(f"{args.images} PNG images of {args.side}x{args.side}, best of {args.rounds} by CPU:")
    floor = found["floor (Image.open each)"].cpu
    for name, measured in found.items():
        print(
            f"  {name:26s} {measured.cpu:6.2f} s CPU ({measured.cpu / args.images * 1000:5.1f} "
            f"ms an image), {measured.wall:6.2f} s wall, x{measured.cpu / floor:.2f} the floor"
        )


if __name__ == "__main__":
    main()
