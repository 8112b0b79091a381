"""Presets: trained models as folders to load, share and fine-tune, following keras-hub's preset layout.

    import attendnext_keras as an
    an.list_presets()                                              # ['micro_flowers160_96', 'micro_flowers_mini64']
    model = an.from_preset("micro_flowers_mini64")                  # Keras 3, logits, the preset's 64 px
    qat_ready = an.from_preset("micro_flowers_mini64", flavour="tf_keras")           # for tfmot
    an.decode_predictions(model(images), top=3, class_names="micro_flowers_mini64")  # [[("daisy", 0.71), ...]]
    new = an.from_preset("micro_flowers160_96", classes=3)          # backbone loaded, new classifier head
    an.save_preset(model, "presets/mine", class_names=[...], recipe=config, metrics={...})
    an.upload_preset("presets/mine", "hf://user/mine")              # or kaggle://user/model/keras/variation

`AttendNeXt(weights="micro_flowers_mini64")` loads a shipped preset too (resolved in `preset_store`, below `models`).
The folder format (config.json, spec.json, model.weights.h5, metadata.json, README.md) is described in
`attendnext_keras.preset_store`; this module writes it, builds models from it and fine-tunes them.
"""

from __future__ import annotations

import datetime
import importlib
import math
import os

import numpy as np

from attendnext_keras import _io, _keras, data, models, preset_store, provenance, specs, training
from attendnext_keras.config import TrainConfig
from attendnext_keras.preprocessing import DEFAULT_CROP_PCT, describe

DEFAULT_LICENCE = "Apache-2.0"
HF_LICENCES = {"Apache-2.0": "apache-2.0", "MIT": "mit", "CC-BY-4.0": "cc-by-4.0", "CC-BY-2.0": "cc-by-2.0"}
PROBABILITY_TOLERANCE = 1e-2  # rows summing to 1 within this, all values >= 0: probabilities (int8 outputs are coarse)


def list_presets() -> list:
    """Names of the presets shipped with the package (`attendnext_keras/presets/<name>/`)."""
    return preset_store.list_presets()


def preset_info(preset) -> preset_store.PresetInfo:
    """A preset's spec, class names, builder config and metadata (recipe, metrics, ...), checked, without Keras."""
    return preset_store.load_preset(preset)


# --------------------------------------------------------------------------------------------------------------------
# Saving


def save_preset(model, path, class_names, recipe=None, metrics=None, description="", spec=None, training_data=None,
                licence=DEFAULT_LICENCE, latency=None, intended_use=None, limitations=None,
                crop_pct=DEFAULT_CROP_PCT, overwrite=False) -> str:
    """Writes `model` (a float AttendNeXt classifier, either flavour) as a preset folder; returns its path.

    Args:
        class_names: one name per model output, in order.
        recipe: the training recipe (a `TrainConfig` or its dict).
        metrics: e.g. {"test_top1": 0.62, "how": "final weights, 100 held-out photographs, ..."}: numbers need "how".
        description: one line for the model card and `attendnext preset show`.
        spec: the `ModelSpec` the model was built from; None takes it from the name (`attendnext_<variant>`) and
            checks it rebuilds the model's layers and weight shapes (a model built with `alpha=` or from a spec
            file does not carry its spec: pass it).
        training_data: what it was trained and measured on (text or a dict), for the model card.
        latency: optional {"median_ms": ..., "how": "..."}; intended_use / limitations: model card text.
        crop_pct: the evaluation center crop the metrics were measured with (`preprocessing.describe`).
        overwrite: replace the preset files in an existing folder (otherwise a non-empty folder is refused).
    """
    class_names = _checked_class_names(class_names, model)
    spec = _spec_of(model, spec)
    keras3 = _as_keras3(model, spec)
    metrics, latency = _checked_measurements(metrics, "metrics"), _checked_measurements(latency, "latency")
    folder = _claim_folder(path, overwrite)
    weights_path = os.path.join(folder, preset_store.WEIGHTS_FILE)
    specs.save_spec(spec, os.path.join(folder, preset_store.SPEC_FILE))
    with _io.atomic_path(weights_path) as tmp:
        keras3.save_weights(tmp)
    config = {"module": "attendnext_keras", "class_name": "AttendNeXt", "format_version": preset_store.FORMAT_VERSION,
              "config": {"spec": preset_store.SPEC_FILE, "input_shape": [spec.input_size, spec.input_size, 3],
                         "classes": len(class_names), "classifier_activation": _activation_of(model),
                         "include_preprocessing": _has_rescaling(keras3)}}
    _io.write_json(os.path.join(folder, preset_store.CONFIG_FILE), config)
    recipe = recipe.to_dict() if isinstance(recipe, TrainConfig) else recipe
    metadata = {
        "name": os.path.basename(os.path.normpath(folder)), "description": description, "class_names": class_names,
        "preprocessing": {"input_size": spec.input_size, **describe(crop_pct)}, "recipe": recipe,
        "metrics": metrics, "latency": latency, "data": training_data, "intended_use": intended_use,
        "limitations": limitations, "licence": licence, "parameter_count": int(keras3.count_params()),
        "weights_bytes": os.path.getsize(weights_path), "weights_sha256": preset_store.file_sha256(weights_path),
        "date_saved": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "provenance": provenance.machine_info(), "format_version": preset_store.FORMAT_VERSION,
    }
    _io.write_atomic(os.path.join(folder, preset_store.README_FILE), model_card(metadata, spec))
    _io.write_json(os.path.join(folder, preset_store.METADATA_FILE), metadata)  # last: its presence marks completion
    return folder


def _checked_class_names(class_names, model) -> list:
    outputs = int(model.outputs[0].shape[-1])
    if isinstance(class_names, str) or not all(isinstance(n, str) and n for n in class_names or [None]):
        raise ValueError(f"`class_names` must be a list of non-empty strings, one per output. "
                         f"Received: class_names={class_names!r}")
    if len(class_names) != outputs or len(set(class_names)) != len(class_names):
        raise ValueError(f"`class_names` must name each of the model's {outputs} outputs once. "
                         f"Received: {len(class_names)} names ({', '.join(list(class_names)[:5])}...)")
    return list(class_names)


def _square_input_size(model) -> int:
    shape = tuple(model.inputs[0].shape[1:])
    if len(shape) != 3 or shape[0] is None or shape[0] != shape[1]:
        raise ValueError(f"A preset needs a model with a fixed square input (size, size, 3). Received: input shape "
                         f"{shape}")
    return int(shape[0])


def _signature(model) -> list:
    """Layer names, classes and weight shapes: what must agree for a spec to describe a model."""
    return [(layer.name, type(layer).__name__, [tuple(w.shape) for w in layer.weights]) for layer in model.layers]


def _has_rescaling(model) -> bool:
    return any(layer.name == "rescaling" for layer in model.layers)


def _activation_of(model):
    return "softmax" if _keras.output_kind(model) == "probabilities" else None


def _rebuild(spec, model):
    """The Keras 3 AttendNeXt that `spec` describes, shaped like `model` (classes, preprocessing), random weights."""
    return models.AttendNeXt(spec=spec, input_shape=(spec.input_size, spec.input_size, 3),
                             classes=int(model.outputs[0].shape[-1]), classifier_activation=_activation_of(model),
                             include_preprocessing=_has_rescaling(model), enforce_constraints=False)


def _spec_of(model, spec=None) -> specs.ModelSpec:
    """The spec a model was built from, with `input_size` its input size, checked against the model's layers."""
    if spec is None:
        variant = model.name.removeprefix("attendnext_")
        if not model.name.startswith("attendnext_") or variant not in specs.VARIANTS:
            raise ValueError(f"Model '{model.name}' does not carry its AttendNeXt spec (its name is not "
                             f"attendnext_<variant>); pass spec=, the ModelSpec it was built from.")
        spec = specs.VARIANTS[variant]
    if not isinstance(spec, specs.ModelSpec):
        raise ValueError(f"`spec` must be a ModelSpec (e.g. attendnext_keras.VARIANTS['micro'] or load_spec(path)). "
                         f"Received: spec={spec!r}")
    spec = spec.replace(input_size=_square_input_size(model))
    if _signature(_rebuild(spec, model)) != _signature(model):
        raise ValueError(f"Model '{model.name}' does not match AttendNeXt spec '{spec.name}': layers or weight shapes "
                         f"differ (built with alpha=, attention= or antialias=, from another spec, or a quantization-"
                         f"aware model? save the float model and pass spec=).")
    return spec


def _as_keras3(model, spec):
    """A fresh Keras 3 model of `spec` holding `model`'s weights (copied by layer name, from either flavour): its
    weights file then holds the model's variables only, never a compiled model's optimizer or metric state."""
    target = _rebuild(spec, model)
    _keras.copy_weights(model, target)
    return target


def _checked_measurements(values, what):
    """A dict of JSON values; numbers need a "how" saying how they were measured (README: numbers ship with it)."""
    if values is None:
        return None
    if not isinstance(values, dict):
        raise ValueError(f"`{what}` must be a dict, e.g. {{'test_top1': 0.62, 'how': '...'}}. Received: {values!r}")
    numbers = [k for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if numbers and not (isinstance(values.get("how"), str) and values["how"].strip()):
        raise ValueError(f"`{what}` holds numbers ({', '.join(numbers)}) but no 'how' saying how they were measured "
                         f"(data, split, weights, transform).")
    bad = [k for k in numbers if not math.isfinite(values[k])]
    if bad:
        raise ValueError(f"`{what}` holds non-finite values: {', '.join(bad)}.")
    return dict(values)


def _claim_folder(path, overwrite) -> str:
    folder = os.fspath(path)
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise NotADirectoryError(f"Cannot save a preset to '{folder}': it is a file.")
    if os.path.isdir(folder) and os.listdir(folder) and not overwrite:
        raise ValueError(f"'{folder}' is not empty: pass overwrite=True (CLI: --overwrite) to replace the preset in "
                         f"it, or choose another folder.")
    os.makedirs(folder, exist_ok=True)
    if overwrite:  # the completion marker goes first, so a crash mid-save never leaves an old-looking preset
        metadata = os.path.join(folder, preset_store.METADATA_FILE)
        if os.path.exists(metadata):
            os.remove(metadata)
    return folder


# --------------------------------------------------------------------------------------------------------------------
# The model card


def _format_measurements(values, percent=True) -> list:
    if not values:
        return ["Not measured."]
    lines = []
    for key, value in values.items():
        if key == "how":
            continue
        shown = f"{value:.1%}" if percent and isinstance(value, float) and 0 <= value <= 1 and "top" in key \
            else value
        lines.append(f"* {key}: {shown}")
    if values.get("how"):
        lines.append(f"\nHow measured: {values['how']}")
    return lines


def model_card(metadata: dict, spec) -> str:
    """The README.md of a preset (Hugging Face's model-card front matter, then the sections a model card needs)."""
    name, classes = metadata["name"], metadata["class_names"]
    size = spec.input_size
    licence = metadata.get("licence") or DEFAULT_LICENCE
    about = metadata.get("data")
    data_text = ("\n".join(f"* {k}: {v}" for k, v in about.items()) if isinstance(about, dict)
                 else about or "Not given.")
    recipe = metadata.get("recipe")
    recipe_text = ", ".join(f"{k}={v}" for k, v in recipe.items()) if isinstance(recipe, dict) else "Not recorded."
    lines = [
        "---", "library_name: keras", f"license: {HF_LICENCES.get(licence.split()[0], 'other')}",
        "tags: [image-classification, attendnext_keras, tflite]", "---", "",
        f"# {name}", "", metadata.get("description") or f"AttendNeXt '{spec.name}' image classifier.", "",
        "```python", "import attendnext_keras as an",
        f'model = an.from_preset("{name}")             # Keras 3, logits; flavour="tf_keras" for QAT',
        f'new = an.from_preset("{name}", classes=10)   # the backbone, a new head to fine-tune', "```", "",
        "## Intended use", "",
        metadata.get("intended_use") or f"Classifying {size}×{size} photographs into the classes below; a "
        f"starting point for fine-tuning.", "",
        "## Model", "",
        f"AttendNeXt '{spec.name}' (Wong et al. 2022, arXiv:2208.06980), width {spec.width:g}, input {size}×{size}×3 "
        f"pixels in [0, 255] (the model rescales them), {len(classes)} classes: {', '.join(classes)}. "
        f"{metadata['parameter_count']:,} parameters; weights file {metadata['weights_bytes'] / 1024:.0f} KiB "
        f"(float32).", "",
        "## Data", "", data_text, "",
        "## Preprocessing", "",
        f"Evaluation: resize to cover floor({size} / crop_pct) keeping the aspect ratio, center crop {size} "
        f"(crop_pct {metadata['preprocessing']['crop_pct']}): `attendnext_keras.preprocessing.preprocess_image`.", "",
        "## Training recipe", "", recipe_text, "",
        "## Accuracy", "", *_format_measurements(metadata.get("metrics")), "",
        "## Latency", "", *_format_measurements(metadata.get("latency"), percent=False), "",
        "## Limitations", "", metadata.get("limitations") or "Evaluated only on the data named above.", "",
        "## Licence", "", licence, "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------------------------
# Loading and fine-tuning


def from_preset(preset, flavour="keras", classes=None, class_names=None, classifier_activation=None,
                input_size=None):
    """The preset's model with its weights: Keras 3 (flavour="keras") or tf-keras (flavour="tf_keras", for QAT).

    Args:
        preset: a shipped preset's name (`list_presets()`) or a preset folder.
        classes / class_names: the classes of a new task. A count other than the preset's, or names that differ
            from the preset's (or their order), give a new, freshly initialised classifier layer on the preset's
            backbone (and hidden head layer, if any); otherwise the preset's classifier is kept.
        classifier_activation: None (logits, as the registry's models) or "softmax".
        input_size: build at another size (a multiple of 32); the weights fit any. Default: the preset's.
    """
    info = preset_store.load_preset(preset)
    flavour = _keras.resolve_flavour(flavour)
    new_classes = _new_head_classes(info, classes, class_names)
    size = info.input_size if input_size is None else input_size
    common = dict(input_shape=(size, size, 3), keras=flavour, classifier_activation=classifier_activation,
                  include_preprocessing=info.builder_config.get("include_preprocessing", True))
    model = models.AttendNeXt(weights=info.path, **common)
    if new_classes is None:
        return model
    target = models.AttendNeXt(spec=info.spec, classes=new_classes, enforce_constraints=False, **common)
    _keras.copy_weights(model, target, skip=("predictions",))
    return target


def _new_head_classes(info, classes, class_names):
    """The class count of a new head, or None to keep the preset's classifier."""
    if class_names is not None:
        class_names = list(class_names)
        if classes is not None and classes != len(class_names):
            raise ValueError(f"`classes` ({classes}) and `class_names` ({len(class_names)} names) disagree.")
        return None if class_names == info.class_names else len(class_names)
    if classes is None or classes == info.num_classes:
        return None
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
        raise ValueError(f"`classes` must be a positive integer. Received: classes={classes!r}")
    return classes


def fine_tune_from_preset(preset, train_source, val_source=None, config=None, out_dir="runs/fine_tune",
                          input_size=None, crop_scale_min=0.25, **train_kwargs) -> training.TrainResult:
    """Trains a preset's model on an image source (`data.load_source`/`image_folder`): the preset's classifier is
    kept when the source has the preset's classes (same names, same order), otherwise replaced by a new one.
    `config` is the recipe (`TrainConfig`); other keyword arguments go to `training.train` (resume, overwrite...)."""
    info = preset_store.load_preset(preset)
    config = config or TrainConfig()
    size = input_size or info.input_size
    train_ds = data.make_dataset(train_source, size, config.batch_size, training=True, seed=config.seed,
                                 crop_scale=(crop_scale_min, 1.0))
    val_ds = None if val_source is None else data.make_dataset(val_source, size, config.batch_size, training=False)
    return training.train(lambda: from_preset(info.path, class_names=train_source.class_names, input_size=size),
                          train_ds, val_ds, config, out_dir=out_dir, **train_kwargs)


# --------------------------------------------------------------------------------------------------------------------
# Predictions


def decode_predictions(predictions, top=5, class_names=None) -> list:
    """[[(class_name, score), ...] per image], best first, like keras.applications' decode_predictions.

    `predictions` is (images, classes) logits or probabilities: a batch with a negative value or a row that does
    not sum to 1 (within 0.01) is taken as logits and softmaxed. `class_names`: a list, a preset's name or folder
    (its class names), or None (`class_0`, `class_1`, ...).
    """
    scores = np.asarray(predictions, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] < 1:
        raise ValueError(f"`predictions` must be a batch of scores, shape (images, classes). Received: shape="
                         f"{scores.shape}")
    if not np.isfinite(scores).all():
        raise ValueError("`predictions` holds NaN or infinite values.")
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValueError(f"`top` must be a positive integer. Received: top={top!r}")
    names = _names_for(class_names, scores.shape[1])
    if (scores < 0).any() or (np.abs(scores.sum(axis=1) - 1) > PROBABILITY_TOLERANCE).any():
        shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
        scores = shifted / shifted.sum(axis=1, keepdims=True)
    return [[(names[i], float(row[i])) for i in np.argsort(-row, kind="stable")[:top]] for row in scores]


def _names_for(class_names, count) -> list:
    if class_names is None:
        return [f"class_{i}" for i in range(count)]
    if isinstance(class_names, (str, os.PathLike)):
        class_names = preset_store.load_preset(class_names).class_names
    names = list(class_names)
    if len(names) != count:
        raise ValueError(f"The predictions have {count} classes but {len(names)} class names were given.")
    return names


# --------------------------------------------------------------------------------------------------------------------
# Sharing


def upload_preset(path, handle) -> str:
    """Uploads a preset folder to a model hub; returns the handle.

    `hf://[USER/]NAME` goes through huggingface_hub (create_repo, upload_folder). keras-hub's own upload is not used
    for hf://: when the Hub repository has no README yet it writes its generated card over the folder's README.md
    and then deletes it. `kaggle://USER/MODEL/FRAMEWORK/VARIATION` goes through `keras_hub.upload_preset` (which
    checks config.json and model.weights.h5) or, without keras-hub, kagglehub's `model_upload`. Credentials are the
    hubs' own (`huggingface-cli login`, KAGGLE_USERNAME/KAGGLE_KEY).
    """
    folder = preset_store.load_preset(path).path  # a complete, consistent preset or a one-line error
    handle = str(handle)
    if handle.startswith("hf://"):
        repo_id = handle.removeprefix("hf://").strip("/")
        if not repo_id or repo_id.count("/") > 1:
            raise ValueError(f"A Hugging Face handle is hf://[USER/]NAME. Received: handle={handle!r}")
        hub = _optional("huggingface_hub", "pip install -e \".[hub]\" (or huggingface_hub)")
        repo = hub.create_repo(repo_id=repo_id, exist_ok=True)
        hub.upload_folder(repo_id=getattr(repo, "repo_id", repo_id), folder_path=folder,
                          commit_message=f"Upload AttendNeXt preset {os.path.basename(os.path.normpath(folder))}")
        return handle
    if handle.startswith("kaggle://"):
        if len(handle.removeprefix("kaggle://").strip("/").split("/")) != 4:
            raise ValueError(f"A Kaggle handle is kaggle://USER/MODEL/FRAMEWORK/VARIATION. Received: handle={handle!r}")
        try:
            keras_hub = importlib.import_module("keras_hub")  # optional: checks the folder, then calls kagglehub
        except ImportError:
            keras_hub = None
        if keras_hub is not None:
            keras_hub.upload_preset(handle, folder)
        else:
            kaggle = _optional("kagglehub", "pip install -e \".[hub]\" (or kagglehub)")
            kaggle.model_upload(handle.removeprefix("kaggle://").strip("/"), folder)
        return handle
    raise ValueError(f"`handle` must start with hf:// or kaggle://. Received: handle={handle!r}")


def _optional(module, install):
    """An optional dependency, imported only when an upload needs it; a one-line error naming what to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"Uploading this preset needs the '{module}' package: {install}.") from None
