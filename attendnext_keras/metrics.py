"""Accuracy of any scorer on (images, labels) batches: the one top-k loop behind Keras, LiteRT and TFLM evaluation.

    result = top_k_accuracy(lambda images: model(images, training=False), val_ds)   # {"top1", "examples"[, "top5"]}
"""

from __future__ import annotations

import numpy as np


def labels_of(labels) -> np.ndarray:
    """Class indices from index labels (N,) / (N, 1) or one-hot / soft labels (N, classes)."""
    labels = np.asarray(labels)
    return labels.argmax(-1) if labels.ndim == 2 and labels.shape[-1] > 1 else labels.reshape(-1)


def top_k_accuracy(score_fn, dataset, ks=(1, 5)) -> dict:
    """{"top1": fraction, "examples": count} (and "top5" when the model has more than 5 classes and 5 is in `ks`)
    of `score_fn(images) -> scores (N, classes)` over a dataset of (images, labels) batches."""
    correct = {k: 0 for k in ks}
    total, classes = 0, 0
    for images, labels in dataset:
        scores = np.asarray(score_fn(images))
        labels = labels_of(labels)
        if len(scores) != len(labels):
            raise ValueError(f"The scorer returned {len(scores)} rows for a batch of {len(labels)} labels.")
        classes = scores.shape[-1]
        if len(labels) and int(labels.max()) >= classes:
            raise ValueError(f"The data has class index {int(labels.max())} but the model has {classes} outputs: "
                             f"model and data do not have the same classes.")
        order = np.argsort(-scores, axis=-1, kind="stable")
        for k in ks:
            correct[k] += int((order[:, :k] == labels[:, None]).any(-1).sum())
        total += len(labels)
    if total == 0:
        raise ValueError("The evaluation dataset is empty.")
    result = {"top1": correct[1] / total, "examples": total} if 1 in correct else {"examples": total}
    result.update({f"top{k}": correct[k] / total for k in ks if k != 1 and classes > k})
    return result
