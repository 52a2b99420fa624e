"""Where a run's checkpoints go, and which checkpoint `ckpt_path=last` resumes.

Checkpoints live under paths.checkpoint_dir, which is keyed by the run's config (`${tsattn.run_key:}`):
the same command line finds the same directory again. Each start gets a fresh attempt directory inside
it, so a new run never overwrites an older one's files; `ckpt_path=last` reopens the newest attempt that
holds a last.ckpt and continues writing there.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

LAST = "last.ckpt"
# Config keys that do not change what is trained: they stay out of the run key.
_NOT_IN_KEY = ("hydra", "ckpt_path", "paths", "logger", "test", "threads")


@dataclass(frozen=True)
class CheckpointPlan:
    directory: Path  # the attempt directory this run writes into
    ckpt_path: str | None  # what Trainer.fit resumes from
    resume: bool  # continuing an earlier attempt of this very run


def run_key(_root_: DictConfig) -> str:
    """`${tsattn.run_key:}`: "<data>-seed<seed>-<hash of the unresolved config>" for checkpoint paths.

    The config is hashed unresolved, so the key never depends on itself or on the time of day.
    """
    tree = OmegaConf.to_container(_root_, resolve=False)
    for key in _NOT_IN_KEY:
        tree.pop(key, None)
    digest = hashlib.sha256(json.dumps(tree, sort_keys=True, default=str).encode()).hexdigest()[:10]
    data = tree.get("data", {}) if isinstance(tree.get("data"), dict) else {}
    return f"{data.get('name', 'data')}-seed{tree.get('seed', 0)}-{digest}"


def plan_checkpoints(base: str | Path, ckpt_path: str | None) -> CheckpointPlan:
    """Choose the attempt directory and the checkpoint to start from.

    Args:
        base: paths.checkpoint_dir of the run.
        ckpt_path: the config's ckpt_path: None (start afresh), "last" (resume this run when it has a
            checkpoint, else start afresh) or a checkpoint file (start from its weights and state).
    """
    base = Path(base)
    if ckpt_path == "last":
        attempts = sorted((p for p in base.glob(f"*/{LAST}")), key=lambda p: p.stat().st_mtime)
        if attempts:
            last = attempts[-1]
            log.info("resuming from %s", last)
            return CheckpointPlan(last.parent, str(last), resume=True)
        log.warning("ckpt_path=last: no checkpoint of this run under %s yet; starting afresh", base)
        ckpt_path = None
    attempt = base / f"{time.strftime('%Y-%m-%d_%H-%M-%S')}-{uuid.uuid4().hex[:6]}"
    return CheckpointPlan(attempt, ckpt_path, resume=False)
