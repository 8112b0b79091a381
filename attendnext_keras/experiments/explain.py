"""Attention you can look at: the attention values A = σ(…) of every DC-AC (or attention condenser) module of a
model, averaged over channels and drawn over the photograph the model saw.

    paths = explain(["rose.jpg"], "runs/main/float/final.keras", "runs/explain")      # one PNG per image
    maps = attention_maps(model, images)   # {module: (N, h, w)} at each module's condensed resolution

Keras models (`.keras`, QAT `.h5`) expose the `…_sigmoid` layers by their fixed names. `.tflite` models are run with
every intermediate tensor kept (LiteRT's `experimental_preserve_all_tensors`): the LOGISTIC outputs whose tensor names
carry a module's name are dequantized, so the int8 model's attention can be compared with the float one's.
"""

from __future__ import annotations

import os
import re
import warnings

import numpy as np
from PIL import Image

from attendnext_keras import _io, _keras, preprocessing
from attendnext_keras.deploy import litert
from attendnext_keras.experiments.reports import figure, save_figure

MODULE = re.compile(r"(stage\d+_col\d+_block\d+_(?:dcac|ac))_sigmoid")


def keras_attention(model, images) -> dict:
    """{module: (N, h, w)} channel-mean attention of every condenser of a Keras model on float pixels [0, 255]."""
    names = [layer.name for layer in model.layers if MODULE.search(layer.name)]
    if not names:
        raise ValueError(f"Model '{model.name}' has no attention condenser layers (named '…_dcac_sigmoid').")
    K = _keras.get_keras(_keras.flavour_of(model))
    probe = K.Model(model.inputs, [model.get_layer(n).output for n in names])
    with warnings.catch_warnings():  # a reloaded model lists its one input; Keras warns on a tensor
        warnings.filterwarnings("ignore", message="The structure of `inputs` doesn't match")
        outputs = probe(np.asarray(images, np.float32), training=False)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return {MODULE.search(n).group(1): np.asarray(o).mean(-1) for n, o in zip(names, outputs)}


def tflite_attention(model_content: bytes, images) -> dict:
    """{module: (N, h, w)} from a .tflite model: the dequantized LOGISTIC outputs named after a condenser."""
    interpreter = litert.load_interpreter(model_content, xnnpack=False, preserve_all_tensors=True)
    detail = interpreter.get_input_details()[0]
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    found = {}
    for op in interpreter._get_ops_details():
        if op["op_name"] == "LOGISTIC":
            match = MODULE.search(tensors[int(op["outputs"][0])]["name"])
            if match:
                found.setdefault(match.group(1), int(op["outputs"][0]))
    if not found:
        raise ValueError("The .tflite model has no LOGISTIC output named after an attention condenser.")
    maps = {module: [] for module in found}
    for image in np.asarray(images, np.float32):
        interpreter.set_tensor(detail["index"], litert.quantize_input(image[None], detail))
        interpreter.invoke()
        for module, index in found.items():
            maps[module].append(_dequantized(interpreter, tensors[index])[0].mean(-1))
    return {module: np.stack(values) for module, values in maps.items()}


def _dequantized(interpreter, detail):
    values = interpreter.get_tensor(detail["index"])
    scale, zero_point = detail["quantization"]
    return (values.astype(np.float32) - zero_point) * scale if scale else values.astype(np.float32)


def attention_maps(model, images) -> dict:
    """Keras model, or .keras/.h5/.tflite path → {module: (N, h, w)}."""
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if path.endswith(".tflite"):
            return tflite_attention(litert.read_tflite(path), images)
        from attendnext_keras.saving import load_model  # TensorFlow only for Keras files

        model = load_model(path)
    return keras_attention(model, images)


def input_size_of(model_path) -> int:
    path = os.fspath(model_path)
    if path.endswith(".tflite"):
        return litert.input_size(litert.read_tflite(path))[0]
    from attendnext_keras.saving import load_model

    return int(load_model(path).inputs[0].shape[1])


def plot_attention(image, maps: dict, path, title="") -> str:
    """The photograph and, per module, its attention (upsampled bilinearly to the photograph) drawn over it."""
    columns = 1 + len(maps)
    fig, axes = figure(2.2 * columns, 2.6, columns)
    axes[0].imshow(np.clip(image, 0, 255).astype(np.uint8))
    axes[0].set_title(title or "input", fontsize=7)
    for ax, (module, attention) in zip(axes[1:], maps.items()):
        size = image.shape[:2][::-1]
        up = np.asarray(Image.fromarray(attention.astype(np.float32)).resize(size, Image.BILINEAR))
        ax.imshow(np.clip(image, 0, 255).astype(np.uint8))
        ax.imshow(up, cmap="inferno", alpha=0.55, vmin=0, vmax=1)
        ax.set_title(f"{module}\n{attention.shape[0]}×{attention.shape[1]}, mean {attention.mean():.2f}", fontsize=6)
    for ax in axes:
        ax.axis("off")
    return save_figure(fig, path)


def explain(images, model, out_dir, crop_pct=preprocessing.DEFAULT_CROP_PCT) -> list:
    """One PNG per image in `out_dir` (created): the photograph as the model sees it and every module's attention.
    `images` are file paths; `model` a Keras model or a .keras/.h5/.tflite path. Returns the PNG paths."""
    size = input_size_of(model) if isinstance(model, (str, os.PathLike)) else int(model.inputs[0].shape[1])
    pixels = np.stack([preprocessing.preprocess_image(path, size, crop_pct) for path in images])
    maps = attention_maps(model, pixels)
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for i, path in enumerate(images):
        name = os.path.splitext(os.path.basename(os.fspath(path)))[0]
        paths.append(plot_attention(pixels[i], {m: a[i] for m, a in maps.items()},
                                    os.path.join(out_dir, f"{name}_attention.png"), title=os.path.basename(path)))
    _io.write_json(os.path.join(out_dir, "attention.json"),
                   {"model": os.fspath(model) if isinstance(model, (str, os.PathLike)) else model.name,
                    "images": [os.fspath(p) for p in images],
                    "modules": {m: {"shape": list(a.shape[1:]), "mean": a.mean(axis=(1, 2)).round(4).tolist()}
                                for m, a in maps.items()}})
    return paths
