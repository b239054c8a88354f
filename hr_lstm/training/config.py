"""A training run's configuration: `RunConfig`, one dataclass per part of the data flow.

Each part's dataclass lives with its part (`ParseConfig` with the FitRec reader,
`FilterConfig` with the filters, ...); `RunConfig` composes them, and `TrainConfig`,
the optimiser's part, lives here.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Mapping

from ..data.features import FeatureConfig
from ..data.filters import FilterConfig
from ..data.fitrec import ParseConfig
from ..data.source import DataConfig
from ..data.splits import SPLIT_KINDS, SplitConfig
from ..errors import HRLSTMError
from ..models.lstm import MODEL_KINDS, USER_CONDITIONING, ModelConfig

LOSSES = ("mse", "mae", "huber")
LR_SCHEDULES = ("constant", "onecycle")
AMP_MODES = ("off", "bf16")
DEFAULT_STEPS = 3500  # = the 20 epochs the recipe was validated with on 300 simulated athletes
# Settings that count things: each must be at least 1.
AT_LEAST_ONE = (
    "train.steps",
    "train.batch_size",
    "model.hidden_size",
    "model.num_layers",
    "train.patience",
    "model.embedding_dim",
    "data.sim_users",
)
AT_LEAST_ZERO = ("train.epochs", "train.eval_every", "train.min_epochs")  # 0: derived
CHOICES = {
    "model.model": MODEL_KINDS,
    "model.user_conditioning": USER_CONDITIONING,
    "split.kind": SPLIT_KINDS,
    "train.loss": LOSSES,
    "train.lr_schedule": LR_SCHEDULES,
    "train.amp": AMP_MODES,
}


@dataclass
class TrainConfig:
    # The default recipe (docs/benchmarks.md, "How the default recipe was chosen" and "The training
    # budget"): a one-cycle schedule over a budget of optimiser steps, on MAE at lr 5e-3.
    # The original project's recipe: --epochs 100 --lr 1e-3 --loss mse --lr_schedule constant.
    steps: int = DEFAULT_STEPS  # optimiser steps, whatever the data size or batch size (training/budget.py)
    min_epochs: int = 2  # ... but at least this many passes over the training split (large data sets)
    epochs: int = 0  # when given: that many passes over the training split instead of `steps`
    eval_every: int = 0  # steps between validation checks under `steps`; 0: 1/20 of the run
    batch_size: int = 32
    lr: float = 5e-3
    patience: int = 10  # validation checks (epochs, under --epochs) without a better MAE before stopping
    device: str = "auto"
    seed: int = 0
    out_dir: str = "checkpoints"
    cudnn: bool = True
    grad_clip: float = 1.0
    weight_decay: float = 0.0
    # The training loss: "mse" (the original project's), "mae" (what the results are judged by; robust to
    # chest-strap spikes), or "huber" (quadratic within huber_delta_bpm of the truth, linear beyond).
    loss: str = "mae"
    huber_delta_bpm: float = 5.0
    # "constant" (the original project's) or "onecycle": warm up, then cosine-anneal to ~0 by the last epoch,
    # stepped per batch, so a fixed epoch budget ends at a settled minimum.
    lr_schedule: str = "onecycle"
    amp: str = "off"  # "bf16": autocast the forward pass (GPUs with bf16: Ampere and newer)
    compile: bool = False  # torch.compile the model (helps large models on GPUs)
    threads: int = 0  # CPU threads; 0: this process's share of the cores
    resume: bool = False  # continue from {out}/{model}_last.pt


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    parse: ParseConfig = field(default_factory=ParseConfig)
    filters: FilterConfig = field(default_factory=FilterConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        parts = {}
        for f in fields(cls):
            part_cls = type(f.default_factory())
            known = {k: v for k, v in d.get(f.name, {}).items() if k in {g.name for g in fields(part_cls)}}
            for k, v in known.items():
                if isinstance(v, list):  # JSON turned tuples into lists
                    known[k] = tuple(v)
            parts[f.name] = part_cls(**known)
        return cls(**parts)

    def get(self, key: str):
        part, name = _split_key(self, key)
        return getattr(getattr(self, part), name)

    def override(self, changes: Mapping[str, object]) -> "RunConfig":
        """A copy with `changes` applied, e.g. {"model.hidden_size": 64, "train.epochs": 3}.

        The one way to change a run's settings (command line, notebooks, ablation rows). Each part
        is rebuilt with `dataclasses.replace`, so its own checks run (unknown feature names, named
        input sets such as "original" expanded). Call `validate` for the range checks."""
        cfg = copy.deepcopy(self)
        for key, value in changes.items():
            part, name = _split_key(cfg, key)
            setattr(cfg, part, replace(getattr(cfg, part), **{name: value}))
        return cfg

    def validate(self, labels: Mapping[str, str] | None = None) -> "RunConfig":
        """Range and choice checks, all problems in one error; `labels` maps a key to how the user
        spelled it (e.g. "train.epochs" -> "--epochs")."""
        label = lambda key: (labels or {}).get(key, key)  # noqa: E731
        problems = [f"{label(k)} {self.get(k)}: must be at least 1" for k in AT_LEAST_ONE if self.get(k) < 1]
        problems += [f"{label(k)} {self.get(k)}: must be 0 or more" for k in AT_LEAST_ZERO if self.get(k) < 0]
        if not 0.0 <= self.model.dropout < 1.0:
            problems.append(f"{label('model.dropout')} {self.model.dropout}: must be in [0, 1)")
        problems += [
            f"{label(k)} {self.get(k)!r}: choose one of {', '.join(v)}"
            for k, v in CHOICES.items()
            if self.get(k) not in v
        ]
        if problems:
            raise HRLSTMError("; ".join(problems))
        return self


def _split_key(cfg: RunConfig, key: str) -> tuple[str, str]:
    part, _, name = key.partition(".")
    if part not in {f.name for f in fields(cfg)} or name not in {f.name for f in fields(getattr(cfg, part))}:
        raise HRLSTMError(
            f"unknown setting {key!r}; settings are PART.NAME with PART one of "
            f"{', '.join(f.name for f in fields(cfg))} (e.g. model.hidden_size)"
        )
    return part, name
