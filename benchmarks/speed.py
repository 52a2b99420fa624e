"""Training and inference speed: tsattn (datamodule + ForecastModule + Lightning Trainer) against a plain PyTorch loop.

    python benchmarks/speed.py                    # CPU, the three forecasters, ETTh1 M at L=96, H=96
    python benchmarks/speed.py --device cuda      # on a GPU, bf16-mixed in both loops

For each forecaster, built from its `conf/experiment/etth1_<model>.yaml` settings:

- training throughput in windows/s in steady state (the first epoch is a warm-up and not counted):
  through tsattn's own Trainer, and through a plain loop written here over the same windows (materialised
  once as tensors), the same network wrapped in the same ForecastModule (same initial weights), the same
  batch size, optimizer and gradient clipping. The ratio tsattn / plain is the framework's overhead.
- inference throughput (windows/s) over the test windows, with the trained network.
- peak memory of the process that measured the model (max RSS on CPU, peak allocated on CUDA).

Then how free-running decoding time grows with the horizon (24, 96, 336 steps) for the decoders that
run step by step: the LSTM and attention seq2seq and the autoregressive Transformer, one step per
timestep (segment_len=1), 256 windows of L=96 (`--decode-horizons` and `--decode-windows` change them).

Each model is measured in a fresh process, so one model's memory does not count against the next.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from report import DEFAULT_ETTH1, ETTH1_HELP, hydra_quoted, missing_data, replace_section  # noqa: E402

MODELS = ("lstm_seq2seq", "attention_seq2seq", "transformer", "lstm_seq2seq_steps")
# Variants of an experiment: the LSTM decoding step by step over all channels, teacher-forced in training
# (model=lstm_seq2seq's defaults before they became channel independent and segmented; otherwise the
# experiment's settings before it took SegRNN's recipe), whose free-running validation is the slowest of the
# three.
VARIANTS = {
    "lstm_seq2seq_steps": (
        "lstm_seq2seq",
        [
            "model.segment_len=1",
            "model.channel_independent=false",
            "model.channel_identity=false",
            "model.normalization=revin",
            "model.seasonal_lags=auto",
            "model.net.decoding=recurrent",
            "model.net.linear_path=true",
            "model.net.hidden_size=128",
            "model.net.dropout=0.0",
            "model.teacher_forcing.start=1.0",
            "data.batch_size=128",
        ],
    )
}
GOAL = 0.9  # tsattn's training throughput must be at least this share of the plain loop's


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if missing_data("speed.py", args.data):
        return 2
    if args.one:
        print(json.dumps(measure_training(args) if args.one != "decoding" else measure_decoding(args)))
        return 0
    results = [run_child(args, model) for model in args.models]
    decoding = run_child(args, "decoding")
    table = render(args, results, decoding)
    print(table)
    if args.output:
        command = "python benchmarks/speed.py " + " ".join(argv if argv is not None else sys.argv[1:])
        body = f"Made by `{command.strip()}` on {time.strftime('%Y-%m-%d')}.\n\n{table}"
        replace_section(Path(args.output), f"speed-{args.device}", body)
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--batches", type=int, default=40, help="training batches per epoch")
    parser.add_argument("--epochs", type=int, default=3, help="epochs timed after the warm-up epoch")
    parser.add_argument(
        "--data",
        default=DEFAULT_ETTH1,
        help=ETTH1_HELP,
    )
    parser.add_argument("--phase-repeats", type=int, default=2, help="validation and test timed best of N (2)")
    parser.add_argument("--decode-windows", type=int, default=256, help="windows per decoding batch (default 256)")
    parser.add_argument(
        "--decode-horizons", type=int, nargs="+", default=[24, 96, 336], help="decoding horizons (24 96 336)"
    )
    parser.add_argument("--output", default=str(REPO / "BENCHMARKS.md"), help="'' to print only")
    parser.add_argument(
        "--override", action="append", default=[], help="extra Hydra override for every model measured (repeatable)"
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one model in this process
    return parser.parse_args(argv)


def run_child(args: argparse.Namespace, what: str) -> dict:
    command = [sys.executable, __file__, "--one", what, "--device", args.device, "--data", args.data]
    command += [f"--override={override}" for override in args.override]
    command += [
        "--batches",
        str(args.batches),
        "--epochs",
        str(args.epochs),
        "--decode-windows",
        str(args.decode_windows),
        "--decode-horizons",
        *map(str, args.decode_horizons),
    ]
    print(f"measuring {what} ...", file=sys.stderr, flush=True)
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    if result.returncode != 0:
        raise SystemExit(f"speed.py: measuring {what} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def build(args: argparse.Namespace, model: str, timer):
    """tsattn's datamodule, ForecastModule and Trainer for the model's ETTh1 experiment, with `timer` attached."""
    from tsattn.config import compose
    from tsattn.training.train import Training

    experiment, variant = VARIANTS.get(model, (model, []))
    overrides = [
        f"experiment=etth1_{experiment}",
        *variant,
        f"data.path={hydra_quoted(args.data)}",
        "logger=none",
        "callbacks=none",
        "model.scheduler=null",  # stepped on val/loss, which a training-only benchmark does not compute
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "+trainer.enable_checkpointing=false",
        f"trainer.max_epochs={args.epochs + 1}",
        f"+trainer.limit_train_batches={args.batches}",
        "+trainer.limit_val_batches=0",
        "+trainer.num_sanity_val_steps=0",
        f"paths.log_dir={tempfile.mkdtemp(prefix='tsattn-speed-')}",  # nothing to keep: no checkpoints, no runs
        *args.override,
    ]
    if args.device == "cuda":
        overrides += ["trainer=gpu", "trainer.precision=bf16-mixed"]
    else:
        overrides += ["trainer.accelerator=cpu"]
    cfg = compose(overrides)
    training = Training(cfg, track=False)
    training.trainer.callbacks.append(timer)  # tsattn's own Trainer, as `tsattn train` builds it
    return cfg, training.datamodule, training.model, training.trainer


def measure_training(args: argparse.Namespace) -> dict:
    import lightning as L
    import torch

    from tsattn.data.units import UNIT_KEYS

    model_name = args.one
    timer = epoch_timer()
    cfg, datamodule, module, trainer = build(args, model_name, timer)
    device = torch.device(args.device)
    initial = copy.deepcopy(module.state_dict())
    batch_size = datamodule.batch_size
    windows_per_epoch = min(args.batches * batch_size, len(datamodule.datasets["train"]))

    # tsattn: the real Trainer, datamodule loader and ForecastModule.training_step.
    trainer.fit(module, datamodule=datamodule)
    tsattn_rate = windows_per_epoch * args.epochs / sum(timer.seconds[1:])

    # The plain loop: same windows as tensors, same module and initial weights, same optimizer and clipping.
    module.load_state_dict(initial)
    module.to(device).train()
    train = datamodule.datasets["train"]
    kept = ("x", "y", "known_future", *UNIT_KEYS)  # the statistics in the data's units too: sMAPE and MASE read them
    everything = {k: v.to(device) for k, v in train[list(range(len(train)))].items() if k in kept}
    optimizer = module.optimizer_factory(params=module.parameters())
    clip = cfg.trainer.gradient_clip_val
    ratio_of = module.teacher_forcing if module.uses_teacher_forcing else (lambda epoch: 0.0)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if args.device == "cuda" else contextlib.nullcontext()
    L.seed_everything(cfg.seed)
    seconds = []
    for epoch in range(args.epochs + 1):
        order = torch.randperm(len(train), device=device)[: args.batches * batch_size]
        _sync(device)
        start = time.perf_counter()
        for index in order.split(batch_size):
            batch = {k: v[index] for k, v in everything.items()}
            with autocast:
                loss = module.loss(module(batch, ratio_of(epoch))["y_hat"], batch["y"], batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(module.parameters(), clip)
            optimizer.step()
        _sync(device)
        seconds.append(time.perf_counter() - start)
    plain_rate = windows_per_epoch * args.epochs / sum(seconds[1:])

    # Inference over every test window.
    module.eval()
    test = datamodule.datasets["test"]
    eval_batches = [
        {k: v.to(device) for k, v in test[list(range(i, min(i + 1024, len(test))))].items()}
        for i in range(0, len(test), 1024)
    ]
    with torch.inference_mode(), autocast:
        module(eval_batches[0])  # warm-up
        _sync(device)
        start = time.perf_counter()
        for batch in eval_batches:
            module(batch)
        _sync(device)
        inference_rate = len(test) / (time.perf_counter() - start)

    # Validation and test through tsattn's Trainer (every window), beside the plain loop's equivalent pass: the
    # free-running forward and the loss of each batch of the same windows, batched alike.
    trainer.limit_val_batches, trainer.limit_test_batches = 1.0, 1.0
    val = datamodule.datasets["val"]
    val_batches = [
        {k: v.to(device) for k, v in val[list(range(i, min(i + datamodule.eval_batch_size, len(val))))].items()}
        for i in range(0, len(val), datamodule.eval_batch_size)
    ]
    phases = {}
    for phase in ("validate", "plain", "test"):
        best = float("inf")
        for _ in range(args.phase_repeats):  # best of N: the first also warms up
            _sync(device)
            start = time.perf_counter()
            if phase == "validate":
                trainer.validate(module, datamodule=datamodule, verbose=False)
            elif phase == "test":
                trainer.test(module, datamodule=datamodule, verbose=False)
            else:
                module.eval()
                with torch.inference_mode(), autocast:
                    for batch in val_batches:
                        module.loss(module(batch)["y_hat"], batch["y"], batch).item()
            _sync(device)
            best = min(best, time.perf_counter() - start)
        phases[phase] = best

    peak_mb = (
        torch.cuda.max_memory_allocated() / 2**20
        if args.device == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    return {
        "model": model_name,
        "parameters": sum(p.numel() for p in module.parameters()),
        "batch_size": batch_size,
        "tsattn": tsattn_rate,
        "plain": plain_rate,
        "inference": inference_rate,
        "train_epoch_s": sum(timer.seconds[1:]) / max(len(timer.seconds) - 1, 1),
        "val_windows": len(val),
        "validate_s": phases["validate"],
        "plain_validate_s": phases["plain"],
        "test_s": phases["test"],
        "peak_mb": peak_mb,
        "device": _device_name(args.device),
    }


def measure_decoding(args: argparse.Namespace) -> dict:
    """Free-running forecast time of one batch of windows (256 by default, L=96) per horizon (24, 96, 336)."""
    import torch

    from tsattn.models.attention_seq2seq import AttentionSeq2Seq
    from tsattn.models.lstm_seq2seq import LSTMSeq2Seq
    from tsattn.models.transformer import TransformerForecaster

    device = torch.device(args.device)
    dims = {"n_features": 15, "n_targets": 7, "n_known": 8}  # ETTh1: 7 channels + 8 calendar features
    nets = {
        "lstm_seq2seq": LSTMSeq2Seq(**dims, hidden_size=64),
        "attention_seq2seq": AttentionSeq2Seq(**dims, hidden_size=64),
        "transformer (autoregressive)": TransformerForecaster(**dims, d_model=64, decoder_mode="autoregressive"),
    }
    timings = {}
    for name, net in nets.items():
        net.to(device).eval()
        timings[name] = {}
        for horizon in args.decode_horizons:
            batch = {
                "x": torch.randn(args.decode_windows, 96, 15, device=device),
                "known_future": torch.randn(args.decode_windows, horizon, 8, device=device),
            }
            with torch.inference_mode():
                net(batch)
                _sync(device)
                repeats = []
                for _ in range(3):
                    start = time.perf_counter()
                    net(batch)
                    _sync(device)
                    repeats.append(time.perf_counter() - start)
            timings[name][str(horizon)] = min(repeats) * 1000
    return timings


def epoch_timer():
    """A callback that times each training epoch (the training batches only)."""
    import lightning as L

    class EpochTimer(L.Callback):
        def __init__(self) -> None:
            self.seconds: list[float] = []
            self._start = 0.0

        def on_train_epoch_start(self, trainer, module) -> None:
            _sync(module.device)
            self._start = time.perf_counter()

        def on_train_epoch_end(self, trainer, module) -> None:
            _sync(module.device)
            self.seconds.append(time.perf_counter() - self._start)

    return EpochTimer()


def render(args: argparse.Namespace, results: list[dict], decoding: dict) -> str:
    device = results[0]["device"] if results else _device_name(args.device)
    precision = "bf16-mixed" if args.device == "cuda" else "fp32"
    lines = [
        f"**Training and inference speed on {device} ({precision}), ETTh1 M, L=96, H=96**",
        "",
        f"Steady-state training throughput over {args.epochs} epochs of {args.batches} batches (a warm-up epoch "
        "not counted). Goal: tsattn >= 0.9x the plain loop.",
        "",
        "| model | parameters | batch | tsattn windows/s | plain loop windows/s | ratio | goal | "
        "inference windows/s | peak MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        ratio = r["tsattn"] / r["plain"]
        lines.append(
            f"| {r['model']} | {r['parameters']:,} | {r['batch_size']} | {r['tsattn']:,.0f} | {r['plain']:,.0f} | "
            f"{ratio:.2f}x | {'met' if ratio >= GOAL else f'missed by {GOAL - ratio:.2f}'} | "
            f"{r['inference']:,.0f} | {r['peak_mb']:,.0f} |"
        )
    lines += [
        "",
        "Time per phase of `tsattn train`, seconds: one training epoch of the batches above, and validation and "
        f"test over every window of their splits through tsattn's Trainer (best of {args.phase_repeats}), beside "
        "the plain loop's equivalent validation pass (free-running forward and loss of the same windows, same "
        "batches). Goal: tsattn's validation within 1.5x of the plain pass.",
        "",
        "| model | train epoch | validation windows | tsattn validation | plain validation | ratio | goal | test |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        ratio = r["validate_s"] / r["plain_validate_s"]
        lines.append(
            f"| {r['model']} | {r['train_epoch_s']:.2f} | {r['val_windows']:,} | {r['validate_s']:.2f} | "
            f"{r['plain_validate_s']:.2f} | {ratio:.2f}x | "
            f"{'met' if ratio <= 1.5 else f'missed by {ratio - 1.5:.2f}'} | {r['test_s']:.2f} |"
        )
    first, last = args.decode_horizons[0], args.decode_horizons[-1]
    lines += [
        "",
        f"Free-running decoding, one step per timestep: ms per batch of {args.decode_windows} windows (L=96), "
        "best of 3.",
        "",
        "| decoder | " + " | ".join(f"H={h}" for h in args.decode_horizons) + f" | H={last} / H={first} |",
        "|---|" + "---|" * (len(args.decode_horizons) + 1),
    ]
    for name, times in decoding.items():
        cells = " | ".join(f"{times[str(h)]:.1f}" for h in args.decode_horizons)
        lines.append(f"| {name} | {cells} | {times[str(last)] / times[str(first)]:.1f}x |")
    return "\n".join(lines) + "\n"


def _sync(device) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _device_name(device: str) -> str:
    import torch

    if device == "cuda":
        return torch.cuda.get_device_name()
    threads = torch.get_num_threads()
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {threads} threads)"


if __name__ == "__main__":
    sys.exit(main())
