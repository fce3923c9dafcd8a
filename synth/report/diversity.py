"""Diversity numbers for a dataset: pure functions over texts and unit-length embedding rows."""

from __future__ import annotations

import math
import re

import numpy as np

_WORD = re.compile(r"\w+|[^\w\s]")
KEY_LIMIT = 2 ** 62          # n-gram keys below this fit an int64


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def distinct_n(texts: list[str], n: int) -> float:
    """Distinct n-grams over all n-grams in the texts (Li et al. 2016); 0.0 when there are none."""
    return distinct_ns([words(t) for t in texts], (n,))[n]


def distinct_ns(token_lists: list[list[str]], ns: tuple[int, ...] = (1, 2, 3)) -> dict[int, float]:
    """distinct-n for each n over tokenized texts, in O(N log N) for N tokens: each token becomes an integer, each
    n-gram that stays within one text one int64 key (base = the vocabulary size), and np.unique counts the keys."""
    vocab: dict[str, int] = {}
    ids = np.fromiter((vocab.setdefault(t, len(vocab)) for tokens in token_lists for t in tokens), dtype=np.int64)
    owner = np.repeat(np.arange(len(token_lists)), [len(tokens) for tokens in token_lists])
    base = max(len(vocab), 1)
    out = {}
    for n in ns:
        count = len(ids) - n + 1
        within = owner[:count] == owner[n - 1:] if count > 0 else np.zeros(0, dtype=bool)
        total = int(within.sum())
        if not total:
            out[n] = 0.0
            continue
        if base ** n < KEY_LIMIT:
            keys = np.zeros(count, dtype=np.int64)
            for k in range(n):
                keys = keys * base + ids[k:k + count]
            distinct = np.unique(keys[within]).size
        else:                    # a vocabulary too large for one int64 key: unique rows instead
            distinct = len(np.unique(np.stack([ids[k:k + count] for k in range(n)], axis=1)[within], axis=0))
        out[n] = distinct / total
    return out


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
    if not len(items):
        return None
    fitted = _kmeans(np.concatenate([reference, items]), clusters, seed)
    return _occupancy(fitted, items) if fitted is not None else None


def group_coverage(groups: dict[str, np.ndarray], clusters: int, seed: int = 0) -> dict[str, dict] | None:
    """One k-means fit on all the groups together, then each group's occupancy of those clusters: a fair comparison
    of topic coverage when the groups are the same size."""
    if any(not len(vectors) for vectors in groups.values()):
        return None
    fitted = _kmeans(np.concatenate(list(groups.values())), clusters, seed)
    return {name: _occupancy(fitted, vectors) for name, vectors in groups.items()} if fitted is not None else None


def _kmeans(vectors: np.ndarray, clusters: int, seed: int):
    import faiss

    both = np.ascontiguousarray(vectors, dtype=np.float32)
    k = min(clusters, len(both))
    if k < 2:
        return None
    kmeans = faiss.Kmeans(both.shape[1], k, niter=20, seed=seed, spherical=True, verbose=False,
                          min_points_per_centroid=1)
    kmeans.train(both)
    return kmeans


def _occupancy(kmeans, items: np.ndarray) -> dict[str, float]:
    k = kmeans.k
    _, labels = kmeans.index.search(np.ascontiguousarray(items, dtype=np.float32), 1)
    counts = np.bincount(labels[:, 0], minlength=k)
    shares = counts[counts > 0] / counts.sum()
    return {"clusters": k, "occupied": int((counts > 0).sum()), "coverage": float((counts > 0).mean()),
            "evenness": float(-(shares * np.log(shares)).sum() / math.log(k))}


def histogram(values: list[float], bins: int, low: float, high: float) -> dict[str, list[float]]:
    counts, edges = np.histogram(np.asarray(values, dtype=float), bins=bins, range=(low, high))
    return {"counts": [int(c) for c in counts], "edges": [round(float(e), 6) for e in edges]}
