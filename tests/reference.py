"""Plain NumPy reference of the maths in attendnext_keras.layers, written from the docstrings' formulas."""

import math

import numpy as np

BN_EPSILON = 1e-3  # Keras' BatchNormalization default


def binomial(size):
    row = np.array([math.comb(size - 1, k) for k in range(size)], dtype=np.float64) / 2 ** (size - 1)
    return np.outer(row, row)


def maxpool(x, s):
    n, h, w, c = x.shape
    return x.reshape(n, h // s, s, w // s, s, c).max(axis=(2, 4))


def depthwise_same(x, kernel):
    """Stride-1 depthwise convolution with zero 'same' padding; kernel (k, k, C, 1)."""
    k = kernel.shape[0]
    p = (k - 1) // 2
    xp = np.pad(x, ((0, 0), (p, k - 1 - p), (p, k - 1 - p), (0, 0)))
    out = np.zeros_like(x, dtype=np.float64)
    for i in range(k):
        for j in range(k):
            out += xp[:, i:i + x.shape[1], j:j + x.shape[2], :] * kernel[i, j, :, 0]
    return out


def pointwise(x, kernel, bias=None):
    y = x @ kernel[0, 0]
    return y if bias is None else y + bias


def batchnorm(x, gamma, beta, mean, var):
    return (x - mean) / np.sqrt(var + BN_EPSILON) * gamma + beta


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def upsample_nearest(x, s):
    return np.repeat(np.repeat(x, s, axis=1), s, axis=2)


def embed(q, w, branch):
    """ReLU(BN(PW_E(BN(DW_k(Q))))) then the expansion 1×1 conv back to C channels (pre-activation)."""
    y = batchnorm(depthwise_same(q, w[f"{branch}_dw"][0]), *w[f"{branch}_dw_bn"])
    y = np.maximum(batchnorm(pointwise(y, w[f"{branch}_embed"][0]), *w[f"{branch}_embed_bn"]), 0)
    return pointwise(y, *w[f"{branch}_expand"])


def dcac(v, w, s, residual):
    """V' = Up_s(σ(PW(Emb_a(Q))) ⊙ PW(Emb_b(Q))) (+ V), Q = MaxPool_s(V)."""
    q = maxpool(v, s) if s > 1 else v
    a = sigmoid(embed(q, w, "attention"))
    b = embed(q, w, "feature")
    y = upsample_nearest(a * b, s)
    return v + y if residual else y


def attention_condenser(v, w, s):
    """V' = V ⊙ Up_s(S ⊙ σ(PW(Emb(Q))))."""
    q = maxpool(v, s) if s > 1 else v
    a = sigmoid(embed(q, w, "attention")) * w["scale"][0][0, 0, :, 0]
    return v * upsample_nearest(a, s)


def blurpool(x, size, stride, pad_mode):
    """Zhang's BlurPool: pad, depthwise binomial blur, subsample. pad_mode "reflect" | "zero" | "same"."""
    n, h, w, c = x.shape
    if pad_mode == "same":
        out_h, out_w = -(-h // stride), -(-w // stride)
        ph = max((out_h - 1) * stride + size - h, 0)
        pw = max((out_w - 1) * stride + size - w, 0)
        pads = ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0))
        xp = np.pad(x, pads)
    else:
        before, after = (size - 1) // 2, size // 2
        pads = ((0, 0), (before, after), (before, after), (0, 0))
        xp = np.pad(x, pads, mode="reflect" if pad_mode == "reflect" else "constant")
    kernel = binomial(size)
    full_h, full_w = xp.shape[1] - size + 1, xp.shape[2] - size + 1
    out = np.zeros((n, full_h, full_w, c))
    for i in range(size):
        for j in range(size):
            out += xp[:, i:i + full_h, j:j + full_w, :] * kernel[i, j]
    return out[:, ::stride, ::stride, :]
