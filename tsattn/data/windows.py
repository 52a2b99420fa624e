"""Sliding windows over many series, served a whole batch at a time.

All series are concatenated into one [N, F] tensor; `unfold` turns it into a view of every (lookback +
horizon)-row window without copying, and a batch is one advanced-indexing gather into that view. Only
window starts that lie wholly inside one series and one split are ever indexed.
"""

from __future__ import annotations

import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler


class WindowDataset(Dataset):
    """Windows of one split. Indexed by a list of window numbers, it returns the whole batch.

    Args:
        values: scaled targets then past covariates of every series, concatenated. [N, C + P]
        calendar: calendar features of the same rows. [N, K]
        starts: global row where each window begins. [W]
        series: index of the series each window belongs to. [W]
        offsets: global row where each series begins. [S]
        lookback: L, input steps.
        horizon: H, target steps.
        n_targets: C, the leading channels of `values` that are forecast.
    """

    def __init__(
        self,
        values: torch.Tensor,
        calendar: torch.Tensor,
        starts: torch.Tensor,
        series: torch.Tensor,
        offsets: torch.Tensor,
        lookback: int,
        horizon: int,
        n_targets: int,
    ) -> None:
        self.lookback, self.horizon, self.n_targets = lookback, horizon, n_targets
        self.starts, self.series = starts, series
        self.first_target = starts + lookback - offsets[series]  # row of the first target within its series
        # Views, no copies: [N, F] -> [N - L - H + 1, F, L + H].
        self._values = values.unfold(0, lookback + horizon, 1)
        self._calendar = calendar.unfold(0, lookback + horizon, 1)

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, index: list[int] | torch.Tensor) -> dict[str, torch.Tensor]:
        index = torch.as_tensor(index, dtype=torch.long)
        start = self.starts[index]
        L = self.lookback
        window = self._values[start].transpose(1, 2)  # [B, F, L + H] -> [B, L + H, F]
        calendar = self._calendar[start].transpose(1, 2)  # [B, K, L + H] -> [B, L + H, K]
        return {
            "x": torch.cat([window[:, :L], calendar[:, :L]], dim=-1),  # [B, L, F + K]
            "y": window[:, L:, : self.n_targets].contiguous(),  # [B, H, C]
            "future_calendar": calendar[:, L:].contiguous(),  # [B, H, K]
            "series": self.series[index],  # [B]
            "first_target": self.first_target[index],  # [B]
        }


def batch_loader(dataset: WindowDataset, batch_size: int, shuffle: bool, num_workers: int = 0) -> DataLoader:
    """A loader that asks the dataset for whole batches; never drops the last, short batch."""
    order = RandomSampler(dataset) if shuffle else SequentialSampler(dataset)
    return DataLoader(
        dataset,
        sampler=BatchSampler(order, batch_size=batch_size, drop_last=False),
        batch_size=None,  # the sampler already yields batches: no per-sample collate
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
    )
