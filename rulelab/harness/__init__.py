"""The vmapped harness: training programs, host-side chunked runs, results and plots."""

from rulelab.harness.run import GridResult, run_grid, seed_keys
from rulelab.harness.train import (
    OPTIMIZERS,
    TrainConfig,
    TrainProgram,
    TrainState,
    default_hparams,
    make_optimizer,
    make_train,
    make_train_program,
)

__all__ = [
    "GridResult", "OPTIMIZERS", "TrainConfig", "TrainProgram", "TrainState", "default_hparams",
    "make_optimizer", "make_train", "make_train_program", "run_grid", "seed_keys",
]
