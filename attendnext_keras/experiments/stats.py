"""The study's statistics: summaries over seeds, noise floors and ties, paired comparisons (seed level and a paired
bootstrap over test images), Pareto fronts per family and the iso-accuracy interpolation. NumPy only, so each
function is checked against hand-worked examples (tests/test_stats.py).

Conventions: accuracies are fractions; latencies are milliseconds, interpolated in log-latency (speed ratios are
what compounds); a front is the models no other model of the family beats in both accuracy and latency.
"""

from __future__ import annotations

import math

import numpy as np

TIE_STANDARD_ERRORS = 2.0
"""A difference smaller than this many standard errors is reported as a tie."""


def summarize(values) -> dict:
    """Mean, sample standard deviation (0 for one value), count and standard error of the mean."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        raise ValueError("No values to summarize.")
    std = float(v.std(ddof=1)) if v.size > 1 else 0.0
    return {"mean": float(v.mean()), "std": std, "n": int(v.size), "sem": std / math.sqrt(v.size)}


def split_standard_error(accuracy: float, examples: int) -> float:
    """The binomial standard error of an accuracy measured on `examples` test images: what the test split alone
    leaves uncertain, sqrt(p(1-p)/n)."""
    return math.sqrt(max(accuracy * (1 - accuracy), 0.0) / examples)


def is_tie(difference: float, standard_error: float, k: float = TIE_STANDARD_ERRORS) -> bool:
    return abs(difference) < k * standard_error


def paired_seeds(a: dict, b: dict) -> dict:
    """Paired difference a − b over the seeds both have ({seed: accuracy}): mean, std, n, standard error, a 95 %
    t interval and whether it is a tie (|mean| < 2 standard errors)."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        raise ValueError("The two arms share no seed.")
    d = np.array([a[s] - b[s] for s in seeds], dtype=np.float64)
    s = summarize(d)
    half = _t95(len(d) - 1) * s["sem"] if len(d) > 1 else float("inf")
    return {**s, "seeds": seeds, "ci95": [s["mean"] - half, s["mean"] + half],
            "tie": len(d) < 2 or is_tie(s["mean"], s["sem"])}


def _t95(dof: int) -> float:
    """Two-sided 95 % quantile of Student's t (table for small samples, normal beyond)."""
    table = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}
    return table.get(dof, 1.96 if dof > 30 else 2.1)


def paired_bootstrap(correct_a, correct_b, samples: int = 10_000, seed: int = 0) -> dict:
    """Paired bootstrap over test images of accuracy(a) − accuracy(b).

    `correct_a`, `correct_b`: 0/1 arrays (seeds, images) or (images,): whether each run got each test image right,
    the images in the same order for both. Each bootstrap sample draws the images with replacement (the same draw for
    both arms and every seed) and averages over seeds. Returns the observed difference, a 95 % percentile interval,
    and the two-sided p-value of "no difference" (twice the smaller tail mass at 0)."""
    a, b = _as_matrix(correct_a), _as_matrix(correct_b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"The arms were tested on different numbers of images: {a.shape[1]} and {b.shape[1]}.")
    per_image = a.mean(0) - b.mean(0)  # seed-averaged difference per test image
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, per_image.size, size=(samples, per_image.size))
    diffs = per_image[draws].mean(1)
    observed = float(per_image.mean())
    tail = min(float((diffs <= 0).mean()), float((diffs >= 0).mean()))
    low, high = np.percentile(diffs, [2.5, 97.5])
    return {"difference": observed, "ci95": [float(low), float(high)], "p_value": min(1.0, 2 * tail),
            "samples": samples, "images": int(per_image.size), "significant": bool(low > 0 or high < 0)}


def _as_matrix(correct) -> np.ndarray:
    m = np.asarray(correct, dtype=np.float64)
    return m[None] if m.ndim == 1 else m


def pareto_front(points) -> list:
    """Indices of (latency, accuracy) points on the front: no other point is at least as fast and as accurate and
    better in one; sorted by latency (so accuracy rises along it)."""
    front = []
    for i, (lat, acc) in enumerate(points):
        dominated = any((l2 <= lat and a2 >= acc) and (l2 < lat or a2 > acc) for j, (l2, a2) in enumerate(points)
                        if j != i)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def latency_at_accuracy(front, accuracy: float):
    """The latency a front ([(latency, accuracy)] sorted by latency, accuracy rising) needs for `accuracy`,
    interpolated linearly in log-latency between the two front points around it. Returns (latency, where) with
    where "interpolated", "at point", "above front" (more accurate than every point: the front's slowest latency,
    a lower bound) or "below front" (less accurate than every point: the fastest latency, an upper bound)."""
    front = sorted(front)
    if not front:
        raise ValueError("Empty front.")
    accuracies = [a for _, a in front]
    if accuracy > accuracies[-1]:
        return front[-1][0], "above front"
    if accuracy < accuracies[0]:
        return front[0][0], "below front"
    for (l0, a0), (l1, a1) in zip(front, front[1:]):
        if a0 <= accuracy <= a1:
            if a1 == a0:
                return l0, "at point"
            t = (accuracy - a0) / (a1 - a0)
            return float(math.exp(math.log(l0) + t * (math.log(l1) - math.log(l0)))), "interpolated"
    return front[0][0], "at point"  # a one-point front with exactly this accuracy


def accuracy_at_latency(front, latency: float, beyond: bool = False):
    """The accuracy a front reaches at `latency` (interpolated in log-latency); None outside its latency range, or
    with `beyond`, its best accuracy above that range (a larger budget can still run its slowest model)."""
    front = sorted(front)
    if front and beyond and latency > front[-1][0]:
        return front[-1][1]
    if not front or latency < front[0][0] or latency > front[-1][0]:
        return None
    for (l0, a0), (l1, a1) in zip(front, front[1:]):
        if l0 <= latency <= l1:
            t = (math.log(latency) - math.log(l0)) / (math.log(l1) - math.log(l0)) if l1 > l0 else 0.0
            return a0 + t * (a1 - a0)
    return front[0][1]


def iso_accuracy(model_point, front) -> dict:
    """How a model (latency, accuracy) compares with a family's front: `speedup` = the latency the front needs for
    the model's accuracy ÷ the model's latency (the paper's "× faster at comparable accuracy"; a bound when the model
    lies outside the front's accuracy range), and `accuracy_gain` = model accuracy − the front's accuracy at the
    model's latency (None outside the front's latency range)."""
    latency, accuracy = model_point
    needed, where = latency_at_accuracy(front, accuracy)
    at_latency = accuracy_at_latency(front, latency)
    return {"front_latency": needed, "where": where, "speedup": needed / latency,
            "bound": {"above front": "at least", "below front": "at most"}.get(where),
            "accuracy_gain": None if at_latency is None else accuracy - at_latency}


def front_margins(front_a, front_b) -> list:
    """[(latency, accuracy of front a − accuracy of front b)] at every point of either front ([(latency, accuracy)])
    where the other front has a model at that latency or faster (beyond its slowest point a front keeps its best
    accuracy), sorted by latency: how far front a is above front b wherever both can run. Both fronts are piecewise
    linear in log-latency and flat beyond, so the smallest margin is at one of these points."""
    at = lambda front, lat: accuracy_at_latency(front, lat, beyond=True)  # noqa: E731
    out = [(lat, acc - other) for lat, acc in front_a if (other := at(front_b, lat)) is not None]
    out += [(lat, mine - acc) for lat, acc in front_b if (mine := at(front_a, lat)) is not None]
    return sorted(out)


def kendall_tau(a, b) -> float:
    """Kendall's tau-b between two scorings of the same items (1: same order, −1: reversed). Tau-b, not tau-a, so that
    a ranking with ties (two models at the same mean accuracy) compared with itself gives 1; 0 when either scoring
    ties every item."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.size < 2:
        raise ValueError("Kendall's tau needs two scorings of the same two or more items.")
    i, j = np.triu_indices(a.size, k=1)
    sign_a, sign_b = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
    untied = np.sqrt(float(np.count_nonzero(sign_a)) * float(np.count_nonzero(sign_b)))
    return float(np.sum(sign_a * sign_b) / untied) if untied else 0.0


def ranking_stability(curves: dict) -> list:
    """[(epoch, tau)]: Kendall's tau between the models' ranking at each epoch and at the last epoch they all have,
    from {model: accuracy per epoch} (e.g. the selection curves averaged over seeds)."""
    length = min(len(c) for c in curves.values())
    if length == 0 or len(curves) < 2:
        return []
    final = [c[length - 1] for c in curves.values()]
    return [(e + 1, kendall_tau([c[e] for c in curves.values()], final)) for e in range(length)]


def settled_epoch(stability, threshold: float = 0.9):
    """The first epoch from which the ranking stays within `threshold` of the final one (None if it never does)."""
    for k, (epoch, _) in enumerate(stability):
        if all(tau >= threshold for _, tau in stability[k:]):
            return epoch
    return None
