"""The architecture settings a model config may leave as `auto`, decided from the data before anything is built.

The ETTh1 experiments (conf/experiment/, chosen on validation) found one shape: one shared network per
channel, RevIN, and the network run over segments of one season (24 hours). A user's `model=<name>` gets
the same shape for their own L, H and season (benchmarks/defaults.py measures it on ETTh1 and ETTh2, and
the M4 Hourly experiments use it, with a longer schedule):

- `model.segment_len: auto`: the longest segment that divides L, H and the season, and leaves the encoder
  at least MIN_ENCODER_STEPS steps (1, the steps themselves, when none does). Dividing the season keeps
  every season boundary on a segment boundary: at L=512 on hourly data the rule once took 16-step
  segments (16 divides 512 and 96, but not 24), which cut across days, and the Transformer failed there
  (ETTh1 validation 1.06 to 1.10 on every seed); the rule now takes 8;
- `model.net.label_len: auto` (the generative Transformer): half of the encoder's steps open the decoder.

The config is rewritten in place, so the logged config, the checkpoint and the bundle hold the numbers.
"""

from __future__ import annotations

import math

from omegaconf import DictConfig, open_dict

AUTO = "auto"
# An encoder over fewer segments than this has too little sequence left to model.
MIN_ENCODER_STEPS = 4


def segment_length(lookback: int, horizon: int, season: int) -> int:
    """The longest S with S | L, S | H, S | season and L / S >= MIN_ENCODER_STEPS; 1 when none is longer."""
    common = math.gcd(math.gcd(lookback, horizon), max(season, 1))
    fits = [s for s in range(1, common + 1) if common % s == 0]
    return max(s for s in fits if lookback // s >= MIN_ENCODER_STEPS or s == 1)


def resolve_auto(model_cfg: DictConfig, lookback: int, horizon: int, season: int) -> dict[str, int]:
    """Replace every `auto` in the model config by its number; returns what was chosen (for the log)."""
    chosen: dict[str, int] = {}
    with open_dict(model_cfg):
        if model_cfg.get("segment_len") == AUTO:
            model_cfg.segment_len = chosen["segment_len"] = segment_length(lookback, horizon, season)
        net = model_cfg.get("net") or {}
        if net.get("label_len") == AUTO:
            encoder_steps = lookback // int(model_cfg.get("segment_len", 1))
            model_cfg.net.label_len = chosen["label_len"] = max(1, encoder_steps // 2)
    return chosen
