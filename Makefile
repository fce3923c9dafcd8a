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

.PHONY: install test demo demo-train demo-eval soak bench bench-env bench-synth-env bench-train bench-novelty clean

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

# The whole loop on the embedded models, offline: generate (explanation mode on the bundled seeds) -> train -> eval.
# SmolLM2-135M is teacher, student and judge, so its verdicts are weak; the eval's prompts share no task with the seeds.
demo-eval: $(STAMP)
	$(VENV)/bin/synth generate --teacher local --queries seeds/general.jsonl --num 16 --max-tokens 512 --out runs/demo-eval --overwrite
	$(VENV)/bin/synth train runs/demo-eval --out students/demo-eval --epochs 1 --max-len 512 --overwrite
	$(VENV)/bin/synth eval students/demo-eval --judge local --tasks bundled --limit 8 --max-new-tokens 96 --overwrite

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

# synth beside the baselines it is measured against (TRL for training, rouge-score for the novelty gate), in a
# venv of their own: they are never dependencies of synth.
SYNTH_BENCH_VENV := .bench-synth-venv
SYNTH_BENCH_STAMP := $(SYNTH_BENCH_VENV)/.installed-stamp
$(SYNTH_BENCH_STAMP): pyproject.toml constraints.txt bench/requirements-baselines.txt bench/constraints-baselines.txt
	test -x $(SYNTH_BENCH_VENV)/bin/python || $(PYTHON) -m venv $(SYNTH_BENCH_VENV)
	$(SYNTH_BENCH_VENV)/bin/pip install -q torch==2.13.0
	PIP_CONSTRAINT="$(CURDIR)/constraints.txt $(CURDIR)/bench/constraints-baselines.txt" \
		$(SYNTH_BENCH_VENV)/bin/pip install -q -e ".[local]" -r bench/requirements-baselines.txt
	touch $(SYNTH_BENCH_STAMP)

bench-synth-env: $(SYNTH_BENCH_STAMP)

# synth train against TRL's SFTTrainer (defaults, and packing) on runs/demo; figures go into bench/RESULTS.md.
bench-train: $(SYNTH_BENCH_STAMP)
	test -f runs/demo/data.jsonl || $(MAKE) demo
	$(SYNTH_BENCH_VENV)/bin/python bench/train.py

# The novelty gate against all-pairs ROUGE-L and raw encoding, and paraphrase precision/recall.
bench-novelty: $(SYNTH_BENCH_STAMP)
	$(SYNTH_BENCH_VENV)/bin/python bench/novelty.py quality
	$(SYNTH_BENCH_VENV)/bin/python bench/novelty.py speed --prefix 120

# Throughput against distilabel, Curator and a naive loop, and the full pipeline's own overhead.
bench: $(STAMP) $(BENCH_STAMP)
	$(PY) bench/throughput.py --n 5000 --concurrency 64 256 16 --n-for 256=2000 16=1000 --write
	$(PY) bench/pipeline_overhead.py --repeat 3 --write

clean:
	rm -rf $(VENV) $(BENCH_VENV) $(SYNTH_BENCH_VENV) runs/demo students/demo dist build
