"""Builds the embedded default data set, attendnext_keras/datasets/flowers_mini, from the shared flowers160 folder.

    python tools/make_embedded_data.py [--source ../shared/data/flowers160]

5 classes × (80 train + 20 val) real photographs from TensorFlow's flower_photos (tf_flowers), so that the main job
trains offline on a fresh machine. Selection is deterministic: the first N file names per class in sorted order
(Flickr ids, so effectively a random sample) from flowers160's own train and val splits, which keeps train and val
disjoint. Each image is resized so that its shorter side is 80 px (aspect ratio kept) and re-encoded as a baseline
JPEG (quality 85, optimised Huffman tables, no metadata), which keeps the whole set under ~2 MB. Running it twice
gives identical files.
"""

import argparse
import pathlib
import shutil

from PIL import Image

REPO = pathlib.Path(__file__).resolve().parents[1]
TARGET = REPO / "attendnext_keras" / "datasets" / "flowers_mini"
COUNTS = {"train": 80, "val": 20}
SHORTER_SIDE = 80
QUALITY = 85

README = """# flowers_mini

The embedded default data set of `attendnext_keras` (`attendnext_keras.data.load_source("default", split)`): a tiny
real subset of TensorFlow's **flower_photos** (the `tf_flowers` dataset of TensorFlow Datasets), shipped inside the
package so that the main job can train and calibrate offline on a fresh machine.

    flowers_mini/train/<class>/*.jpg   {train_total} images ({train_each} per class)
    flowers_mini/val/<class>/*.jpg     {val_total} images ({val_each} per class)
    classes: {classes}
    total size: {size_kb:.0f} KB

**Source**: https://storage.googleapis.com/download.tensorflow.org/example_images/flower_photos.tgz
(TensorFlow Datasets: `tf_flowers`), via the project's shared copy `flowers160` (shorter side 160 px).

**How it was made**: `tools/make_embedded_data.py`. For each class, the first {train_each} file names in sorted order of
flowers160's train split and the first {val_each} of its val split (train and val stay disjoint); each photograph
is resized (Lanczos) so that its shorter side is {side} px, aspect ratio kept, and saved as a baseline JPEG at
quality {quality} (optimised Huffman tables) without metadata. File names are the original Flickr-derived names.

**Licence**: the photographs are licensed under the Creative Commons Attribution 2.0 licence (CC-BY 2.0,
https://creativecommons.org/licenses/by/2.0/). They were resized and re-encoded (a change under the licence). The
photographers are credited in the LICENSE.txt file of the original archive (flower_photos.tgz, link above), which
lists each image with its author and source URL on Flickr; the file names here are the original ones, so each image
can be looked up there.
"""


def build(source: pathlib.Path, target: pathlib.Path = TARGET):
    if target.exists():
        shutil.rmtree(target)
    classes = sorted(p.name for p in (source / "train").iterdir() if p.is_dir())
    for split, count in COUNTS.items():
        for name in classes:
            files = sorted((source / split / name).glob("*.jpg"))[:count]
            if len(files) < count:
                raise ValueError(f"{source / split / name} has {len(files)} images; {count} are needed.")
            out_dir = target / split / name
            out_dir.mkdir(parents=True)
            for path in files:
                with Image.open(path) as image:
                    image = image.convert("RGB")
                    scale = SHORTER_SIDE / min(image.size)
                    size = (max(SHORTER_SIDE, round(image.width * scale)),
                            max(SHORTER_SIDE, round(image.height * scale)))
                    image.resize(size, Image.LANCZOS).save(out_dir / path.name, "JPEG", quality=QUALITY,
                                                           optimize=True)
    size = sum(p.stat().st_size for p in target.rglob("*.jpg"))
    (target / "README.md").write_text(README.format(
        train_total=COUNTS["train"] * len(classes), train_each=COUNTS["train"], val_total=COUNTS["val"] * len(classes),
        val_each=COUNTS["val"], classes=", ".join(classes), size_kb=size / 1024, side=SHORTER_SIDE, quality=QUALITY))
    return size


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=pathlib.Path, default=REPO.parent / "shared" / "data" / "flowers160")
    args = parser.parse_args()
    size = build(args.source)
    print(f"Wrote {TARGET} ({size / 1024:.0f} KB of JPEG).")


if __name__ == "__main__":
    main()
