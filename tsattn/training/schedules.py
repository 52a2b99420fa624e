"""Teacher forcing over epochs: constant, or decaying towards free running (scheduled sampling)."""

from __future__ import annotations

KINDS = ("constant", "linear", "exponential")


class TeacherForcing:
    """The share of decoder steps fed the truth while training, as a function of the epoch.

    - constant: `start` every epoch;
    - linear: from `start` at epoch 0 to `end` at epoch `epochs`, then `end`;
    - exponential: `start * gamma ** epoch`, never below `end`.

    Args:
        kind: "constant", "linear" or "exponential".
        start: the ratio at epoch 0, in [0, 1].
        end: the ratio the decay approaches, in [0, 1].
        epochs: length of the linear decay.
        gamma: per-epoch factor of the exponential decay, in (0, 1].
    """

    def __init__(
        self, kind: str = "constant", start: float = 1.0, end: float = 0.0, epochs: int = 10, gamma: float = 0.8
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"model.teacher_forcing.kind={kind!r}; choose one of {', '.join(KINDS)}")
        if not (0.0 <= end <= 1.0 and 0.0 <= start <= 1.0 and 0.0 < gamma <= 1.0 and epochs >= 1):
            raise ValueError("model.teacher_forcing: start and end lie in [0, 1], gamma in (0, 1], epochs >= 1")
        self.kind, self.start, self.end, self.epochs, self.gamma = kind, start, end, epochs, gamma

    def __call__(self, epoch: int) -> float:
        if self.kind == "constant":
            return self.start
        if self.kind == "linear":
            progress = min(epoch / self.epochs, 1.0)
            return self.start + (self.end - self.start) * progress
        return max(self.end, self.start * self.gamma**epoch)
