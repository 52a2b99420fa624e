"""Training: the Hydra-built run, the LightningModule, its callbacks, checkpoints and schedules."""
