# One command each, from a fresh clone: the virtual environment, pinned installs, then the result.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

BENCH_VENV := .bench-venv
BENCH_STAMP := $(BENCH_VENV)/.installed-stamp

.PHONY: install test demo demo-train soak bench bench-env bench-train-env bench-train clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[local,test]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

demo: $(STAMP)
	$(VENV)/bin/synth generate --teacher local --num 20 --out runs/demo --overwrite
	$(VENV)/bin/synth export runs/demo --format openai-chat --out runs/demo/openai-chat.jsonl

# The embedded student fine-tuned on the demo run (CPU: about 4 minutes): eval loss before/after, samples, adapter.
demo-train: $(STAMP)
	test -f runs/demo/data.jsonl || $(MAKE) demo
	$(VENV)/bin/synth train runs/demo --out students/demo --overwrite

# The full reliability battery: 10,000 requests at concurrency 64 with ~30% faults, a 60 s outage; figures to bench/RESULTS.md.
soak: $(STAMP)
	$(PY) -m pytest -q tests/reliability
	$(PY) bench/soak.py

# Peers for the throughput benchmark, in their own venv (never synth's dependencies).
$(BENCH_STAMP): bench/requirements-peers.txt bench/constraints-peers.txt
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	PIP_CONSTRAINT=$(CURDIR)/bench/constraints-peers.txt $(BENCH_VENV)/bin/pip install -q -r bench/requirements-peers.txt
	touch $(BENCH_STAMP)

bench-env: $(BENCH_STAMP)

# TRL beside synth for the training benchmark, in its own venv (TRL is never a dependency of synth).
TRAIN_BENCH_VENV := .bench-train-venv
TRAIN_BENCH_STAMP := $(TRAIN_BENCH_VENV)/.installed-stamp
$(TRAIN_BENCH_STAMP): pyproject.toml constraints.txt bench/requirements-train.txt
	test -x $(TRAIN_BENCH_VENV)/bin/python || $(PYTHON) -m venv $(TRAIN_BENCH_VENV)
	$(TRAIN_BENCH_VENV)/bin/pip install -q torch==2.13.0
	$(TRAIN_BENCH_VENV)/bin/pip install -q -e ".[local]" -r bench/requirements-train.txt
	touch $(TRAIN_BENCH_STAMP)

bench-train-env: $(TRAIN_BENCH_STAMP)

# synth train against TRL's SFTTrainer (defaults, and packing) on runs/demo; figures to bench/RESULTS.md by hand.
bench-train: $(TRAIN_BENCH_STAMP)
	test -f runs/demo/data.jsonl || $(MAKE) demo
	$(TRAIN_BENCH_VENV)/bin/python bench/train.py

# Throughput against distilabel, Curator and a naive loop, and the full pipeline's own overhead.
bench: $(STAMP) $(BENCH_STAMP)
	$(PY) bench/throughput.py --n 5000 --concurrency 64 256 16 --n-for 256=2000 16=1000 --write
	$(PY) bench/pipeline_overhead.py --repeat 3 --write

clean:
	rm -rf $(VENV) $(BENCH_VENV) $(TRAIN_BENCH_VENV) runs/demo students/demo dist build
