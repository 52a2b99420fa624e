# Every target depends on the virtual environment, which is (re)built only when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install train test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# Train the default model (LSTM seq2seq) on the bundled dataset; extra Hydra overrides via ARGS="...".
train: $(STAMP)
	$(BIN)/tsattn train $(ARGS)

# Two workers (one torch thread each), each test module on one worker; JOBS=0 runs serially, in one process.
JOBS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -n $(JOBS) --dist loadfile --no-loadscope-reorder $(ARGS)

# Regenerate BENCHMARKS.md: ETTh1 accuracy (M and S, H=96, every model x 3 seeds) and training speed.
# About 32 minutes on 2 CPU cores (accuracy 17, speed 4.5, parallel jobs 10.5: its last sweep is the slow one). Longer horizons: $(BIN)/python benchmarks/accuracy.py --horizon 336
bench: $(STAMP)
	$(BIN)/python benchmarks/accuracy.py
	$(BIN)/python benchmarks/speed.py
	$(BIN)/python benchmarks/parallel_jobs.py

clean:
	rm -rf $(VENV) logs .pytest_cache build dist
