"""The architecture settings a model config may leave as `auto`, decided from the data before anything is built.

The ETTh1 experiments (conf/experiment/, chosen on validation) found one shape: one shared network per
channel, RevIN, and the network run over segments of one season (24 hours). A user's `model=<name>` gets
the same shape for their own L, H and season (benchmarks/defaults.py measures it on ETTh1 and ETTh2, and
the M4 Hourly experiments use it, with a longer schedule):

- `model.segment_len: auto`: one season, when the lookback holds at least MIN_ENCODER_STEPS of them;
  otherwise the longest divisor of the season that leaves the encoder that many steps (1, the steps
  themselves, when none does, or when the data has no season). Segments need not divide L or H
  (tsattn/models/folding.py), so no segment straddles a season boundary whatever L and H are. Shorter
  segments were measured worse: on ETTh1 without calendar features the generative Transformer collapses
  to a flat forecast at S=8 or S=1 (validation 1.06 to 1.08 against 0.74 at S=24, one epoch, L=96), and
  at L=512 the old rule's 16-step segments failed the same way;
- `model.net.label_len: auto` (the generative Transformer): half of the encoder's steps open the decoder;
- `model.seasonal_lags: auto`: every candidate season of the data that fits in the lookback (a day and a
  week for hourly data at L >= 168) gives the network its seasonal-naive values as known channels;
- `model.net.linear_path_season: auto`: the linear path beside the network starts as the strongest simple
  forecast the validation windows chose (tsattn.data.naive), the last value or seasonal naive at a season.

The config is rewritten in place, so the logged config, the checkpoint and the bundle hold the numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

from omegaconf import DictConfig, open_dict

AUTO = "auto"
# An encoder over fewer segments than this has too little sequence left to model.
MIN_ENCODER_STEPS = 4


def segment_length(lookback: int, season: int) -> int:
    """The longest S with S | season and L // S >= MIN_ENCODER_STEPS; 1 when none is longer."""
    fits = [s for s in range(1, max(season, 1) + 1) if season % s == 0 and lookback // s >= MIN_ENCODER_STEPS]
    return max(fits, default=1)


def resolve_auto(
    model_cfg: DictConfig, lookback: int, season: int, best_naive_season: int = 1, lag_seasons: Sequence[int] = ()
) -> dict[str, object]:
    """Replace every `auto` in the model config by its number; returns what was chosen (for the log).

    Args:
        best_naive_season: the strongest simple forecast's season, chosen on validation (1: the last value).
        lag_seasons: the data's candidate seasons that fit in the lookback, for `model.seasonal_lags: auto`.
    """
    chosen: dict[str, int] = {}
    with open_dict(model_cfg):
        if model_cfg.get("seasonal_lags") == AUTO:
            from tsattn.data.naive import naive_seasons

            # The last value (season 1) is the lookback's last step, which every network reads already.
            model_cfg.seasonal_lags = chosen["seasonal_lags"] = naive_seasons(lag_seasons, lookback)[1:]
        if model_cfg.get("segment_len") == AUTO:
            model_cfg.segment_len = chosen["segment_len"] = segment_length(lookback, season)
        net = model_cfg.get("net") or {}
        if net.get("label_len") == AUTO:
            encoder_steps = lookback // int(model_cfg.get("segment_len", 1))
            model_cfg.net.label_len = chosen["label_len"] = max(1, encoder_steps // 2)
        if net.get("linear_path_season") == AUTO:
            model_cfg.net.linear_path_season = chosen["linear_path_season"] = best_naive_season
    return chosen
