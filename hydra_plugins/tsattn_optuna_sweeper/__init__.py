"""tsattn's Optuna sweeper for Hydra: `tsattn train -m hparams_search=<name>`.

Registered as `hydra/sweeper=tsattn_optuna`. The upstream hydra-optuna-sweeper pins optuna<3 and its sqlite
storage breaks on SQLAlchemy 2; this one runs on Optuna >= 4 and keeps the same workflow: the search
space in YAML under hydra.sweeper.params, in Hydra's sweep syntax.
"""
