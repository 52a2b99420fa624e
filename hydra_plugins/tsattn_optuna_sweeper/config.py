"""The sweeper's config schema, registered as hydra/sweeper=tsattn_optuna (imported by Hydra's plugin scan)."""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore


@dataclass
class TsattnOptunaSweeperConf:
    _target_: str = "hydra_plugins.tsattn_optuna_sweeper.sweeper.TsattnOptunaSweeper"
    # The study; with a storage it persists, and a later sweep with the same name adds trials to it.
    study_name: str | None = None
    # An Optuna storage URL, e.g. sqlite:///logs/optuna/transformer.db; null keeps the study in memory
    # (no resuming, and no pruning, which needs the jobs to reach the study).
    storage: str | None = None
    direction: str = "minimize"
    # The job metric to optimise: a key of the metrics tsattn train returns. Never a test metric.
    metric: str = "val/loss_best"
    # Trials this sweep runs (added to those the study already has).
    n_trials: int = 20
    # Trials launched together; the launcher decides whether they run in parallel (hydra/launcher=joblib).
    n_jobs: int = 1
    # An Optuna sampler, instantiated from `_target_`; seed it for repeatable searches.
    sampler: Any = field(default_factory=lambda: {"_target_": "optuna.samplers.TPESampler", "seed": 0})
    # An Optuna pruner, or null; the jobs report the monitored metric every epoch.
    pruner: Any = None
    # Metric the jobs report to the pruner after every validation.
    prune_on: str = "val/loss"
    # Search space: config key -> Hydra sweep syntax, e.g. "tag(log, interval(1e-4, 1e-2))", "choice(32, 64)".
    params: dict[str, str] = field(default_factory=dict)


ConfigStore.instance().store(
    group="hydra/sweeper", name="tsattn_optuna", node=TsattnOptunaSweeperConf, provider="tsattn"
)
