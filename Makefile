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

# Regenerate BENCHMARKS.md: accuracy on ETTh1 (M and S) and ETTh2 (M) at H=96, every model x 3 seeds; M4 Hourly;
# the defaults on a user's CSV and the tuned experiments on the same split; training speed; parallel sweep
# jobs. About 80 minutes on 2 CPU cores (ETTh1 17, ETTh2 13, M4 11, defaults 24, speed 4.5, parallel jobs
# 10.5); each script also runs alone, and each table names its command.
# Longer horizons: $(BIN)/python benchmarks/accuracy.py --horizons 192 336 720 --settings M [--dataset etth2]
# Lookback chosen on validation: $(BIN)/python benchmarks/accuracy.py --settings M --lookbacks 96 192 336 512 720
bench: $(STAMP)
	$(BIN)/python benchmarks/accuracy.py
	$(BIN)/python benchmarks/accuracy.py --dataset etth2 --settings M
	$(BIN)/python benchmarks/m4_hourly.py
	$(BIN)/python benchmarks/defaults.py
	$(BIN)/python benchmarks/speed.py
	$(BIN)/python benchmarks/parallel_jobs.py

clean:
	rm -rf $(VENV) logs .pytest_cache build dist
