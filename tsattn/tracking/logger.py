"""Lightning's MLflow logger, attached to a run tsattn has already created (or resumed)."""

from __future__ import annotations


def mlflow_logger(tracking_uri: str, run_id: str, **_settings):
    """An MLFlowLogger writing into the existing run `run_id`.

    tsattn creates the run itself (tsattn.tracking.runs.start_run): under a lock, with its tags, nested in
    its sweep, or resumed after a crash. The remaining logger settings (experiment, name, tags) were used
    there and are ignored here.
    """
    from lightning.pytorch.loggers import MLFlowLogger

    return MLFlowLogger(tracking_uri=tracking_uri, run_id=run_id, log_model=False)
