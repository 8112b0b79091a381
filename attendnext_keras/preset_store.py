"""The preset folder format and the presets shipped with the package, without Keras or TensorFlow.

A preset is a folder (keras-hub's layout where it fits: `config.json`, `metadata.json`, `model.weights.h5`,
`README.md`; keras-team/keras-hub: keras_hub/src/utils/preset_utils.py, Apache-2.0):

    config.json        how to build the model: {"module", "class_name": "AttendNeXt", "config": {builder arguments}}
    spec.json          the AttendNeXt ModelSpec (`specs.save_spec`; `input_size` is the size it was trained at)
    model.weights.h5   Keras 3 weights (`model.save_weights`)
    metadata.json      class names, preprocessing, training recipe, metrics (with how they were measured), data,
                       licence, parameter count, the weights file's SHA-256, versions, date
    README.md          the model card, generated from the above

Writing presets needs a model (`attendnext_keras.presets.save_preset`); reading one needs only this module, so that
`models.AttendNeXt(weights=NAME)` resolves a preset here, below `models`, and `presets` (which builds models) sits
above it: no import circle.

    preset_store.list_presets()                          # ['micro_flowers160_96', 'micro_flowers_mini64']
    info = preset_store.load_preset("micro_flowers_mini64")   # or a folder path
    info.spec, info.class_names, info.weights_path
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pathlib

from attendnext_keras import _io, specs

CONFIG_FILE = "config.json"
SPEC_FILE = "spec.json"
WEIGHTS_FILE = "model.weights.h5"  # the name keras-hub's upload_preset checks for
METADATA_FILE = "metadata.json"
README_FILE = "README.md"
PRESET_FILES = (CONFIG_FILE, SPEC_FILE, WEIGHTS_FILE, METADATA_FILE)  # README.md is generated, not required
FORMAT_VERSION = 1
HEAD_LAYERS = ("head_fc", "predictions")  # the classifier's layers with weights (`models.AttendNeXt`'s names)


@dataclasses.dataclass(frozen=True)
class PresetInfo:
    """What a preset folder holds, read and checked (the weights themselves are loaded by `models`)."""

    name: str
    path: str
    spec: specs.ModelSpec
    config: dict
    metadata: dict

    @property
    def class_names(self) -> list:
        return list(self.metadata["class_names"])

    @property
    def num_classes(self) -> int:
        return len(self.metadata["class_names"])

    @property
    def input_size(self) -> int:
        return self.spec.input_size

    @property
    def weights_path(self) -> str:
        return os.path.join(self.path, WEIGHTS_FILE)

    @property
    def builder_config(self) -> dict:
        return dict(self.config["config"])


def presets_dir() -> pathlib.Path:
    """Where the shipped presets live inside the installed package (`attendnext_keras/presets/<name>/`)."""
    return pathlib.Path(__file__).resolve().parent / "presets"


def list_presets() -> list:
    """Names of the presets shipped with the package, sorted."""
    root = presets_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / CONFIG_FILE).is_file())


def is_preset_reference(value) -> bool:
    """True for the name of a shipped preset or a folder holding a `config.json` (what `weights=` may name)."""
    if not isinstance(value, (str, os.PathLike)):
        return False
    path = os.fspath(value)
    return path in list_presets() or os.path.isfile(os.path.join(path, CONFIG_FILE))


def find_preset(preset) -> str:
    """The folder of a shipped preset name or a preset folder path; a one-line error for anything else."""
    if not isinstance(preset, (str, os.PathLike)):
        raise ValueError(f"A preset is a shipped preset's name or a folder path. Received: preset={preset!r}")
    path = os.fspath(preset)
    if path in list_presets():
        return str(presets_dir() / path)
    if os.path.isdir(path):
        return path
    if os.path.exists(path):
        raise NotADirectoryError(f"'{path}' is a file; a preset is a folder ({', '.join(PRESET_FILES)}).")
    shipped = ", ".join(list_presets()) or "none"
    raise FileNotFoundError(f"No preset '{path}': it is neither a shipped preset ({shipped}) nor a folder.")


def load_preset(preset) -> PresetInfo:
    """Reads and checks a preset folder (or a shipped preset by name): its files exist, its JSON parses, the spec
    builds, the class names fit, and the weights file has the SHA-256 recorded when the preset was saved."""
    path = find_preset(preset)
    missing = [name for name in PRESET_FILES if not os.path.isfile(os.path.join(path, name))]
    if missing:
        raise FileNotFoundError(f"'{path}' is not a complete preset folder: it lacks {', '.join(missing)} (save one "
                                f"with attendnext_keras.save_preset).")
    config = _io.read_json(os.path.join(path, CONFIG_FILE), "Preset config")
    metadata = _io.read_json(os.path.join(path, METADATA_FILE), "Preset metadata")
    spec = specs.load_spec(os.path.join(path, SPEC_FILE))
    _check_contents(path, config, metadata)
    expected = metadata.get("weights_sha256")
    if expected and file_sha256(os.path.join(path, WEIGHTS_FILE)) != expected:
        raise ValueError(f"'{os.path.join(path, WEIGHTS_FILE)}' does not have the SHA-256 recorded in its "
                         f"{METADATA_FILE} ({expected[:12]}…): the file is damaged or was replaced.")
    name = os.path.basename(os.path.normpath(path))
    return PresetInfo(name=name, path=path, spec=spec, config=config, metadata=metadata)


def _check_contents(path, config, metadata):
    if not isinstance(config, dict) or config.get("class_name") != "AttendNeXt" \
            or not isinstance(config.get("config"), dict):
        raise ValueError(f"'{os.path.join(path, CONFIG_FILE)}' is not an AttendNeXt preset config (expected "
                         f"{{\"class_name\": \"AttendNeXt\", \"config\": {{...}}}}).")
    if config.get("format_version", FORMAT_VERSION) > FORMAT_VERSION:
        raise ValueError(f"'{path}' has preset format {config['format_version']}; this attendnext_keras reads up to "
                         f"{FORMAT_VERSION}: upgrade the package.")
    names = metadata.get("class_names") if isinstance(metadata, dict) else None
    if not (isinstance(names, list) and len(names) >= 1 and all(isinstance(n, str) for n in names)):
        raise ValueError(f"'{os.path.join(path, METADATA_FILE)}' has no list of class names (`class_names`).")
    classes = config["config"].get("classes")
    if classes is not None and classes != len(names):
        raise ValueError(f"'{path}' is inconsistent: config.json has {classes} classes, metadata.json names "
                         f"{len(names)}.")


def same_architecture(a: specs.ModelSpec, b: specs.ModelSpec) -> bool:
    """Whether two specs build the same layers and weights: equal except for `input_size`, `name` and
    `description` (the weights of these fully convolutional models fit any allowed input size)."""
    def key(spec):
        return specs.get_spec(spec).replace(input_size=1, name="", description="")

    return key(a) == key(b)


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
