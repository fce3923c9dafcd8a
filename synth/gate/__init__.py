"""The novelty gate: sentence embeddings, a faiss index over the pool, an optional verifier for the borderline band,
and `dedup`, which runs an existing dataset through the same gate. faiss loads only when a gate is built."""
