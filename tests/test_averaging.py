"""Weight averaging (callbacks=averaged): the mean of the weights after each step is what validates and what
checkpoints hold, the weights in training go on untouched, and a resumed run averages as one never stopped."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from tsattn.config import compose
from tsattn.training.averaging import IN_TRAINING, WeightAverage
from tsattn.training.train import build_components

AVERAGED = [
    "data=weather",
    "data.lookback=48",
    "data.horizon=12",
    "data.batch_size=128",
    "model=lstm_seq2seq",
    "model.net.hidden_size=16",
    "trainer.accelerator=cpu",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "+trainer.limit_train_batches=4",
    "+trainer.limit_val_batches=2",
    "logger=none",
    "callbacks=averaged",
    "callbacks.weight_averaging.start_epoch=1",
    "model.scheduler.kind=step_decay",  # a schedule that does not depend on max_epochs, so a run can be cut short
]


def _fit(tmp_path, epochs: int, resume: str | None = None, *overrides: str):
    cfg = compose([*AVERAGED, f"trainer.max_epochs={epochs}", f"paths.log_dir={tmp_path}", *overrides])
    datamodule, model, trainer = build_components(cfg)
    recorder = _Recorder()
    trainer.callbacks.append(recorder)  # after WeightAverage: it sees the weights the mean swapped in
    trainer.fit(model, datamodule=datamodule, ckpt_path=resume)
    return model, trainer, recorder, datamodule


class _Recorder(L.Callback):
    """The weights after every optimizer step, by epoch; the weights each validation scored, and its loss."""

    def __init__(self) -> None:
        self.steps: dict[int, list[dict[str, torch.Tensor]]] = {}
        self.validated: list[dict[str, torch.Tensor]] = []
        self.losses: list[float] = []

    @staticmethod
    def _weights(module) -> dict[str, torch.Tensor]:
        return {name: p.detach().clone() for name, p in module.named_parameters()}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.steps.setdefault(trainer.current_epoch, []).append(self._weights(pl_module))

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self.validated.append(self._weights(pl_module))

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self.losses.append(float(trainer.callback_metrics["val/loss"]))


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], atol: float = 0.0) -> None:
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=atol, msg=name)


def _mean(snapshots: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {name: torch.stack([s[name] for s in snapshots]).mean(0) for name in snapshots[0]}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return _fit(tmp_path_factory.mktemp("averaged"), 3)


def test_validation_scores_the_mean_of_every_step_since_the_start_epoch(uninterrupted):
    model, trainer, recorder, datamodule = uninterrupted
    assert [len(recorder.steps[e]) for e in range(3)] == [4, 4, 4]
    # Epoch 0 is before start_epoch=1: it validates the weights in training, as without the callback.
    _assert_same(recorder.validated[0], recorder.steps[0][-1])
    # Epochs 1 and 2 validate the mean of the weights after each step since epoch 1 began.
    _assert_same(recorder.validated[1], _mean(recorder.steps[1]), atol=1e-6)
    _assert_same(recorder.validated[2], _mean(recorder.steps[1] + recorder.steps[2]), atol=1e-6)
    head = "forecaster.net.head.linear.weight"
    assert not torch.equal(recorder.validated[2][head], recorder.steps[2][-1][head])  # the mean is no single step
    # Training goes on from its own weights: after fit the module holds the last step's, not the mean.
    _assert_same({n: p.detach() for n, p in model.named_parameters()}, recorder.steps[2][-1])
    (averaging,) = [c for c in trainer.callbacks if isinstance(c, WeightAverage)]
    assert averaging.count == 8


def test_checkpoints_hold_the_mean_and_the_logged_loss_is_the_means(uninterrupted):
    model, trainer, recorder, datamodule = uninterrupted
    last_path = trainer.checkpoint_callback.last_model_path
    last = torch.load(last_path, weights_only=True)
    mean = _mean(recorder.steps[1] + recorder.steps[2])
    _assert_same({n: last["state_dict"][n] for n in mean}, mean, atol=1e-6)
    _assert_same(last[IN_TRAINING], recorder.steps[2][-1])
    # Validating the checkpoint as it is (the mean, with no averaging outside fit) gives the loss logged.
    held = {name: value.clone() for name, value in model.state_dict().items()}
    try:
        (result,) = trainer.validate(model, datamodule=datamodule, ckpt_path=last_path, verbose=False)
    finally:
        model.load_state_dict(held)  # the module-scoped run keeps its own weights for the other tests
    assert result["val/loss"] == pytest.approx(recorder.losses[2], rel=1e-5)
    # The best checkpoint is chosen among the validated losses, means included, and holds what scored best:
    # the weights in training before start_epoch, the mean from it on.
    assert float(trainer.checkpoint_callback.best_model_score) == pytest.approx(min(recorder.losses), rel=1e-6)
    best = torch.load(trainer.checkpoint_callback.best_model_path, weights_only=True)
    assert recorder.losses[best["epoch"]] == min(recorder.losses)
    _assert_same({n: best["state_dict"][n] for n in mean}, recorder.validated[best["epoch"]], atol=1e-6)


def test_a_run_resumed_from_last_averages_as_if_never_stopped(uninterrupted, tmp_path):
    _, trainer, recorder, _ = uninterrupted
    _, first, *_ = _fit(tmp_path, 2)
    model, _, resumed_recorder, _ = _fit(tmp_path, 3, first.checkpoint_callback.last_model_path)
    assert list(resumed_recorder.steps) == [2]  # only the third epoch ran
    _assert_same({n: p.detach() for n, p in model.named_parameters()}, recorder.steps[2][-1], atol=1e-6)
    _assert_same(resumed_recorder.validated[0], recorder.validated[2], atol=1e-6)
    assert resumed_recorder.losses[0] == pytest.approx(recorder.losses[2], rel=1e-5)


def test_under_gradient_accumulation_only_optimizer_steps_enter_the_mean(tmp_path):
    _, trainer, recorder, _ = _fit(tmp_path, 2, None, "+trainer.accumulate_grad_batches=2")
    (averaging,) = [c for c in trainer.callbacks if isinstance(c, WeightAverage)]
    assert averaging.count == 2  # 4 batches of epoch 1, an optimizer step after every second
    # After batches 1 and 3; after batch 0 the weights are still epoch 0's last, and they stay out.
    _assert_same(recorder.validated[1], _mean([recorder.steps[1][1], recorder.steps[1][3]]), atol=1e-6)


def test_weights_only_checkpoints_are_refused(tmp_path):
    from tsattn.errors import TsattnError

    with pytest.raises(TsattnError, match="drop callbacks.model_checkpoint.save_weights_only"):
        _fit(tmp_path, 1, None, "+callbacks.model_checkpoint.save_weights_only=true")


def test_a_negative_start_epoch_is_refused():
    with pytest.raises(ValueError, match="start_epoch must be 0 or more"):
        WeightAverage(start_epoch=-1)
