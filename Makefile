# Every target depends on the virtual environment, which is (re)built only when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install train test bench bench-full clean

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

# Regenerate BENCHMARKS.md: accuracy on ETTh1 (M and S) and ETTh2 (M) at H=96, every model x 3 seeds; M4 Hourly
# x 3 seeds; the defaults on a user's CSV (ETTh1, ETTh2, two public datasets from the bench extra, the bundled
# data; forecasters and linear baselines x 3 seeds) and the tuned experiments on the same split; training
# speed; parallel sweep jobs. Several hours on 2 CPU cores (README, Tests); each script also runs alone, and
# each table names its command.
# `make bench-full` makes the other tables of BENCHMARKS.md (H=192 to 720 in M, S at every H, the lookback
# searches): about 6 hours on 2 CPU cores (times per command: the README's Tests section).
BENCH_STAMP := $(VENV)/.installed-bench
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/accuracy.py
	$(BIN)/python benchmarks/accuracy.py --dataset etth2 --settings M
	$(BIN)/python benchmarks/m4_hourly.py --seeds 0 1 2 3 4 --losses smape_mase mae --ensemble median --override=threads=1
	$(BIN)/python benchmarks/calibration.py
	$(BIN)/python benchmarks/future_covariates.py
	$(BIN)/python benchmarks/defaults.py
	$(BIN)/python benchmarks/defaults.py --datasets etth1 etth2 --seeds 0
	$(BIN)/python benchmarks/defaults.py --datasets etth1 etth2 --settings tuned --seeds 0
	$(BIN)/python benchmarks/speed.py
	$(BIN)/python benchmarks/parallel_jobs.py
	$(BIN)/python benchmarks/bundle_memory.py

bench-full: $(STAMP)
	$(BIN)/python benchmarks/accuracy.py --dataset etth1 --settings M --horizons 192 336 720
	$(BIN)/python benchmarks/accuracy.py --dataset etth2 --settings M --horizons 192 336 720
	$(BIN)/python benchmarks/accuracy.py --dataset etth1 --settings S --horizons 96 192 336 720
	$(BIN)/python benchmarks/accuracy.py --dataset etth2 --settings S --horizons 96 192 336 720
	$(BIN)/python benchmarks/accuracy.py --dataset etth1 --settings M --lookbacks 96 192 336 512 720 --models lstm_seq2seq attention_seq2seq
	$(BIN)/python benchmarks/accuracy.py --dataset etth2 --settings M --lookbacks 96 192 336 512 720 --models lstm_seq2seq attention_seq2seq
	$(BIN)/python benchmarks/accuracy.py --dataset etth1 --settings M --lookbacks 96 192 336 512 720 --models transformer --search-seeds 3
	$(BIN)/python benchmarks/accuracy.py --dataset etth2 --settings M --lookbacks 96 192 336 512 720 --models transformer

clean:
	rm -rf $(VENV) logs .pytest_cache build dist
