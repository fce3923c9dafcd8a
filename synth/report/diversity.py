"""Diversity numbers for a dataset: pure functions over texts and unit-length embedding rows."""

from __future__ import annotations

import math
import re

import numpy as np

_WORD = re.compile(r"\w+|[^\w\s]")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def distinct_n(texts: list[str], n: int) -> float:
    """Distinct n-grams over all n-grams in the texts (Li et al. 2016); 0.0 when there are none."""
    seen, total = set(), 0
    for text in texts:
        tokens = words(text)
        grams = [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
        seen.update(grams)
        total += len(grams)
    return len(seen) / total if total else 0.0


def mean_pairwise_cosine_distance(vectors: np.ndarray) -> float | None:
    """1 - the mean cosine similarity over all distinct pairs of unit vectors, in O(n d) via the sum vector."""
    n = len(vectors)
    if n < 2:
        return None
    total = vectors.astype(np.float64).sum(axis=0)
    mean_similarity = (float(total @ total) - n) / (n * (n - 1))
    return 1.0 - mean_similarity


def vendi_score(vectors: np.ndarray) -> float | None:
    """exp of the entropy of the eigenvalues of K/n, K the cosine-similarity matrix (Friedman & Dieng 2023): the
    effective number of distinct items. K/n = X Xᵀ/n has the nonzero eigenvalues of Xᵀ X/n, a d×d matrix."""
    n = len(vectors)
    if n == 0:
        return None
    x = vectors.astype(np.float64)
    eigenvalues = np.linalg.eigvalsh(x.T @ x / n) if x.shape[1] < n else np.linalg.eigvalsh(x @ x.T / n)
    eigenvalues = eigenvalues[eigenvalues > 1e-12]
    return float(math.exp(-float((eigenvalues * np.log(eigenvalues)).sum())))


def sample_rows(count: int, size: int, seed: int = 0) -> np.ndarray:
    """A fixed, seeded choice of `size` row numbers out of `count` (all of them when there are fewer)."""
    if count <= size:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, size, replace=False))


def cluster_coverage(reference: np.ndarray, items: np.ndarray, clusters: int, seed: int = 0) -> dict[str, float] | None:
    """k-means on reference ∪ items; how many clusters the items occupy, and how evenly (normalised entropy)."""
    import faiss

    both = np.ascontiguousarray(np.concatenate([reference, items]), dtype=np.float32)
    k = min(clusters, len(both))
    if k < 2 or not len(items):
        return None
    kmeans = faiss.Kmeans(both.shape[1], k, niter=20, seed=seed, spherical=True, verbose=False,
                          min_points_per_centroid=1)
    kmeans.train(both)
    _, labels = kmeans.index.search(np.ascontiguousarray(items, dtype=np.float32), 1)
    counts = np.bincount(labels[:, 0], minlength=k)
    shares = counts[counts > 0] / counts.sum()
    return {"clusters": k, "occupied": int((counts > 0).sum()), "coverage": float((counts > 0).mean()),
            "evenness": float(-(shares * np.log(shares)).sum() / math.log(k))}


def histogram(values: list[float], bins: int, low: float, high: float) -> dict[str, list[float]]:
    counts, edges = np.histogram(np.asarray(values, dtype=float), bins=bins, range=(low, high))
    return {"counts": [int(c) for c in counts], "edges": [round(float(e), 6) for e in edges]}
