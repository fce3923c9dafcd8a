"""Benchmark decontamination: find the rows of a dataset that hold items of evaluation benchmarks.

    benchmarks.py      local files and folders, and a table of well-known benchmarks on the Hugging Face Hub
    text.py            the normalisation both sides go through (NFKC, lower case, no punctuation, one space)
    hashing.py         words and n-grams as 64-bit hashes, a whole batch at a time
    ngram.py           stage 1: a hashed n-gram index per benchmark, built once and kept on disk
    matching.py        stage 1's hits confirmed word by word: the item, the matched span, the coverage
    embedding.py       stage 2: the benchmark's questions in the novelty gate's index (stage 3, the verifier's band)
    verifier.py        stage 3: "is this the same problem as this benchmark item?" asked of a model
    decontaminator.py  Decontaminator: open the indexes once, check texts, count what was found
    config.py, api.py  DecontamConfig and decontaminate(), behind `synth decontaminate`
"""

from .api import DecontamResult, decontaminate, row_texts
from .benchmarks import KNOWN, Benchmark, BenchmarkItem, load_benchmarks
from .config import DecontamConfig
from .decontaminator import Decontaminator, Flag
from .text import normalize

__all__ = ["DecontamConfig", "DecontamResult", "Decontaminator", "Flag", "KNOWN", "Benchmark", "BenchmarkItem",
           "decontaminate", "load_benchmarks", "normalize", "row_texts"]
