"""Sliding windows over many series, served a whole batch at a time.

All series are concatenated into one [N, F] tensor; `unfold` turns it into a view of every (lookback +
horizon)-row window without copying, and a batch is one advanced-indexing gather into that view. Only
window starts that lie wholly inside one series and one split are ever indexed.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from tsattn.data.calendar import season_offsets


def known_channels(calendar: np.ndarray, static: np.ndarray | None, future: np.ndarray | None) -> np.ndarray:
    """The known channels of each step in the one order training and every forecast path give the model:
    the calendar features, the static code (the same at every step), then the scaled future covariates.

    Shape:
        calendar [..., T, K'], static [..., E] or None, future [..., T, U] or None -> [..., T, K' + E + U] float32
    """
    parts = [calendar.astype(np.float32, copy=False)]
    if static is not None:  # [..., E] -> [..., T, E]
        parts.append(np.broadcast_to(static[..., None, :], (*calendar.shape[:-1], static.shape[-1])))
    if future is not None:
        parts.append(future)
    return np.concatenate(parts, axis=-1).astype(np.float32, copy=False)


class WindowDataset(Dataset):
    """Windows of one split. Indexed by a list of window numbers, it returns the whole batch.

    Args:
        values: scaled targets then past covariates of every series, concatenated. [N, C + P]
        known: the known channels of the same rows: calendar features, the static code, then scaled
            future covariates.
            A window's lookback rows join its inputs and its horizon rows are `known_future`. [N, K]
        starts: global row where each window begins. [W]
        series: index of the series each window belongs to. [W]
        offsets: global row where each series begins. [S]
        lookback: L, input steps.
        horizon: H, target steps.
        n_targets: C, the leading channels of `values` that are forecast.
        season_length: m; when given, each batch also holds the seasonal-naive forecast of its windows
            (step h repeats the value m, 2m... steps before it), the reference every test score is set
            beside. It may reach before the lookback, never before the series' first row.
        best_naive_season: the season of the strongest simple forecast chosen on the validation windows
            (1: the last value; tsattn.data.naive); when given, each batch also holds it as "best_naive".
            It reads the lookback only (the season is at most L).
        units: each series' statistics in the data's units (tsattn.data.units: key -> [S, C], from training
            rows only); when given, each batch also holds its windows' rows of them (key -> [B, C]), which
            the losses in the data's units read (sMAPE, MASE).
    """

    def __init__(
        self,
        values: torch.Tensor,
        known: torch.Tensor,
        starts: torch.Tensor,
        series: torch.Tensor,
        offsets: torch.Tensor,
        lookback: int,
        horizon: int,
        n_targets: int,
        season_length: int | None = None,
        best_naive_season: int | None = None,
        units: Mapping[str, torch.Tensor] | None = None,
    ) -> None:
        self.lookback, self.horizon, self.n_targets = lookback, horizon, n_targets
        self.starts, self.series = starts, series
        self.first_target = starts + lookback - offsets[series]  # row of the first target within its series
        self.season_length = season_length
        if season_length is not None:
            if len(starts) and int(self.first_target.min()) < season_length:
                raise ValueError(f"a window starts fewer than season_length={season_length} rows into its series")
        if best_naive_season is not None and not 1 <= best_naive_season <= lookback:
            raise ValueError(f"best_naive_season={best_naive_season} must lie in [1, lookback={lookback}]")
        self.best_naive_season = best_naive_season
        self.units = dict(units or {})
        self._targets = values[:, :n_targets]
        # Views, no copies: [N, F] -> [N - L - H + 1, F, L + H].
        self._values = values.unfold(0, lookback + horizon, 1)
        self._known = known.unfold(0, lookback + horizon, 1)

    def __len__(self) -> int:
        return len(self.starts)

    def subset(self, index: torch.Tensor) -> WindowDataset:
        """The windows at `index` (a [W'] long tensor), sharing this dataset's tensors."""
        chosen = copy.copy(self)
        chosen.starts, chosen.series, chosen.first_target = (
            self.starts[index],
            self.series[index],
            self.first_target[index],
        )
        return chosen

    def __getitem__(self, index: list[int] | torch.Tensor | Padding) -> dict[str, torch.Tensor]:
        """The batch of windows `index`; a Padding batch carries "padding" (its windows are not scored)."""
        if isinstance(index, Padding):
            return {**self[index.index], "padding": torch.tensor(True)}
        index = torch.as_tensor(index, dtype=torch.long)
        start = self.starts[index]
        L = self.lookback
        window = self._values[start].transpose(1, 2)  # [B, F, L + H] -> [B, L + H, F]
        known = self._known[start].transpose(1, 2)  # [B, K, L + H] -> [B, L + H, K]
        batch = {
            "x": torch.cat([window[:, :L], known[:, :L]], dim=-1),  # [B, L, F + K]
            "y": window[:, L:, : self.n_targets].contiguous(),  # [B, H, C]
            "known_future": known[:, L:].contiguous(),  # [B, H, K]
            "series": self.series[index],  # [B]
            "first_target": self.first_target[index],  # [B]
        }
        if self.season_length is not None:
            batch["seasonal_naive"] = self.seasonal_naive(start, self.season_length)
        if self.best_naive_season is not None:
            batch["best_naive"] = self.seasonal_naive(start, self.best_naive_season)
        series = batch["series"]
        batch.update({key: table[series] for key, table in self.units.items()})  # [S, C] -> [B, C]
        return batch

    def seasonal_naive(self, start: torch.Tensor, season: int) -> torch.Tensor:
        """The seasonal-naive forecast of the windows starting at global rows `start` (season 1: the last value).

        Shape:
            start [B] -> [B, H, C]
        """
        offsets = torch.from_numpy(season_offsets(self.horizon, season))  # [H], each in [-m, -1]
        rows = (start + self.lookback).unsqueeze(1) + offsets  # [B, H]
        return self._targets[rows]

    def actuals(self, start: torch.Tensor) -> torch.Tensor:
        """The targets of the windows starting at `start`. Shape: [B] -> [B, H, C]."""
        rows = (start + self.lookback).unsqueeze(1) + torch.arange(self.horizon)  # [B, H]
        return self._targets[rows]

    def lookback_targets(self, start: torch.Tensor) -> torch.Tensor:
        """The targets of the lookbacks of the windows starting at `start`. Shape: [B] -> [B, L, C]."""
        return self._targets[start.unsqueeze(1) + torch.arange(self.lookback)]


@dataclass(frozen=True)
class Padding:
    """Window numbers repeated only to give every DDP rank as many batches as the others."""

    index: torch.Tensor


class WindowBatchSampler(Sampler[torch.Tensor]):
    """Batches of window numbers: shuffled from (seed, epoch) alone, and split between DDP ranks.

    The order depends on nothing but the seed and the epoch, so a run resumed from a checkpoint sees the
    same batches as one that never stopped; Lightning calls `set_epoch` before every epoch. Under DDP
    every rank gets the same number of batches (a few are repeated to even them out), so no rank waits
    at a collective another never reaches. In evaluation order (shuffle=False) the repeats come as
    Padding: their windows are computed but never scored, so every window counts exactly once.

    Args:
        size: number of windows.
        batch_size: windows per batch; the last batch may be short, it is never dropped.
        shuffle: a new random order every epoch; in order otherwise.
        seed: the shuffling seed; torch's initial seed (set by seed_everything) when None.
        current_epoch: returns the trainer's epoch (None when unknown); takes precedence over set_epoch.
    """

    def __init__(
        self,
        size: int,
        batch_size: int,
        shuffle: bool,
        seed: int | None = None,
        current_epoch: Callable[[], int | None] | None = None,
    ) -> None:
        self.size, self.batch_size, self.shuffle = size, batch_size, shuffle
        self.seed = torch.initial_seed() if seed is None else seed
        self.epoch = 0
        self.current_epoch = current_epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> list[torch.Tensor]:
        if self.shuffle:
            # Lightning creates the first iterator of a resumed fit before it calls set_epoch: asking the
            # trainer for its epoch keeps that first epoch's order right.
            epoch = self.current_epoch() if self.current_epoch is not None else None
            epoch = self.epoch if epoch is None else epoch
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            order = torch.randperm(self.size, generator=generator)
        else:
            order = torch.arange(self.size)
        batches = list(order.split(self.batch_size))
        rank, world = _rank_and_world()
        if world == 1:
            return batches
        per_rank = math.ceil(len(batches) / world)
        # Cycle to a multiple of the world size; with fewer batches than ranks a batch repeats several times.
        repeats = (batches * world)[len(batches) : per_rank * world]
        if not self.shuffle:  # evaluation: scored once only, wherever a window lands
            repeats = [Padding(batch) for batch in repeats]
        return [*batches, *repeats][rank::world]

    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter(self._batches())

    def __len__(self) -> int:
        _, world = _rank_and_world()
        return math.ceil(math.ceil(self.size / self.batch_size) / world)


def _rank_and_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def batch_loader(
    dataset: WindowDataset,
    batch_size: int,
    shuffle: bool,
    num_workers: int = 0,
    current_epoch: Callable[[], int | None] | None = None,
) -> DataLoader:
    """A loader that asks the dataset for whole batches; never drops the last, short batch.

    Trainers must run with `use_distributed_sampler=False`: the sampler shards batches between ranks itself.
    """
    return DataLoader(
        dataset,
        sampler=WindowBatchSampler(len(dataset), batch_size, shuffle, current_epoch=current_epoch),
        batch_size=None,  # the sampler already yields batches: no per-sample collate
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
    )
