"""The numbers of an evaluation, as pure functions: rates with intervals, ROUGE-L, a length-aware view, the share
of degenerate answers and the judge's position bias.

Intervals: each of win, tie and loss rate gets a Wilson score interval (95%); the headline win rate, which counts a
tie as half a win, gets a percentile bootstrap interval (95%, 2,000 resamples, seeded) because it is not a plain
proportion.
"""

from __future__ import annotations

import math
import random
import re
from statistics import NormalDist
from typing import Any, Iterable, Sequence

from .judge import Outcome

Z95 = NormalDist().inv_cdf(0.975)
BOOTSTRAP_RESAMPLES = 2000
# bins of the first contestant's answer length over the second's (in words)
RATIO_EDGES = (0.5, 0.8, 1.25, 2.0)
_WORD = re.compile(r"\w+", re.UNICODE)


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion; (0, 1) when there are no trials."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap(values: Sequence[float], seed: int, resamples: int = BOOTSTRAP_RESAMPLES) -> tuple[float, float]:
    """The 95% percentile bootstrap interval of the mean of `values`, reproducible from `seed`."""
    if not values:
        return 0.0, 1.0
    rng = random.Random(seed)
    n = len(values)
    means = sorted(sum(values[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    return means[int(0.025 * (resamples - 1))], means[int(math.ceil(0.975 * (resamples - 1)))]


def win_counts(found: Iterable[Outcome], seed: int) -> dict[str, Any]:
    """Win, tie and loss counts and rates with their intervals, and the win rate with ties as half a win."""
    results = [o.result for o in found]
    n = len(results)
    counts = {k: results.count(k) for k in ("win", "tie", "loss")}
    points = [{"win": 1.0, "tie": 0.5, "loss": 0.0}[r] for r in results]
    rates = {k: {"count": c, "rate": c / n if n else None, "ci95": list(wilson(c, n))} for k, c in counts.items()}
    score = sum(points) / n if n else None
    return {"pairs": n, **rates, "win_rate": score, "win_rate_ci95": list(bootstrap(points, seed)),
            "intervals": "Wilson score (win, tie, loss); percentile bootstrap, 2000 resamples, seeded (win_rate)"}


def position_bias(found: Sequence[Outcome]) -> dict[str, Any]:
    """How often the verdict changed when the answers swapped places, and which place the changes favoured."""
    n = len(found)
    changed = [o for o in found if o.changed]
    return {"pairs": n, "rate": len(changed) / n if n else None,
            "flipped_rate": sum(o.flipped for o in found) / n if n else None,
            "favoured_first_shown": sum(o.first_shown_favoured > 0 for o in changed),
            "favoured_second_shown": sum(o.first_shown_favoured < 0 for o in changed)}


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """The length of the longest common subsequence of two token lists (one row of the table at a time)."""
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1 on lower-cased word tokens."""
    c, r = words(candidate), words(reference)
    if not c or not r:
        return 0.0
    common = lcs_length(c, r)
    if common == 0:
        return 0.0
    precision, recall = common / len(c), common / len(r)
    return 2 * precision * recall / (precision + recall)


def ratio_bin(ratio: float) -> str:
    edges = (0.0,) + RATIO_EDGES + (math.inf,)
    for low, high in zip(edges, edges[1:]):
        if low <= ratio < high:
            return f"{low:g}-{high:g}" if high != math.inf else f">={low:g}"
    return f">={RATIO_EDGES[-1]:g}"


def length_view(found: Sequence[Outcome], lengths: dict[str, tuple[int, int]]) -> dict[str, Any]:
    """Win rate (ties as half) within bins of length(first) / length(second), in words; and the mean lengths."""
    bins: dict[str, list[float]] = {ratio_bin(r): [] for r in (0.1, 0.6, 1.0, 1.5, 3.0)}
    for o in found:
        first, second = lengths[o.pair]
        bins[ratio_bin((first + 1) / (second + 1))].append({"win": 1.0, "tie": 0.5, "loss": 0.0}[o.result])
    table = {name: {"pairs": len(v), "win_rate": sum(v) / len(v) if v else None} for name, v in bins.items()}
    all_pairs = list(lengths.values())
    mean = (lambda xs: sum(xs) / len(xs) if xs else None)
    return {"ratio_bins": table, "mean_words_first": mean([a for a, _ in all_pairs]),
            "mean_words_second": mean([b for _, b in all_pairs]),
            "ratio": "(words of the first contestant's answer + 1) / (words of the second's + 1)"}


def degenerate(rows: Sequence[dict[str, Any]], check) -> dict[str, Any]:
    """The share of answers with at least one degenerate signal, and the count of each signal, by `check(row)`,
    which returns the signal names found (see synth.quality.signals)."""
    names: dict[str, int] = {}
    flagged = 0
    for row in rows:
        found = check(row)
        flagged += bool(found)
        for name in found:
            names[name] = names.get(name, 0) + 1
    return {"answers": len(rows), "rate": flagged / len(rows) if rows else None, "signals": names}
