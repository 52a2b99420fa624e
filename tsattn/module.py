"""ForecastModule: the one LightningModule that trains, validates and tests any forecasting network."""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import torch
from torch import nn

from tsattn.metrics import POINT_METRICS


class ForecastModule(L.LightningModule):
    """Wraps a network with forward(batch, teacher_forcing_ratio) -> {"y_hat": [B, H, C], ...}.

    Training feeds the decoder the truth with probability `teacher_forcing_ratio`; validation, test and
    prediction always run free, on the path forecasts use, so the reported metrics are honest.

    Args:
        net: the network.
        optimizer: a factory taking the parameters (a `_partial_` optimizer from config).
        scheduler: optional factory taking the optimizer (a `_partial_` LR scheduler); stepped per epoch on val/loss.
        loss: "mse" or "mae".
        teacher_forcing_ratio: share of decoder steps fed the truth while training.
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        loss: str = "mse",
        teacher_forcing_ratio: float = 1.0,
    ) -> None:
        super().__init__()
        if loss not in POINT_METRICS:
            raise ValueError(f"model.loss={loss!r}; choose one of {', '.join(POINT_METRICS)}")
        # Only plain values go into checkpoints, which then load with torch.load(weights_only=True); the
        # network and the optimizer factories are rebuilt from the config, which tsattn.train logs in full.
        self.save_hyperparameters(logger=False, ignore=["net", "optimizer", "scheduler"])
        self.net = net
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.loss_fn = POINT_METRICS[loss]

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Free-running forecast."""
        return self.net(batch)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        output = self.net(batch, teacher_forcing_ratio=self.hparams.teacher_forcing_ratio)
        loss = self.loss_fn(output["y_hat"], batch["y"])
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(batch["y"]))
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self.net(batch)["y_hat"]

    def _evaluate(self, batch: dict[str, torch.Tensor], stage: str) -> None:
        y_hat, y = self.net(batch)["y_hat"], batch["y"]
        size = len(y)  # the epoch value is the size-weighted mean, i.e. the metric over every window
        self.log(f"{stage}/loss", self.loss_fn(y_hat, y), prog_bar=stage == "val", batch_size=size)
        for name, metric in POINT_METRICS.items():
            self.log(f"{stage}/{name}", metric(y_hat, y), batch_size=size)

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "monitor": "val/loss", "interval": "epoch"},
        }
