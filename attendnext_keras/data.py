"""Image data for training and evaluation: sources (an image folder, a TensorFlow Datasets split, the embedded
flowers_mini) and tf.data pipelines that give what the models take: float32 pixels in [0, 255], int32 class indices.

    from attendnext_keras import data
    train = data.load_source("default", "train")       # or a folder, "tfds:cifar10", "tf_flowers", "mnist:3.*"
    val = data.load_source("default", "val")
    train_ds = data.make_dataset(train, 96, 32, training=True, seed=0)
    val_ds = data.make_dataset(val, 96, 64, training=False)
    calibration = data.calibration_images(train, 96, count=200)      # for int8 post-training quantization

Training: random resized crop (area fraction `crop_scale`, aspect ratio 3/4–4/3) and horizontal flip; optional mixup,
which needs soft labels, so with mixup > 0 the labels are one-hot float32 (batch, classes) — use
CategoricalCrossentropy — and without it int32 indices (batch,) — use SparseCategoricalCrossentropy.
Evaluation: `attendnext_keras.preprocessing` (resize, then center crop with crop_pct=0.875), computed in TensorFlow
and equal to the NumPy/Pillow function that runtimes use (within 0.01 of a level; JPEGs decode identically).

With a seed a pipeline is deterministic: shuffling takes the seed, augmentation uses stateless random ops whose
per-example seeds come from a seeded `tf.data.Dataset.random`, and parallel maps keep their order. Epochs differ from
each other (reshuffled, re-randomised), the same way in every run.

Image folders are `root/<split>/<class>/*.jpg|jpeg|png|bmp|gif`, classes in sorted order. They are checked up front
by decoding every image with Pillow (at 1/8 scale for JPEG, ~0.5 ms per image), because a bad file found by tf.data
would stop training mid-epoch:
* unreadable, corrupt or truncated images are skipped, listed in `source.skipped` as (path, reason) and reported in a
  warning ("Skipped N of M image files ..."); hidden files and other extensions are not part of the set and are
  ignored;
* images TensorFlow would decode differently from Pillow (CMYK JPEG, 16-bit grey PNG, palette or 1-bit BMP, other
  formats behind an image extension) are converted up front by `preprocessing.to_rgb` and kept in memory as PNG;
* a missing folder, a class folder without a readable image, fewer than two classes, or split folders that disagree
  on the classes raise errors: each would otherwise give a silently smaller or mislabelled data set.
"""

from __future__ import annotations

import dataclasses
import difflib
import io
import os
import pathlib
import logging
import re

import numpy as np
from PIL import Image

from attendnext_keras._keras import LazyModule
from attendnext_keras.preprocessing import (DEFAULT_CROP_PCT, IMAGE_EXTENSIONS, image_size_pair, scaled_size,
                                            to_rgb)

CROP_ASPECT_RATIO = (3 / 4, 4 / 3)
# Encoded images held by the shuffle buffer of an uncached TFDS split (its files are shuffled as well); folders
# shuffle their whole file list, which costs only the paths.
TFDS_SHUFFLE_BUFFER = 2048
# (Pillow format, mode) of files that TensorFlow's decoders turn into the same pixels as `preprocessing.to_rgb`
# (tests/test_data.py checks each); whatever else Pillow reads is converted up front.
TF_DECODES_LIKE_PILLOW = {("JPEG", "L"), ("JPEG", "RGB"), ("PNG", "1"), ("PNG", "L"), ("PNG", "LA"), ("PNG", "P"),
                          ("PNG", "RGB"), ("PNG", "RGBA"), ("GIF", "L"), ("GIF", "P"), ("BMP", "L"), ("BMP", "RGB")}
logger = logging.getLogger(__name__)
# Deferred: scanning image folders and checking their images work without TensorFlow (seconds to import).
tf = LazyModule("tensorflow")
_TFDS_NAME = re.compile(r"[a-z][a-z0-9_]*([/:][\w.*=,+-]+)*")


class UnknownDatasetError(ValueError):
    """A name that TensorFlow Datasets does not know."""


@dataclasses.dataclass
class ImageSource:
    """The images and labels of one split (an image folder or a TFDS split); `make_dataset` batches them.

    For folders, `files[i]` has label `labels[i]` (an index into `class_names`); `converted` holds PNG versions of the
    files TensorFlow would decode differently, `skipped` the (path, reason) of files that could not be read.
    """
    name: str
    split: str
    class_names: list[str]
    num_examples: int
    files: list[str] = dataclasses.field(default_factory=list, repr=False)
    labels: list[int] = dataclasses.field(default_factory=list, repr=False)
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    converted: dict[str, bytes] = dataclasses.field(default_factory=dict, repr=False)
    tfds_builder: object = dataclasses.field(default=None, repr=False)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


# --------------------------------------------------------------------------------------------------------------------
# Sources


def default_data_dir() -> pathlib.Path:
    """The embedded flowers_mini image folder inside the installed package (5 classes, 80 train + 20 val each)."""
    return pathlib.Path(__file__).resolve().parent / "datasets" / "flowers_mini"


def load_source(spec, split="train", data_dir=None, manual_dir=None) -> ImageSource:
    """The source a spec names: "default" → the embedded flowers_mini; an existing folder → `image_folder`;
    "tfds:NAME" or another TFDS name ("tf_flowers", "cifar10/…", "mnist:3.*") → `tfds_source` (`data_dir` and
    `manual_dir` are TFDS's). """
    if isinstance(spec, os.PathLike):
        return image_folder(spec, split)
    if not isinstance(spec, str):
        raise TypeError(f"A data source is 'default', a folder path or a TFDS name. Received: spec={spec!r}")
    if spec == "default":
        return image_folder(default_data_dir(), split)
    if spec.startswith("tfds:"):
        return tfds_source(spec[len("tfds:"):], split, data_dir, manual_dir)
    if os.path.isfile(spec):
        raise NotADirectoryError(f"'{spec}' is a file; the data must be an image folder (<split>/<class>/ images), "
                                 f"'default' or tfds:NAME.")
    if os.path.isdir(spec):
        return image_folder(spec, split)
    if _TFDS_NAME.fullmatch(spec):
        try:
            return tfds_source(spec, split, data_dir, manual_dir)
        except UnknownDatasetError as error:
            raise UnknownDatasetError(f"{error} There is no folder at {os.path.abspath(spec)} either.") from None
    raise FileNotFoundError(f"No image folder at {os.path.abspath(spec)}, and it is not a TensorFlow Datasets name. "
                            f"Received: spec={spec!r}")


def image_folder(root, split="train") -> ImageSource:
    """Scans `root/<split>/<class>/*` (see the module docstring for what is skipped and what is an error)."""
    root = pathlib.Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"No image folder at {root}. Received: root={str(root)!r}")
    split_dir = root / split
    if not split_dir.is_dir():
        raise FileNotFoundError(f"{root} has no folder for split {split!r} (it holds: {_listing(root)}); images are "
                                f"expected in root/<split>/<class>/. Received: split={split!r}")
    class_dirs = _class_dirs(split_dir)
    class_names = [d.name for d in class_dirs]
    if len(class_dirs) < 2:
        raise ValueError(f"An image folder needs at least 2 classes, one sub-folder each; {split_dir} has "
                         f"{len(class_dirs)}: {class_names}. Received: root={str(root)!r}, split={split!r}")
    _check_other_splits(root, split_dir, class_names)
    source = ImageSource(name=root.name, split=split, class_names=class_names, num_examples=0)
    total = 0
    for label, class_dir in enumerate(class_dirs):
        paths = sorted(p for p in class_dir.iterdir()
                       if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS)
        total += len(paths)
        skipped_before = len(source.skipped)
        for path in paths:
            status, detail = _check_image(path)
            if status == "skip":
                source.skipped.append((str(path), detail))
                continue
            if status == "convert":
                source.converted[str(path)] = detail
            source.files.append(str(path))
            source.labels.append(label)
        if source.labels.count(label) == 0:
            unreadable = len(source.skipped) - skipped_before
            raise ValueError(f"Class folder {class_dir} has no readable image ({'/'.join(IMAGE_EXTENSIONS)}"
                             f"{f'; {unreadable} unreadable' if unreadable else ''}); add images or remove the "
                             f"folder. Received: root={str(root)!r}, split={split!r}")
    source.num_examples = len(source.files)
    if source.skipped:
        shown = "; ".join(f"{path} ({reason})" for path, reason in source.skipped[:5])
        logger.warning("Skipped %d of %d image files in %s: %s%s (all in `source.skipped`).", len(source.skipped),
                       total, split_dir, shown, " ..." if len(source.skipped) > 5 else "")
    return source


def _listing(folder, limit=10):
    names = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    return ", ".join(names[:limit]) + (" ..." if len(names) > limit else "") if names else "nothing"


def _class_dirs(split_dir):
    return sorted((p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith(".")),
                  key=lambda p: p.name)


def _check_other_splits(root, split_dir, class_names):
    """Labels are positions in the sorted class list, so a split with other class folders would mislabel."""
    for other in sorted(root.iterdir()):
        if other == split_dir or not other.is_dir() or other.name.startswith("."):
            continue
        other_names = [d.name for d in _class_dirs(other)]
        if other_names and other_names != class_names:
            raise ValueError(f"The splits of {root} disagree on the classes, so class indices would not match: "
                             f"{split_dir.name}/ has {class_names}, {other.name}/ has {other_names}. Give every split "
                             f"the same class folders. Received: root={str(root)!r}, split={split_dir.name!r}")


def _check_image(path):
    """("ok", None), ("convert", PNG bytes) or ("skip", reason) for one file, from a full decode with Pillow."""
    try:
        with Image.open(path) as image:
            kind = (image.format, image.mode)
            if image.format == "JPEG":  # 1/8 scale still entropy-decodes every byte (truncation shows), twice as fast
                image.draft(image.mode, (max(1, image.width // 8), max(1, image.height // 8)))
            image.load()
        if kind in TF_DECODES_LIKE_PILLOW:
            return "ok", None
        buffer = io.BytesIO()
        Image.fromarray(to_rgb(path)).save(buffer, "PNG", compress_level=1)
        return "convert", buffer.getvalue()
    except Exception as error:  # Pillow raises OSError, SyntaxError, ValueError, DecompressionBombError, ...
        return "skip", f"{type(error).__name__}: {error}"


def tfds_source(name, split="train", data_dir=None, manual_dir=None) -> ImageSource:
    """A TensorFlow Datasets image classification split (downloaded and prepared into `data_dir` if needed).
    Data sets that cannot be downloaded (imagenet2012: ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar from
    image-net.org) are prepared from the archives in `manual_dir`."""
    import tensorflow_datasets as tfds  # deferred: importing TFDS takes seconds and only TFDS sources need it

    base = re.split(r"[/:]", name, maxsplit=1)[0]
    known = tfds.list_builders()
    if base not in known:
        close = difflib.get_close_matches(base, known, n=5)
        raise UnknownDatasetError(f"TensorFlow Datasets has no dataset {base!r}"
                                  f"{'; close names: ' + ', '.join(close) if close else ''}. Received: name={name!r}")
    builder = tfds.builder(name, data_dir=data_dir)
    keys = builder.info.supervised_keys or ()
    features = [builder.info.features[key] for key in keys[:2]] if len(keys) == 2 else []
    if not (features and isinstance(features[0], tfds.features.Image)
            and isinstance(features[1], tfds.features.ClassLabel)):
        raise ValueError(f"TFDS dataset {name!r} is not image classification: its supervised keys should be "
                         f"(Image, ClassLabel). Received: supervised_keys={keys!r}")
    class_names = list(features[1].names)
    if len(class_names) < 2:
        raise ValueError(f"TFDS dataset {name!r} has {len(class_names)} class; at least 2 are needed. "
                         f"Received: class_names={class_names}")
    if not builder.is_prepared():
        _prepare_tfds(tfds, builder, name, manual_dir)
    try:
        count = int(builder.as_dataset(split=split).cardinality())
    except (ValueError, KeyError) as error:
        raise ValueError(f"TFDS dataset {name!r} has no split {split!r} (splits: {list(builder.info.splits)}; "
                         f"slices like 'train[:80%]' work). Received: split={split!r}") from error
    if count < 0:
        count = builder.info.splits[split].num_examples
    return ImageSource(name=name, split=split, class_names=class_names, num_examples=count, tfds_builder=builder)


def _prepare_tfds(tfds, builder, name, manual_dir):
    """Downloads and prepares a TFDS data set once; one that needs manual downloads names what to put where."""
    if manual_dir and not os.path.isdir(manual_dir):
        raise FileNotFoundError(f"data.manual_dir '{manual_dir}' is not a folder.")
    config = tfds.download.DownloadConfig(manual_dir=os.fspath(manual_dir)) if manual_dir else None
    try:
        builder.download_and_prepare(download_config=config)
    except AssertionError as error:  # how TFDS reports a missing or empty manual_dir
        instructions = " ".join((getattr(builder, "MANUAL_DOWNLOAD_INSTRUCTIONS", None) or "").split())
        if not instructions:
            raise
        where = f"'{manual_dir}' lacks them" if manual_dir else "pass their folder as data.manual_dir (--manual-dir)"
        raise ValueError(f"TFDS dataset {name!r} is prepared from archives you download yourself: {where}. TFDS "
                         f"says: {instructions}") from error


# --------------------------------------------------------------------------------------------------------------------
# Pipelines


def make_dataset(source, image_size, batch_size, training, seed=None, augment=True, mixup=0.0, cache=True,
                 drop_remainder=False, crop_pct=DEFAULT_CROP_PCT, crop_scale=(0.08, 1.0)):
    """A batched tf.data pipeline of (float32 images in [0, 255], labels) from an `ImageSource`.

    Args:
        source: from `load_source`, `image_folder` or `tfds_source`.
        image_size: model input size, an int or (height, width).
        batch_size: images per batch.
        training: shuffle, and augment if `augment`; otherwise the evaluation transform, in source order.
        seed: an int makes shuffling and augmentation repeat exactly (whatever ran before in the process: it sets
            TensorFlow's global seed, which tf.data's seeded ops combine with their own); None varies between runs.
        augment: random resized crop and horizontal flip; False uses the evaluation transform for training too.
        mixup: Beta(mixup, mixup) mixing of each training batch with its reverse (0.2 is common; 0 disables).
            Mixed labels are soft, so labels become one-hot float32 (batch, classes): use CategoricalCrossentropy.
            Without mixup labels are int32 class indices: use SparseCategoricalCrossentropy.
        cache: True keeps decoded images in memory (training: at full size before augmentation; evaluation: after
            the transform), a path caches to that file, False decodes every epoch (large sets such as ImageNet).
        drop_remainder: drop the last, smaller batch.
        crop_pct: the evaluation center crop (`attendnext_keras.preprocessing`).
        crop_scale: (min, max) area fraction of the random resized crop; (0.08, 1.0) is Inception's and timm's.
    """
    if not isinstance(source, ImageSource):
        raise TypeError(f"`source` must be an ImageSource, e.g. data.load_source('default', 'train'). "
                        f"Received: {type(source).__name__}")
    size = image_size_pair(image_size)
    scaled_size(size, crop_pct)  # validates crop_pct
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}")
    if not isinstance(mixup, (int, float)) or mixup < 0 or (mixup and not training):
        raise ValueError(f"`mixup` must be a Beta parameter >= 0, and only training mixes. "
                         f"Received: mixup={mixup!r}, training={training!r}")
    if not (len(crop_scale) == 2 and 0 < crop_scale[0] <= crop_scale[1] <= 1):
        raise ValueError(f"`crop_scale` must be (min, max) area fractions in (0, 1]. Received: crop_scale={crop_scale}")
    autotune = tf.data.AUTOTUNE
    random_crops = training and augment
    if seed is not None and training:
        # tf.data combines each op's seed with TensorFlow's global seed as it stands when the pipeline is built, so
        # the same `seed` gave different streams after other seeded work in the process; set it to `seed` here.
        tf.random.set_seed(seed)

    ds = _encoded(source, shuffle=training and not cache, seed=seed)
    if random_crops:
        ds = ds.map(lambda contents, label: (decode_image(contents), label), num_parallel_calls=autotune)
    else:
        ds = ds.map(lambda contents, label: (eval_transform(decode_image(contents), size, crop_pct), label),
                    num_parallel_calls=autotune)
    if cache:
        ds = ds.cache("" if cache is True else os.fspath(cache))
        if training:
            ds = ds.shuffle(source.num_examples, seed=seed, reshuffle_each_iteration=True)
    if random_crops:
        per_example_seeds = tf.data.Dataset.random(seed=_offset(seed, 1), rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip(ds, per_example_seeds).map(
            lambda example, random: (train_transform(example[0], size, random, crop_scale), example[1]),
            num_parallel_calls=autotune)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=autotune)
    if mixup:
        batch_seeds = tf.data.Dataset.random(seed=_offset(seed, 2), rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip(ds, batch_seeds).map(
            lambda batch, random: mix_batch(batch[0], batch[1], source.num_classes, mixup, random),
            num_parallel_calls=autotune)
    return ds.prefetch(autotune)


def _offset(seed, k):
    return None if seed is None else seed + k


def _encoded(source, shuffle, seed):
    """(encoded image bytes, int32 label) per example, shuffled before decoding if `shuffle`."""
    if source.tfds_builder is not None:
        import tensorflow_datasets as tfds  # deferred, as in tfds_source

        image_key = source.tfds_builder.info.supervised_keys[0]
        ds = source.tfds_builder.as_dataset(  # our decoder, so JPEGs decode as in preprocessing (see decode_image)
            split=source.split, as_supervised=True, shuffle_files=shuffle,
            decoders={image_key: tfds.decode.SkipDecoding()}, read_config=tfds.ReadConfig(shuffle_seed=seed))
        if shuffle:
            ds = ds.shuffle(min(source.num_examples, TFDS_SHUFFLE_BUFFER), seed=seed, reshuffle_each_iteration=True)
        return ds.map(lambda contents, label: (contents, tf.cast(label, tf.int32)))
    inline = [source.converted.get(path, b"") for path in source.files]
    ds = tf.data.Dataset.from_tensor_slices((source.files, inline, np.asarray(source.labels, np.int32)))
    if shuffle:
        ds = ds.shuffle(len(source.files), seed=seed, reshuffle_each_iteration=True)
    return ds.map(lambda path, converted, label: (
        tf.cond(tf.strings.length(converted) > 0, lambda: converted, lambda: tf.io.read_file(path)), label),
        num_parallel_calls=tf.data.AUTOTUNE)


def decode_image(contents):
    """Encoded JPEG/PNG/BMP/GIF → uint8 (H, W, 3); the first frame of a GIF.

    JPEG uses the accurate integer IDCT, libjpeg's and Pillow's default: TensorFlow's own default (the fast IDCT)
    is up to 7 levels off Pillow (mean 0.9 on flowers160); the accurate one gives identical pixels.
    """
    image = tf.cond(tf.io.is_jpeg(contents),
                    lambda: tf.io.decode_jpeg(contents, channels=3, dct_method="INTEGER_ACCURATE"),
                    lambda: tf.io.decode_image(contents, channels=3, expand_animations=False))
    image.set_shape([None, None, 3])
    return image


def eval_transform(image, image_size, crop_pct=DEFAULT_CROP_PCT):
    """`preprocessing.preprocess_image` in TensorFlow: uint8 (H, W, 3) → float32 (height, width, 3) in [0, 255].

    Same integer geometry as `preprocessing.eval_geometry`; tf.image.resize(bilinear, antialias=True) is the same
    filter as Pillow's bilinear resize in float mode (1e-3 of a level apart), so no numpy_function is needed and the
    map runs in parallel without the GIL. Clipped like the NumPy path: float weights can overshoot 255 by 1e-4.
    """
    target_h, target_w = image_size_pair(image_size)
    scaled_h, scaled_w = scaled_size(image_size, crop_pct)
    shape = tf.shape(image, out_type=tf.int64)
    height, width = shape[0], shape[1]
    height_binds = scaled_h * width >= scaled_w * height
    resized_h = tf.where(height_binds, tf.constant(scaled_h, tf.int64), (height * scaled_w) // width)
    resized_w = tf.where(height_binds, (width * scaled_h) // height, tf.constant(scaled_w, tf.int64))
    resized = tf.image.resize(image, tf.cast(tf.stack([resized_h, resized_w]), tf.int32), method="bilinear",
                              antialias=True)
    top, left = (resized_h - target_h) // 2, (resized_w - target_w) // 2
    cropped = tf.clip_by_value(resized[top:top + target_h, left:left + target_w], 0.0, 255.0)
    return tf.ensure_shape(cropped, [target_h, target_w, 3])


def train_transform(image, image_size, random, crop_scale=(0.08, 1.0)):
    """Random resized crop and horizontal flip of a uint8 (H, W, 3) image → float32 (height, width, 3) in [0, 255].

    `random` (an int64 scalar) seeds the stateless ops, so the same value gives the same crop and flip.
    """
    begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image), bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]), seed=tf.stack([random, 1]),
        min_object_covered=0.0, aspect_ratio_range=CROP_ASPECT_RATIO, area_range=crop_scale, max_attempts=10,
        use_image_if_no_bounding_boxes=True)  # after 10 failed attempts: the whole image
    crop = tf.slice(image, begin, crop_size)
    size = image_size_pair(image_size)
    resized = tf.clip_by_value(tf.image.resize(crop, size, method="bilinear", antialias=True), 0.0, 255.0)
    flipped = tf.image.stateless_random_flip_left_right(resized, seed=tf.stack([random, 2]))
    return tf.ensure_shape(flipped, [*size, 3])


def mix_batch(images, labels, num_classes, alpha, random):
    """Mixup (Zhang et al. 2018) of a batch with its reverse, λ ~ Beta(alpha, alpha): labels → soft one-hot."""
    gammas = tf.random.stateless_gamma([2], seed=tf.stack([random, 3]), alpha=alpha)
    lam = gammas[0] / tf.maximum(gammas[0] + gammas[1], 1e-12)  # Beta from two Gammas; both can underflow to 0
    one_hot = tf.one_hot(labels, num_classes)
    return (lam * images + (1 - lam) * tf.reverse(images, [0]),
            lam * one_hot + (1 - lam) * tf.reverse(one_hot, [0]))


def calibration_images(source, image_size, count=200, seed=0, crop_pct=DEFAULT_CROP_PCT, split="train"):
    """float32 (count, height, width, 3) images through the evaluation transform: the package's one loader of
    int8 calibration images (export, benchmarks, exploration, the main job).

    `source`: an `ImageSource` or a `load_source` spec (its `split`), which gives a uniform random sample chosen by
    `seed`; a tf.data.Dataset of images or (images, labels), batched or not, already at `image_size`, which gives
    its first `count` images (shuffle it first); or None, which gives uniform noise in [0, 255] (enough for timing:
    latency does not depend on the pixels). Fewer images than `count`: all of them, and a logged notice.
    """
    size = image_size_pair(image_size)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"`count` must be a positive number of images. Received: count={count!r}")
    if source is None:
        return np.random.default_rng(seed).uniform(0, 255, (count, *size, 3)).astype(np.float32)
    if isinstance(source, (str, os.PathLike)):
        source = load_source(source, split)
    if isinstance(source, ImageSource):
        if count > source.num_examples:
            logger.warning("%s/%s has %d images; all are used instead of count=%d.", source.name, source.split,
                           source.num_examples, count)
        ds = _encoded(source, shuffle=True, seed=seed).take(count).map(
            lambda contents, label: eval_transform(decode_image(contents), size, crop_pct),
            num_parallel_calls=tf.data.AUTOTUNE).batch(64)
        return np.concatenate(list(ds.as_numpy_iterator())).astype(np.float32)
    if not isinstance(source, tf.data.Dataset):
        raise TypeError(f"`source` must be None, an ImageSource, a source spec or a tf.data.Dataset. "
                        f"Received: {type(source).__name__}")
    return _first_images(source, size, count)


def _first_images(dataset, size, count):
    images, total = [], 0
    for item in dataset:
        batch = np.asarray(item[0] if isinstance(item, (tuple, list)) else item, dtype=np.float32)
        batch = batch[None] if batch.ndim == 3 else batch
        if batch.shape[1:] != (*size, 3):
            raise ValueError(f"Calibration images must be {(*size, 3)} (the model input). "
                             f"Received: an item of shape {batch.shape}")
        images.append(batch[:count - total])
        total += len(images[-1])
        if total >= count:
            break
    if not total:
        raise ValueError("The dataset holds no images.")
    if total < count:
        logger.warning("The dataset has %d images; all are used instead of count=%d.", total, count)
    return np.concatenate(images)


def describe_source(source, split="train") -> str:
    """A short description of where calibration (or evaluation) images come from."""
    if source is None:
        return "uniform random [0, 255] images"
    if isinstance(source, ImageSource):
        return f"{source.name}/{source.split}"
    return f"{os.fspath(source)} ({split})" if isinstance(source, (str, os.PathLike)) else type(source).__name__


def check_classes(num_outputs: int, class_names, source: ImageSource, model_label: str = "the model") -> None:
    """Refuses a model whose outputs (or saved class names, in order) are not the data's classes: evaluating or
    fine-tuning it would give a silently wrong number."""
    if num_outputs != source.num_classes:
        raise ValueError(f"{model_label} has {num_outputs} outputs but {source.name}/{source.split} has "
                         f"{source.num_classes} classes ({', '.join(source.class_names[:8])}): they do not match.")
    if class_names is not None and list(class_names) != list(source.class_names):
        raise ValueError(f"{model_label} was trained on classes {list(class_names)[:8]} but {source.name}/"
                         f"{source.split} has {source.class_names[:8]} (names or order differ).")


def load_splits(source="default", train_split="train", val_split="val", data_dir=None, manual_dir=None):
    """(train, held-out) ImageSources of one data set, which must have the same classes in the same order."""
    if train_split == val_split:
        logger.warning("The held-out split is the training split ('%s'): accuracy on it measures memory, not "
                       "generalisation.", val_split)
    train = load_source(source, train_split, data_dir, manual_dir)
    val = load_source(source, val_split, data_dir, manual_dir)
    if train.class_names != val.class_names:
        raise ValueError(f"The {train_split} and {val_split} splits have different classes: {train.class_names} vs "
                         f"{val.class_names}")
    return train, val


def holdout_split(source: ImageSource, seed: int = 0):
    """(selection, test): one split of an image folder halved, deterministically and stratified by class, so that
    early stopping and every choice use the selection half and the test half is only ever reported. Each class
    contributes half its images (the odd one to selection), drawn by `seed` from its sorted file list."""
    if source.tfds_builder is not None:
        raise ValueError(f"Halving a TFDS split is not supported ({source.name}/{source.split}); give a separate test "
                         f"split instead (e.g. test_split='test').")
    rng = np.random.default_rng(seed)
    labels = np.asarray(source.labels)
    selection, test = [], []
    for label, name in enumerate(source.class_names):
        members = np.flatnonzero(labels == label)
        if len(members) < 2:
            raise ValueError(f"{source.name}/{source.split} has {len(members)} image(s) of class '{name}': at least "
                             f"2 per class are needed to halve it into selection and test parts.")
        members = members[rng.permutation(len(members))]
        half = (len(members) + 1) // 2
        selection.extend(members[:half].tolist())
        test.extend(members[half:].tolist())
    return (_subset(source, sorted(selection), f"{source.split}[selection]"),
            _subset(source, sorted(test), f"{source.split}[test]"))


def _subset(source: ImageSource, indices, split) -> ImageSource:
    files = [source.files[i] for i in indices]
    return dataclasses.replace(source, split=split, num_examples=len(files), files=files,
                               labels=[source.labels[i] for i in indices], skipped=[],
                               converted={f: source.converted[f] for f in files if f in source.converted})
