"""Model profile: parameters, multiply-accumulates and activation memory, per layer and per stage.

MACs count the multiplications of convolutions (grouped ones included), depthwise convolutions (BlurPool2D included),
dense layers (on inputs of any rank), multi-head attention (Q, K and V projections, QKᵀ, attention × V and the output
projection) and element-wise products (Multiply: one per output element); pooling, additions, activations, softmax,
LayerNormalization and BatchNormalization (folded into the convolution on conversion) count zero. Activation memory
is estimated for int8 inference (one byte per element, `bytes_per_element` to change it): layers walk in order, a
tensor lives from the layer that makes it to its last reader, and layers that the converter fuses into their producer
(BatchNormalization, ReLU, Dropout, Rescaling) reuse their input's buffer. It approximates the planned part of
TFLite Micro's tensor arena (`micro.MicroRunner.arena_usage["planned"]`); the arena also holds TFLM's persistent
per-op data, which grows with the number of ops.
"""

from __future__ import annotations

import dataclasses
import math

FUSED = ("BatchNormalization", "ReLU", "Dropout", "Rescaling")


@dataclasses.dataclass
class LayerProfile:
    name: str
    kind: str
    group: str
    params: int
    macs: int
    output_elements: int


@dataclasses.dataclass
class ModelProfile:
    name: str
    layers: list
    params: int
    macs: int
    peak_activation_bytes: int
    peak_after: str

    def by_group(self) -> dict:
        groups = {}
        for layer in self.layers:
            g = groups.setdefault(layer.group, {"params": 0, "macs": 0})
            g["params"] += layer.params
            g["macs"] += layer.macs
        return groups

    def as_dict(self) -> dict:
        return {"name": self.name, "params": self.params, "macs": self.macs,
                "peak_activation_bytes": self.peak_activation_bytes, "peak_after": self.peak_after,
                "groups": self.by_group(), "layers": [dataclasses.asdict(layer) for layer in self.layers]}

    def table(self, per_layer=False) -> str:
        rows = [f"{'stage':<12}{'params':>12}{'MACs':>16}"]
        for group, v in self.by_group().items():
            rows.append(f"{group:<12}{v['params']:>12,}{v['macs']:>16,}")
        rows.append(f"{'total':<12}{self.params:>12,}{self.macs:>16,}")
        rows.append(f"peak activation memory ≈ {self.peak_activation_bytes:,} bytes (after layer '{self.peak_after}')")
        if per_layer:
            rows.append("")
            rows.append(f"{'layer':<40}{'kind':<24}{'params':>10}{'MACs':>14}")
            rows += [f"{l.name:<40}{l.kind:<24}{l.params:>10,}{l.macs:>14,}" for l in self.layers]
        return "\n".join(rows)


def _shape(tensor):
    return tuple(tensor.shape)


def _elements(shape):
    return math.prod(d for d in shape[1:] if d is not None)


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def group_of(name):
    """The group a layer name belongs to: input, stem, stage<i> or head (the builder's fixed names)."""
    head = name.split("_")[0]
    if head.startswith("stage") or head in ("stem",):
        return head
    return "head" if name not in ("image", "rescaling") else "input"


def layer_macs(layer) -> int:
    kind = type(layer).__name__
    out = _shape(layer.output)
    if kind == "Conv2D":
        k = layer.kernel_size
        return _elements(out) * k[0] * k[1] * _shape(layer.input)[-1] // layer.groups
    if kind == "DepthwiseConv2D":
        k = layer.kernel_size
        return _elements(out) * k[0] * k[1]
    if kind == "BlurPool2D":
        return _elements(out) * layer.filter_size ** 2
    if kind == "Dense":
        return _elements(out) * _shape(layer.input)[-1]
    if kind == "Multiply":
        return _elements(out)
    if kind == "MultiHeadAttention":
        return attention_macs(layer)
    return 0


def _attention_inputs(layer):
    """(query, value, key) tensors of a layer's first call (key defaults to value), for Keras 3 and tf-keras."""
    node = layer._inbound_nodes[0]
    if hasattr(node, "arguments"):  # Keras 3
        args, kwargs = node.arguments.args, node.arguments.kwargs
    else:  # tf-keras
        args, kwargs = node.call_args, node.call_kwargs
    query = args[0] if len(args) > 0 else kwargs["query"]
    value = args[1] if len(args) > 1 else kwargs["value"]
    key = args[2] if len(args) > 2 else kwargs.get("key")
    return query, value, value if key is None else key


def attention_macs(layer) -> int:
    """MACs of a built MultiHeadAttention: with h heads of key size dk and value size dv, Nq query positions of dq
    features, Nk key/value positions, each query attending to T of them (the positions along `attention_axes`, all
    positions by default) and an output of do features per query position:
    Nq·dq·h·dk + Nk·dk_in·h·dk + Nk·dv_in·h·dv (projections) + Nq·h·T·dk (QKᵀ) + Nq·h·T·dv (× V) + Nq·h·dv·do."""
    query, value, key = (_shape(t) for t in _attention_inputs(layer))
    heads, key_dim, value_dim = layer._num_heads, layer._key_dim, layer._value_dim
    q_positions = _elements(query) // query[-1]
    kv_positions = _elements(value) // value[-1]
    attended = math.prod(key[axis] for axis in layer._attention_axes)
    out_features = _elements(_shape(layer.output)) // q_positions
    projections = heads * (q_positions * query[-1] * key_dim + kv_positions * key[-1] * key_dim
                           + kv_positions * value[-1] * value_dim)
    attention = q_positions * heads * attended * (key_dim + value_dim)
    return projections + attention + q_positions * heads * value_dim * out_features


def inbound_names(layer):
    """Names of the layers whose outputs `layer` reads."""
    names = []
    for tensor in _as_list(layer.input):
        history = getattr(tensor, "_keras_history", None)
        if history is not None:
            names.append(history[0].name)
    return names


def profile(model, bytes_per_element=1) -> ModelProfile:
    """Profiles a functional Keras model (either flavour). Returns a ModelProfile; print `.table()` for a summary."""
    unknown = [l.name for l in model.layers if any(d is None for d in _shape(l.output)[1:])]
    if unknown:
        raise ValueError(f"Cannot profile '{model.name}': layer '{unknown[0]}' has an output of unknown size. Build "
                         f"the model with a fixed `input_shape`.")
    layers = []
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        layers.append(LayerProfile(name=layer.name, kind=type(layer).__name__, group=group_of(layer.name),
                                   params=int(layer.count_params()), macs=int(layer_macs(layer)),
                                   output_elements=int(_elements(_shape(layer.output)))))
    peak, peak_after = _peak_activation(model, bytes_per_element)
    return ModelProfile(name=model.name, layers=layers, params=int(model.count_params()),
                        macs=sum(l.macs for l in layers), peak_activation_bytes=peak, peak_after=peak_after)


def _peak_activation(model, bytes_per_element):
    order = list(model.layers)
    buffer_of = {}  # layer name -> buffer id (fused layers share their input's buffer)
    size_of, created, readers = {}, {}, {}
    for step, layer in enumerate(order):
        inbound = inbound_names(layer)
        for name in inbound:
            readers[buffer_of.get(name, name)] = step
        if type(layer).__name__ in FUSED and inbound:
            buffer_of[layer.name] = buffer_of.get(inbound[0], inbound[0])
        else:
            buffer_of[layer.name] = layer.name
            size_of[layer.name] = _elements(_shape(layer.output)) * bytes_per_element
            created[layer.name] = step
    for out in _as_list(model.outputs):
        readers[buffer_of[out._keras_history[0].name]] = len(order)
    peak, peak_after = 0, ""
    for step, layer in enumerate(order):
        live = sum(size for buf, size in size_of.items() if created[buf] <= step <= readers.get(buf, created[buf]))
        if live > peak:
            peak, peak_after = live, layer.name
    return peak, peak_after
