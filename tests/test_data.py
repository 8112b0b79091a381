"""Data sources, tf.data pipelines and the NumPy/Pillow evaluation preprocessing (attendnext_keras.data and
.preprocessing).

Real images: the embedded flowers_mini and the shared flowers160; TFDS through `tfds.testing.mock_data`, which works
offline for tf_flowers (its features come from the builder's code; only split sizes are missing, which the
source takes from the mocked dataset). Bad inputs are small images written with Pillow into tmp_path.
"""

import dataclasses
import struct
import subprocess
import sys
import re
import zlib

import numpy as np
import pytest
from PIL import Image

from conftest import REPO
from attendnext_keras import data, preprocessing

# tf.image.resize(bilinear, antialias=True) and Pillow's float-mode bilinear resize are the same filter; measured
# 1.4e-3 of a level at most on flowers images (float32 rounding). JPEG decoding is identical (accurate IDCT).
EVAL_TOLERANCE = 0.01
FLOWER_CLASSES = ["daisy", "dandelion", "roses", "sunflowers", "tulips"]


def batches(ds):
    images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(images), np.concatenate(labels)


def save(image, path, format=None, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format, **kwargs)
    return path


def png16(array):
    """A 16-bit PNG (grey, grey+alpha, RGB or RGBA by channel count), which Pillow cannot write for colour."""
    array = array if array.ndim == 3 else array[..., None]
    height, width, channels = array.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    raw = b"".join(b"\x00" + array[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def photo(rng, size=(30, 20)):
    """A smooth random colour image (JPEG-friendly), width × height."""
    small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return Image.fromarray(small).resize(size, Image.BILINEAR)


def two_class_folder(root, rng, per_class=3, split="train"):
    for name in ("cat", "dog"):
        for i in range(per_class):
            save(photo(rng), root / split / name / f"{i}.jpg")
    return root


# --------------------------------------------------------------------------------------------------------------------
# preprocessing.py: the NumPy/Pillow definition


def test_preprocessing_and_data_modules_do_not_import_tensorflow():
    code = ("import sys, attendnext_keras.preprocessing, attendnext_keras.data; "
            "print('tensorflow' in sys.modules, 'tensorflow_datasets' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.split() == ["False", "False"]


def test_eval_geometry_resizes_the_binding_side_then_centre_crops():
    # floor(96 / 0.875) = 109: the shorter side becomes 109, the longer floor(213 * 109 / 160) = 145.
    assert preprocessing.eval_geometry(160, 213, 96) == (109, 145, 6, 24)
    assert preprocessing.eval_geometry(213, 160, 96) == (145, 109, 24, 6)
    assert preprocessing.eval_geometry(160, 213, 96, crop_pct=1.0) == (96, 127, 0, 15)
    # Non-square target (64 high, 80 wide → covers 73 × 91): width binds for a 100 × 100 image.
    assert preprocessing.eval_geometry(100, 100, (64, 80)) == (91, 91, 13, 5)
    with pytest.raises(ValueError, match=r"crop_pct.*Received: crop_pct=1.5"):
        preprocessing.eval_geometry(10, 10, 8, crop_pct=1.5)
    with pytest.raises(ValueError, match=r"Received: image_size=\(8, 0\)"):
        preprocessing.preprocess_image(np.zeros((10, 10, 3), np.uint8), (8, 0))


def test_to_rgb_converts_arrays_of_any_layout_and_depth():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert np.array_equal(preprocessing.to_rgb(grey), np.repeat(grey[..., None], 3, -1))
    assert np.array_equal(preprocessing.to_rgb(grey[..., None]), np.repeat(grey[..., None], 3, -1))
    rgba = np.dstack([grey, grey + 1, grey + 2, np.zeros_like(grey)])
    assert np.array_equal(preprocessing.to_rgb(rgba), rgba[..., :3])  # alpha dropped, like TensorFlow
    assert np.array_equal(preprocessing.to_rgb(np.full((2, 2), 0x12FF, np.uint16))[..., 0], np.full((2, 2), 0x12))
    floats = preprocessing.to_rgb(np.array([[-3.0, 10.4, 10.6, 300.0]]))
    assert floats.dtype == np.uint8 and floats[0, :, 0].tolist() == [0, 10, 11, 255]
    with pytest.raises(ValueError, match=r"Received: shape=\(3, 4, 2\)"):
        preprocessing.to_rgb(np.zeros((3, 4, 2)))


def test_preprocess_image_takes_paths_pil_images_and_arrays_alike(flowers_dir):
    path = sorted((flowers_dir / "val" / "roses").glob("*.jpg"))[0]
    from_path = preprocessing.preprocess_image(path, 96)
    assert from_path.shape == (96, 96, 3) and from_path.dtype == np.float32
    assert 0 <= from_path.min() and from_path.max() <= 255 and from_path.std() > 10
    with Image.open(path) as image:
        assert np.array_equal(preprocessing.preprocess_image(image, 96), from_path)
        assert np.array_equal(preprocessing.preprocess_image(np.asarray(image), 96), from_path)
    assert preprocessing.preprocess_image(path, (64, 80), crop_pct=1.0).shape == (64, 80, 3)


# --------------------------------------------------------------------------------------------------------------------
# Sources and pipelines on real images


def test_embedded_default_is_small_real_and_in_the_package_data():
    root = data.default_data_dir()
    train, val = data.load_source("default", "train"), data.load_source("default", "val")
    for source, each in ((train, 80), (val, 20)):
        assert source.class_names == FLOWER_CLASSES and source.skipped == [] and not source.converted
        assert source.num_examples == 5 * each and np.bincount(source.labels).tolist() == [each] * 5
    assert not {p.rsplit("/", 1)[-1] for p in train.files} & {p.rsplit("/", 1)[-1] for p in val.files}
    with Image.open(train.files[0]) as image:
        assert min(image.size) == 80 and image.format == "JPEG"
    total = sum(p.stat().st_size for p in root.rglob("*.jpg"))
    assert total <= 2.1e6, f"the embedded images take {total} bytes"
    readme = (root / "README.md").read_text()
    assert "CC-BY 2.0" in readme and "flower_photos.tgz" in readme and "LICENSE.txt" in readme
    assert '"datasets/flowers_mini/*/*/*.jpg"' in (REPO / "setup.py").read_text()


def test_image_folder_reads_flowers160_classes_and_counts(flowers_dir):
    val = data.image_folder(flowers_dir, "val")
    assert val.class_names == FLOWER_CLASSES and val.name == "flowers160" and val.skipped == []
    assert np.bincount(val.labels).tolist() == [127, 180, 129, 140, 160] and val.num_examples == 736


def test_eval_pipeline_equals_numpy_preprocessing_on_real_images(flowers_dir):
    val = data.image_folder(flowers_dir, "val")
    subset = dataclasses.replace(val, files=val.files[::37], labels=val.labels[::37], num_examples=len(val.files[::37]))
    for size, crop_pct in ((96, 0.875), ((64, 80), 1.0)):
        images, labels = batches(data.make_dataset(subset, size, 8, training=False, crop_pct=crop_pct))
        expected = np.stack([preprocessing.preprocess_image(f, size, crop_pct) for f in subset.files])
        assert labels.tolist() == subset.labels and images.dtype == np.float32
        assert np.abs(images - expected).max() < EVAL_TOLERANCE


def test_training_pipeline_shapes_ranges_and_labels():
    train = data.load_source("default", "train")
    ds = data.make_dataset(train, 96, 32, training=True, seed=0)
    assert int(ds.cardinality()) == 13  # 400 / 32, last batch of 16 kept
    images, labels = batches(ds)
    assert images.shape == (400, 96, 96, 3) and images.dtype == np.float32 and labels.dtype == np.int32
    assert images.min() >= 0 and images.max() <= 255 and images.max() > 250
    assert np.bincount(labels).tolist() == [80] * 5  # each image once per epoch, shuffled
    assert labels[:40].tolist() != sorted(labels[:40].tolist())
    dropped = data.make_dataset(train, 64, 48, training=True, seed=0, drop_remainder=True, cache=False)
    assert [x.shape[0] for x, _ in dropped] == [48] * 8


def test_same_seed_same_batches_other_seed_or_epoch_differs():
    train = data.load_source("default", "train")

    def first_batches(seed, **kwargs):
        return [(x.numpy(), y.numpy()) for x, y in data.make_dataset(train, 64, 16, True, seed=seed, **kwargs).take(2)]

    for kwargs in ({}, {"cache": False}, {"mixup": 0.2}):
        a, b, c = first_batches(7, **kwargs), first_batches(7, **kwargs), first_batches(8, **kwargs)
        assert all(np.array_equal(x, y) for batch_a, batch_b in zip(a, b) for x, y in zip(batch_a, batch_b))
        assert not np.array_equal(a[0][0], c[0][0])
    ds = data.make_dataset(train, 64, 400, True, seed=7)
    (epoch1, labels1), (epoch2, labels2) = [(x.numpy(), y.numpy()) for x, y in ds.repeat(2)]
    assert not np.array_equal(labels1, labels2)  # reshuffled each epoch, and augmented anew (not just reordered):
    assert not np.allclose(np.sort(epoch1.mean((1, 2, 3))), np.sort(epoch2.mean((1, 2, 3))))


def test_mixup_gives_soft_one_hot_labels():
    train = data.load_source("default", "train")
    images, labels = next(iter(data.make_dataset(train, 64, 32, training=True, seed=1, mixup=0.4)))
    labels = labels.numpy()
    assert labels.shape == (32, 5) and labels.dtype == np.float32
    assert np.allclose(labels.sum(1), 1) and labels.min() >= 0
    assert (labels.max(1) < 0.999).any()  # some rows are mixtures
    assert 0 <= images.numpy().min() and images.numpy().max() <= 255
    with pytest.raises(ValueError, match=r"mixup.*Received: mixup=0.2, training=False"):
        data.make_dataset(train, 64, 32, training=False, mixup=0.2)


def test_calibration_images_are_a_seeded_sample_of_eval_images(caplog):
    train = data.load_source("default", "train")
    a, b = data.calibration_images(train, 64, count=40), data.calibration_images(train, 64, count=40)
    c = data.calibration_images(train, 64, count=40, seed=1)
    assert a.shape == (40, 64, 64, 3) and a.dtype == np.float32 and np.array_equal(a, b)
    assert not np.array_equal(a, c)
    # Each is a real image through the evaluation transform.
    assert any(np.abs(preprocessing.preprocess_image(f, 64) - a[0]).max() < EVAL_TOLERANCE for f in train.files)
    assert data.calibration_images("default", 64).shape[0] == 200  # a spec: its train split (400 images)
    assert data.calibration_images(data.load_source("default", "val"), 64).shape[0] == 100
    assert "flowers_mini/val has 100 images; all are used instead of count=200" in caplog.text
    from_ds = data.calibration_images(data.make_dataset(train, 64, 16, training=False), 64, count=20)
    assert np.array_equal(from_ds, batches(data.make_dataset(train, 64, 16, training=False))[0][:20])
    with pytest.raises(ValueError, match=r"\(64, 64, 3\).*Received: an item of shape \(16, 32, 32, 3\)"):
        data.calibration_images(data.make_dataset(train, 32, 16, training=False), 64)


def test_tfds_source_through_mock_data(tmp_path):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=12):
        source = data.load_source("tfds:tf_flowers", "train", data_dir=tmp_path)
        assert source.class_names == ["dandelion", "daisy", "tulips", "sunflowers", "roses"]  # TFDS's order
        assert source.num_examples == 12 and source.tfds_builder is not None
        assert data.load_source("tf_flowers", data_dir=tmp_path).num_examples == 12
        images, labels = batches(data.make_dataset(source, 32, 5, training=False))
        assert images.shape == (12, 32, 32, 3) and labels.dtype == np.int32 and set(labels) <= set(range(5))
        first = [next(iter(data.make_dataset(source, 32, 4, True, seed=3)))[0].numpy() for _ in range(2)]
        assert np.array_equal(*first) and 0 <= first[0].min() and first[0].max() <= 255
        assert data.calibration_images(source, 32, count=6).shape == (6, 32, 32, 3)


# --------------------------------------------------------------------------------------------------------------------
# Bad input


def test_unknown_tfds_name_missing_folder_and_non_image_dataset():
    with pytest.raises(ValueError, match=r"no dataset 'tf_flowrs'; close names: tf_flowers.*Received: "
                                         r"name='tf_flowrs'"):
        data.tfds_source("tf_flowrs")
    with pytest.raises(ValueError, match=r"close names: tf_flowers.*no folder at .*tf_flowrs either"):
        data.load_source("tf_flowrs")
    with pytest.raises(ValueError, match=r"not image classification.*Received: supervised_keys=\('text', 'label'\)"):
        data.tfds_source("imdb_reviews")
    with pytest.raises(FileNotFoundError, match=r"No image folder at .*nowhere.*Received: spec='./nowhere'"):
        data.load_source("./nowhere")
    with pytest.raises(TypeError, match=r"Received: spec=3"):
        data.load_source(3)


def test_missing_root_or_split_folder_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"No image folder at .*absent"):
        data.image_folder(tmp_path / "absent")
    two_class_folder(tmp_path, np.random.default_rng(0))
    with pytest.raises(FileNotFoundError, match=r"has no folder for split 'val' \(it holds: train\).*"
                                                r"Received: split='val'"):
        data.image_folder(tmp_path, "val")


def test_corrupt_and_truncated_files_are_skipped_counted_and_reported(tmp_path, rng, caplog):
    two_class_folder(tmp_path, rng, per_class=4)
    good = (tmp_path / "train" / "cat" / "0.jpg").read_bytes()
    (tmp_path / "train" / "cat" / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (tmp_path / "train" / "dog" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (tmp_path / "train" / "dog" / "empty.jpeg").write_bytes(b"")
    (tmp_path / "train" / "dog" / "notes.txt").write_text("not an image")  # other extensions: not part of the set
    (tmp_path / "train" / "dog" / ".hidden.jpg").write_bytes(b"")
    source = data.image_folder(tmp_path, "train")
    assert re.search(r"Skipped 3 of 11 image files in .*train: .*truncated.jpg \(OSError: ", caplog.text)
    assert source.num_examples == 8 and np.bincount(source.labels).tolist() == [4, 4]
    assert sorted(p.rsplit("/", 1)[-1] for p, _ in source.skipped) == ["corrupt.png", "empty.jpeg", "truncated.jpg"]
    assert all(reason for _, reason in source.skipped)
    images, labels = batches(data.make_dataset(source, 16, 3, training=True, seed=0))  # nothing left to fail on
    assert images.shape == (8, 16, 16, 3)


def test_empty_or_unreadable_class_folder_is_an_error(tmp_path, rng):
    two_class_folder(tmp_path, rng)
    (tmp_path / "train" / "bird").mkdir()
    with pytest.raises(ValueError, match=r"Class folder .*train/bird has no readable image.*Received: root="):
        data.image_folder(tmp_path, "train")
    (tmp_path / "train" / "bird" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(ValueError, match=r"train/bird has no readable image \(.*; 1 unreadable\)"):
        data.image_folder(tmp_path, "train")


def test_one_class_and_disagreeing_splits_are_errors(tmp_path, rng):
    save(photo(rng), tmp_path / "one" / "train" / "cat" / "0.jpg")
    with pytest.raises(ValueError, match=r"at least 2 classes.*has 1: \['cat'\]"):
        data.image_folder(tmp_path / "one", "train")
    two_class_folder(tmp_path / "two", rng, split="train")
    save(photo(rng), tmp_path / "two" / "val" / "cat" / "0.jpg")
    save(photo(rng), tmp_path / "two" / "val" / "cow" / "0.jpg")
    with pytest.raises(ValueError, match=r"disagree on the classes.*train/ has \['cat', 'dog'\], "
                                         r"val/ has \['cat', 'cow'\]"):
        data.image_folder(tmp_path / "two", "train")


def test_every_image_mode_decodes_like_pillow(tmp_path, rng):
    """Grey, alpha, palette, 1-bit, CMYK, 16-bit, BMP and GIF variants: none skipped, and the tf.data pixels equal
    `preprocessing` (the runtime's path) — directly where TensorFlow decodes them, via PNG where it would not."""
    base = photo(rng)
    rgba = base.convert("RGBA")
    rgba.putalpha(Image.fromarray(rng.integers(0, 256, (20, 30), dtype=np.uint8)))
    cases = {
        "jpeg_grey.jpg": (base.convert("L"), "JPEG"), "jpeg_cmyk.jpg": (base.convert("CMYK"), "JPEG"),
        "png_grey.png": (base.convert("L"), "PNG"), "png_la.png": (base.convert("LA"), "PNG"),
        "png_rgba.png": (rgba, "PNG"), "png_palette.png": (base.convert("P"), "PNG"),
        "png_1bit.png": (base.convert("1"), "PNG"), "bmp_rgb.bmp": (base, "BMP"),
        "bmp_grey.bmp": (base.convert("L"), "BMP"), "bmp_palette.bmp": (base.convert("P"), "BMP"),
        "bmp_1bit.bmp": (base.convert("1"), "BMP"), "gif_palette.gif": (base.convert("P"), "GIF"),
        "gif_grey.gif": (base.convert("L"), "GIF"),
    }
    for name, (image, format) in cases.items():
        save(image, tmp_path / "train" / ("a" if name < "c" else "b") / name, format)
    save(base.convert("P"), tmp_path / "train" / "b" / "png_palette_alpha.png", transparency=3)
    save(base.convert("P"), tmp_path / "train" / "b" / "gif_animated.gif", save_all=True,
         append_images=[Image.fromarray(255 - np.asarray(base)).convert("P")])
    for channels in (1, 2, 3, 4):
        (tmp_path / "train" / "b" / f"png16_{channels}.png").write_bytes(
            png16(rng.integers(0, 65536, (20, 30, channels), dtype=np.uint16)))
    source = data.image_folder(tmp_path, "train")
    assert source.skipped == [] and source.num_examples == len(cases) + 6
    converted = sorted(p.rsplit("/", 1)[-1] for p in source.converted)
    assert {"jpeg_cmyk.jpg", "bmp_palette.bmp", "bmp_1bit.bmp", "png16_1.png"} <= set(converted)
    import tensorflow as tf

    for path in source.files:
        if path not in source.converted:  # TensorFlow's own decoder: the same pixels as Pillow + to_rgb
            decoded = data.decode_image(tf.io.read_file(path)).numpy()
            assert np.array_equal(decoded, preprocessing.to_rgb(path)), path
    images, _ = batches(data.make_dataset(source, 16, 8, training=False, crop_pct=1.0))
    expected = np.stack([preprocessing.preprocess_image(path, 16, crop_pct=1.0) for path in source.files])
    assert np.abs(images - expected).max() < EVAL_TOLERANCE
    grey16 = tmp_path / "train" / "b" / "png16_1.png"  # 16-bit grey keeps its high byte (Pillow alone saturates)
    with Image.open(grey16) as image:
        assert np.array_equal(preprocessing.to_rgb(grey16)[..., 0], np.asarray(image) >> 8)


def test_holdout_split_is_stratified_disjoint_and_deterministic():
    source = data.load_source("default", "val")
    selection, test = data.holdout_split(source, seed=0)
    assert selection.num_examples == test.num_examples == 50
    assert not set(selection.files) & set(test.files)
    assert sorted(selection.files + test.files) == sorted(source.files)
    for half in (selection, test):
        assert [half.labels.count(k) for k in range(5)] == [10] * 5  # each class halved
    assert data.holdout_split(source, seed=0)[1].files == test.files  # the same split every time
    assert data.holdout_split(source, seed=1)[1].files != test.files
    assert selection.split == "val[selection]" and test.split == "val[test]"
    tiny = data.ImageSource(name="tiny", split="val", class_names=["a", "b"], num_examples=3,
                            files=["x", "y", "z"], labels=[0, 0, 1])
    with pytest.raises(ValueError, match="1 image\\(s\\) of class 'b': at least 2 per class"):
        data.holdout_split(tiny)


def test_calibration_images_from_folders_datasets_or_noise():
    images = data.calibration_images("default", 32, count=3, split="val")
    assert images.shape == (3, 32, 32, 3) and images.dtype == np.float32 and 0 <= images.min() < images.max() <= 255
    noise = data.calibration_images(None, 32, count=2)
    assert noise.shape == (2, 32, 32, 3) and "uniform" in data.describe_source(None)
    with pytest.raises(ValueError, match="`count` must be a positive number of images"):
        data.calibration_images(None, 32, count=0)


def test_a_file_given_as_data_and_a_held_out_split_that_is_the_training_split(tmp_path, caplog):
    afile = tmp_path / "afile.txt"
    afile.write_text("x")
    with pytest.raises(NotADirectoryError, match="afile.txt' is a file; the data must be an image folder"):
        data.load_source(str(afile))
    data.load_splits("default", "train", "train")
    assert "held-out split is the training split ('train')" in caplog.text
