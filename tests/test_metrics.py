"""attendnext_keras.metrics: the one top-k loop behind Keras, LiteRT and TFLM evaluation."""

import numpy as np
import pytest

from attendnext_keras.metrics import labels_of, top_k_accuracy


def test_top_k_counts_by_hand():
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.4, 0.35, 0.25]])
    labels = np.array([1, 1, 0, 2])  # top-1 right: image 0 only; top-2 right: images 0 and 1
    batches = [(scores[:2], labels[:2]), (scores[2:], labels[2:])]
    result = top_k_accuracy(lambda s: s, batches, ks=(1, 2))
    assert result == {"top1": 0.25, "examples": 4, "top2": 0.5}
    one_hot = np.eye(3)[labels]
    assert top_k_accuracy(lambda s: s, [(scores, one_hot)], ks=(1,)) == {"top1": 0.25, "examples": 4}
    assert labels_of(np.array([[2], [0]])).tolist() == [2, 0]


def test_bad_evaluations_are_refused():
    with pytest.raises(ValueError, match="empty"):
        top_k_accuracy(lambda s: s, [])
    with pytest.raises(ValueError, match="class index 4 but the model has 3 outputs"):
        top_k_accuracy(lambda s: s, [(np.zeros((2, 3)), np.array([0, 4]))])
    with pytest.raises(ValueError, match="returned 2 rows for a batch of 3 labels"):
        top_k_accuracy(lambda s: s, [(np.zeros((2, 3)), np.array([0, 1, 2]))])
