"""The study's statistics (attendnext_keras.experiments.stats) against hand-worked examples."""

import math

import numpy as np
import pytest

from attendnext_keras.experiments import stats


def test_summary_and_noise_floor_by_hand():
    s = stats.summarize([0.70, 0.74, 0.72])
    assert s["mean"] == pytest.approx(0.72) and s["std"] == pytest.approx(0.02) and s["n"] == 3
    assert s["sem"] == pytest.approx(0.02 / math.sqrt(3))
    assert stats.summarize([0.5])["std"] == 0.0
    assert stats.split_standard_error(0.8, 400) == pytest.approx(0.02)  # sqrt(0.8 · 0.2 / 400)
    assert stats.is_tie(0.03, 0.02) and not stats.is_tie(0.05, 0.02)


def test_paired_seeds_by_hand():
    a = {0: 0.80, 1: 0.82, 2: 0.78}
    b = {0: 0.75, 1: 0.76, 2: 0.74, 3: 0.9}  # seed 3 has no partner and is left out
    paired = stats.paired_seeds(a, b)
    assert paired["seeds"] == [0, 1, 2]
    assert paired["mean"] == pytest.approx(0.05) and paired["std"] == pytest.approx(0.01)
    half = 4.303 * 0.01 / math.sqrt(3)  # t(0.975, 2 dof) · sem
    assert paired["ci95"] == pytest.approx([0.05 - half, 0.05 + half])
    assert not paired["tie"]  # 0.05 against a standard error of 0.0058
    assert stats.paired_seeds({0: 0.7, 1: 0.72}, {0: 0.71, 1: 0.70})["tie"]


def test_paired_bootstrap_by_hand():
    # Arm a gets 60 of 100 images right, b the same 60 minus 10: a is better on exactly 10 images.
    b = np.zeros(100, int)
    b[:50] = 1
    a = b.copy()
    a[50:60] = 1
    result = stats.paired_bootstrap(a, b, samples=4000, seed=0)
    assert result["difference"] == pytest.approx(0.10) and result["images"] == 100
    # The difference per image is 0/1 with p = 0.1: its mean's standard error is 0.03, so ~[0.04, 0.16].
    assert 0.03 < result["ci95"][0] < 0.06 and 0.14 < result["ci95"][1] < 0.17
    assert result["significant"] and result["p_value"] < 0.01
    same = stats.paired_bootstrap(np.stack([a, a]), np.stack([a, a]), samples=500)
    assert same["difference"] == 0 and same["p_value"] == 1.0 and not same["significant"]
    with pytest.raises(ValueError, match="different numbers of images"):
        stats.paired_bootstrap(a, a[:50])


def test_pareto_front_sorted_by_latency():
    points = [(1.0, 0.70), (2.0, 0.65), (3.0, 0.75), (0.5, 0.60), (3.0, 0.74)]
    assert stats.pareto_front(points) == [3, 0, 2]  # (2.0, .65) and (3.0, .74) are beaten


def test_iso_accuracy_by_hand():
    front = [(1.0, 0.60), (4.0, 0.80)]
    # 0.70 lies halfway: log-latency halfway between 1 and 4 is 2 ms.
    latency, where = stats.latency_at_accuracy(front, 0.70)
    assert latency == pytest.approx(2.0) and where == "interpolated"
    iso = stats.iso_accuracy((0.5, 0.70), front)
    assert iso["speedup"] == pytest.approx(4.0) and iso["bound"] is None
    assert iso["accuracy_gain"] is None  # 0.5 ms is faster than the whole front
    at_two = stats.iso_accuracy((2.0, 0.75), front)
    assert at_two["accuracy_gain"] == pytest.approx(0.05)  # the front reaches 0.70 at 2 ms
    above = stats.iso_accuracy((1.0, 0.85), front)
    assert above["where"] == "above front" and above["bound"] == "at least" and above["speedup"] == pytest.approx(4.0)
    below = stats.iso_accuracy((2.0, 0.50), front)
    assert below["where"] == "below front" and below["bound"] == "at most" and below["speedup"] == pytest.approx(0.5)
    assert stats.accuracy_at_latency(front, 1.0) == pytest.approx(0.60)
    assert stats.accuracy_at_latency(front, 5.0) is None


def test_front_margins_by_hand():
    peers = [(1.0, 0.60), (4.0, 0.80)]
    ours = [(0.5, 0.65), (2.0, 0.72), (8.0, 0.90)]
    # Our 2 ms point against the peers' 0.70 there (halfway in log-latency); their 1 ms point against ours at 1 ms
    # (halfway between 0.5 and 2 ms: 0.685); their 4 ms point against ours at 4 ms (halfway between 2 and 8: 0.81);
    # our 8 ms point against their best (4 ms, 0.80: a budget of 8 ms runs it too).
    margins = stats.front_margins(ours, peers)
    assert [lat for lat, _ in margins] == [1.0, 2.0, 4.0, 8.0]  # at 0.5 ms the peers have no model
    assert [m for _, m in margins] == pytest.approx([0.085, 0.02, 0.01, 0.10])
    assert stats.front_margins(peers, ours)[0][1] == pytest.approx(-0.085)
    # One model faster and more accurate than the whole front: above it at every peer point.
    dominating = stats.front_margins([(0.5, 0.9)], peers)
    assert [lat for lat, _ in dominating] == [1.0, 4.0] and [m for _, m in dominating] == pytest.approx([0.3, 0.1])
    [(lat, margin)] = stats.front_margins([(10.0, 0.5)], peers)  # slower and less accurate than their best
    assert lat == 10.0 and margin == pytest.approx(-0.3)
    assert stats.accuracy_at_latency(peers, 5.0) is None and stats.accuracy_at_latency(peers, 5.0, beyond=True) == 0.8


def test_kendall_tau_and_ranking_stability_by_hand():
    assert stats.kendall_tau([1, 2, 3], [10, 20, 30]) == 1.0
    assert stats.kendall_tau([1, 2, 3], [3, 2, 1]) == -1.0
    assert stats.kendall_tau([1, 2, 3, 4], [1, 2, 4, 3]) == pytest.approx(4 / 6)  # one of six pairs swapped
    assert stats.kendall_tau([1, 1, 2], [5, 5, 7]) == 1.0  # the same ranking with a tie (tau-a would say 2/3)
    assert stats.kendall_tau([1, 1, 2], [5, 6, 7]) == pytest.approx(2 / np.sqrt(2 * 3))  # scipy's tau-b: 0.816
    assert stats.kendall_tau([1, 1, 1], [5, 6, 7]) == 0.0
    curves = {"a": [0.5, 0.6, 0.7, 0.8], "b": [0.6, 0.7, 0.75, 0.7], "c": [0.4, 0.5, 0.6, 0.65]}
    stability = stats.ranking_stability(curves)
    assert [e for e, _ in stability] == [1, 2, 3, 4] and stability[-1][1] == 1.0
    assert stability[0][1] == pytest.approx(1 / 3)  # b ahead of a until epoch 4
    assert stats.settled_epoch(stability) == 4 and stats.settled_epoch(stability, threshold=0.3) == 1
