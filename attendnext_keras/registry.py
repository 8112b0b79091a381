"""One table of model names: the AttendNeXt variants and the networks they are compared with.

The CLI, the benchmarks, the study, the design exploration and the tests all enumerate it, following timm:

    attendnext_keras.list_models()                      # ['attendnext_base', ..., 'mobilenet_v3_large', ...]
    attendnext_keras.list_models("mobilenet_v3*")       # fnmatch pattern
    model = attendnext_keras.create_model("mobilenet_v3_large_075", input_size=96, classes=5)
    model = attendnext_keras.create_model("runs/explore/best_spec.json", classes=5)   # an AttendNeXt spec file

Names are timm's: the plain name for width 1.0, a `_075`-style suffix otherwise. Every model is a float Keras 3
model taking [0, 255] pixels and, like timm's, giving logits unless `classifier_activation` says otherwise. All
weights are random (no downloads here); AttendNeXt models can also be built in tf-keras (`keras="tf_keras"`).
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import functools
import os
from typing import Callable, Optional

from attendnext_keras import models, peers, specs

FAMILIES = ("attendnext", "mobilenet_v3", "mobilenet_v2", "other")
"""Families whose accuracy–latency fronts are drawn separately ("other": peers measured for latency only)."""


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """A registered model: `builder(input_shape=, classes=, classifier_activation=, **kwargs)` returns it."""

    name: str
    display_name: str
    family: str
    builder: Callable
    input_size: int = 224  # what `create_model` builds without `input_size`
    benchmark_size: Optional[int] = None  # size in benchmarks: None = the peers' 224 px; microcontroller models: own
    description: str = ""
    published_params: Optional[float] = None  # ImageNet-1k, 1000 classes, as published (checked in tests)
    citation: str = ""
    notes: str = ""
    flavours: tuple = ("keras",)

    def build(self, input_size=None, classes=1000, classifier_activation=None, keras=None, **kwargs):
        flavour = keras or "keras"
        if flavour not in self.flavours:
            raise ValueError(f"'{self.name}' is built in {', '.join(self.flavours)} only. Received: keras={keras!r}")
        if keras is not None:
            kwargs["keras"] = keras
        size = self.input_size if input_size is None else input_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"`input_size` must be a positive number of pixels. Received: input_size={size!r}")
        return self.builder(input_shape=(size, size, 3), classes=classes,
                            classifier_activation=classifier_activation, **kwargs)


_REGISTRY: dict = {}


def register_model(info: ModelInfo) -> ModelInfo:
    if info.family not in FAMILIES:
        raise ValueError(f"`family` must be one of {FAMILIES}. Received: {info.family!r}")
    if info.name in _REGISTRY:
        raise ValueError(f"A model named '{info.name}' is registered already.")
    _REGISTRY[info.name] = info
    return info


def _attendnext_builder(variant=None, spec=None):
    def build(input_shape, classes, classifier_activation, **kwargs):
        if spec is not None:  # a spec file is an explicit design (an ablation may break the paper's rules on purpose)
            kwargs.setdefault("enforce_constraints", False)
        return models.AttendNeXt(variant=variant or "base", spec=spec, input_shape=input_shape, classes=classes,
                                 classifier_activation=classifier_activation, **kwargs)

    return build


def _benchmark_size(spec) -> Optional[int]:
    """Microcontroller-sized specs (under 128 px) are benchmarked at their own size, others at the peers' 224 px."""
    return spec.input_size if spec.input_size < 128 else None


def _register_attendnext():
    for spec in specs.VARIANTS.values():
        register_model(ModelInfo(
            name=f"attendnext_{spec.name}", display_name=f"AttendNeXt {spec.name}", family="attendnext",
            builder=_attendnext_builder(variant=spec.name), input_size=spec.input_size, description=spec.description,
            benchmark_size=_benchmark_size(spec),
            citation="A. Wong et al. Faster Attention Is What You Need: A Fast Self-Attention Neural Network Backbone "
                     "Architecture for the Edge via Double-Condensing Attention Condensers. arXiv:2208.06980, 2022.",
            flavours=("keras", "tf_keras")))


def _width_suffix(alpha: float) -> str:
    return "" if alpha == 1.0 else f"_{round(alpha * 100):03d}"


def _register_mobilenets():
    v3 = peers.peer_info["mobilenet_v3_large"]
    for size in ("large", "small"):
        for alpha in (1.0, 0.75):
            name = f"mobilenet_v3_{size}{_width_suffix(alpha)}"
            register_model(ModelInfo(
                name=name, display_name=f"MobileNetV3-{size.capitalize()}" + ("" if alpha == 1.0 else f" {alpha:g}"),
                family="mobilenet_v3", builder=functools.partial(peers.mobilenet_v3, size, alpha=alpha, name=name),
                published_params=peers.PUBLISHED_PARAMS.get(name), citation=v3["citation"],
                notes=peers.peer_info[f"mobilenet_v3_{size}"]["notes"] + f" alpha={alpha:g}."))
    v2 = peers.peer_info["mobilenet_v2"]
    for alpha in (1.0, 0.75, 0.5, 0.35):
        name = f"mobilenet_v2{_width_suffix(alpha)}"
        register_model(ModelInfo(
            name=name, display_name="MobileNetV2" + ("" if alpha == 1.0 else f" {alpha:g}"), family="mobilenet_v2",
            builder=functools.partial(peers.mobilenet_v2, alpha=alpha, name=name),
            published_params=peers.PUBLISHED_PARAMS.get(name), citation=v2["citation"],
            notes=v2["notes"] + f" alpha={alpha:g}."))


def _register_others():
    others = (("efficientnet_b0", "EfficientNet-B0", peers.efficientnet_b0),
              ("mobilevit_xs", "MobileViT-XS", peers.MobileViTXS),
              ("mobileone_s1", "MobileOne-S1", peers.MobileOneS1),
              ("fbnet_c", "FBNet-C", peers.FBNetC))
    for name, display, builder in others:
        info = peers.peer_info[name]
        register_model(ModelInfo(name=name, display_name=display, family="other", builder=builder,
                                 published_params=peers.PUBLISHED_PARAMS.get(name), citation=info["citation"],
                                 notes=info["notes"]))


_register_attendnext()
_register_mobilenets()
_register_others()


def list_models(pattern: str = "*", family: Optional[str] = None) -> list:
    """Registered names matching an fnmatch `pattern` (and `family`), AttendNeXt variants first."""
    if family is not None and family not in FAMILIES:
        raise ValueError(f"`family` must be one of {FAMILIES}. Received: family={family!r}")
    return [n for n, info in _REGISTRY.items()
            if fnmatch.fnmatch(n, pattern) and (family is None or info.family == family)]


def is_spec_file(name) -> bool:
    return isinstance(name, (str, os.PathLike)) and os.fspath(name).endswith(".json")


def model_info(name) -> ModelInfo:
    """The registry entry of `name`, or one made for an AttendNeXt spec JSON file or ModelSpec (family "attendnext";
    built with the structure checked but not the paper's design rules, so ablation specs build too)."""
    spec_file = is_spec_file(name)
    if spec_file or isinstance(name, specs.ModelSpec):
        spec, label = (specs.load_spec(name), os.fspath(name)) if spec_file else (name, name.name)
        return ModelInfo(name=label, display_name=f"AttendNeXt {spec.name}", family="attendnext",
                         builder=_attendnext_builder(spec=spec), input_size=spec.input_size,
                         benchmark_size=_benchmark_size(spec), description=spec.description,
                         flavours=("keras", "tf_keras"))
    if name not in _REGISTRY:
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"Unknown model {name!r}.{hint} Known models: {', '.join(_REGISTRY)} (or a spec .json file).")
    return _REGISTRY[name]


def create_model(name, input_size=None, classes=1000, classifier_activation=None, keras=None, **kwargs):
    """Builds a registered model (or an AttendNeXt spec JSON file) with random weights: float Keras 3 (AttendNeXt:
    also `keras="tf_keras"`), [0, 255] pixels of `input_size` (default: the model's own) in, logits out unless
    `classifier_activation` is given. Other keyword arguments go to the builder (e.g. `alpha=` for AttendNeXt)."""
    return model_info(name).build(input_size=input_size, classes=classes,
                                  classifier_activation=classifier_activation, keras=keras, **kwargs)


def display_name(name) -> str:
    try:
        return model_info(name).display_name
    except (ValueError, FileNotFoundError):
        return str(name)
