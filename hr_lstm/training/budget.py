"""How long a run trains: a budget of optimiser steps, with the epochs it takes derived from the data.

A fixed number of epochs is the wrong unit: 20 epochs of 60 simulated athletes are 680 steps
and left the model at 3.35x the noise floor (3x the epochs: 2.81x), while 20 epochs of the full
FitRec file would be about ten times the steps it needs. So the default is a number of
optimiser steps, the same for every data size and batch size; the one-cycle schedule spans
exactly those steps, validation runs `CHECKS_PER_RUN` times along the way, and early stopping
counts checks. A data set so large that the budget would not cover `min_epochs` passes (the
full FitRec file: 3,500 steps of 32 are 0.8 of its epochs) gets `min_epochs` passes instead, so
every workout is seen more than once. The original project's `--epochs N` keeps its meaning when given: N passes over
the training split, validation after each (docs/benchmarks.md, "The training budget").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .config import TrainConfig

CHECKS_PER_RUN = 20  # validation passes over a step-budget run


@dataclass(frozen=True)
class Budget:
    total_steps: int  # optimiser steps of the whole run (per process under torchrun)
    steps_per_epoch: int  # batches in one pass over this process's share of the training split
    eval_every: int  # optimiser steps between validation checks
    by_epochs: bool  # --epochs given: checks at epoch ends, logged as epochs

    @property
    def epochs(self) -> float:
        return self.total_steps / self.steps_per_epoch

    def epoch_at(self, step: int) -> float:
        """Passes over the training split completed after `step` optimiser steps."""
        return step // self.steps_per_epoch if self.by_epochs else round(step / self.steps_per_epoch, 2)

    def describe(self) -> str:
        if self.by_epochs:
            return f"{self.epochs:g} epochs of {self.steps_per_epoch:,} steps ({self.total_steps:,} optimiser steps)"
        return (
            f"{self.total_steps:,} optimiser steps = {self.epochs:.1f} epochs of {self.steps_per_epoch:,} steps; "
            f"validation every {self.eval_every:,} steps"
        )


def plan_budget(cfg: TrainConfig, n_train: int) -> Budget:
    """The run's budget for `n_train` training workouts (this process's share)."""
    steps_per_epoch = max(1, math.ceil(n_train / cfg.batch_size))
    if cfg.epochs:
        return Budget(cfg.epochs * steps_per_epoch, steps_per_epoch, steps_per_epoch, True)
    total = max(cfg.steps, cfg.min_epochs * steps_per_epoch)
    every = cfg.eval_every or max(1, math.ceil(total / CHECKS_PER_RUN))
    return Budget(total, steps_per_epoch, every, False)
