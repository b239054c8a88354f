"""The two models: an LSTM over the input channels, and the same with a learned user embedding.

Both map (batch, seq_len, n_inputs) to a heart rate in BPM at every step. The
output is the training mean heart rate plus the training standard deviation
times the head's output, so the first epoch starts from the mean-heart-rate
baseline instead of from zero BPM, and the head works in unit scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..errors import HRLSTMError

MODEL_KINDS = ("lstm", "lstm_embeddings", "lstm_kinetic")
# How the athlete's embedding reaches the LSTM: appended to every step's inputs, used (through a
# linear map) as the LSTM's initial hidden and cell state, or both.
USER_CONDITIONING = ("concat", "init_state", "both")
UNKNOWN_USER = 0  # reserved embedding index: cold-start users get the mean embedding


@dataclass
class ModelConfig:
    model: str = "lstm_embeddings"  # the original project's default was "lstm"
    n_inputs: int = 3
    hidden_size: int = 64
    num_layers: int = 2
    dropout: float = 0.2  # between LSTM layers, as nn.LSTM applies it
    embedding_dim: int = 16
    user_conditioning: str = "concat"  # one of USER_CONDITIONING (lstm_embeddings only)
    n_users: int = 0  # known users; index 0 is reserved for unknown ones
    # Rows 1..trained_users make the unknown-user mean (0: all rows). Personalisation appends
    # rows later; they must not shift what a cold-start athlete gets.
    trained_users: int = 0
    # The head predicts in training-standardised units: output = mean + scale * head(h).
    # Without this, Adam's small steps need thousands of updates just to reach BPM
    # magnitudes (the original project's underfitting, R² 0.05). Both are fitted on the training split.
    output_init_bpm: float = 140.0
    output_scale_bpm: float = 20.0
    # lstm_kinetic: the `time_step` input's column (-1: not an input) and its training mean / std, so the
    # model can turn it back into seconds; set from the data (training.prepare.configure_model).
    time_step_column: int = -1
    time_step_mean_s: float = 0.0
    time_step_std_s: float = 1.0


class HRLSTM(nn.Module):
    """speed + altitude + gender (+ optional inputs) -> LSTM -> heart rate per step."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.lstm = nn.LSTM(
            input_size=self._lstm_input_size(cfg),
            hidden_size=cfg.hidden_size,
            num_layers=cfg.num_layers,
            dropout=cfg.dropout if cfg.num_layers > 1 else 0.0,
            batch_first=True,
        )
        self.head = nn.Linear(cfg.hidden_size, 1)
        with torch.no_grad():  # start at the training mean: the first epoch begins at the baseline
            self.head.weight.mul_(0.1)
            self.head.bias.zero_()

    @staticmethod
    def _lstm_input_size(cfg: ModelConfig) -> int:
        return cfg.n_inputs

    def _lstm_inputs(self, x: torch.Tensor, user: torch.Tensor | None) -> torch.Tensor:
        return x

    def _initial_state(self, x: torch.Tensor, user: torch.Tensor | None):
        return None  # zeros

    def forward(self, x: torch.Tensor, user: torch.Tensor | None = None) -> torch.Tensor:
        out, _ = self.lstm(self._lstm_inputs(x, user), self._initial_state(x, user))
        return self.cfg.output_init_bpm + self.cfg.output_scale_bpm * self.head(out).squeeze(-1)


class HRLSTMWithEmbeddings(HRLSTM):
    """The same LSTM with a per-athlete embedding, appended to every step's inputs and/or
    mapped to the LSTM's initial state (`user_conditioning`)."""

    def __init__(self, cfg: ModelConfig):
        if cfg.user_conditioning not in USER_CONDITIONING:
            raise HRLSTMError(
                f"unknown user conditioning {cfg.user_conditioning!r}; choose one of {', '.join(USER_CONDITIONING)}"
            )
        super().__init__(cfg)
        self.user_embedding = nn.Embedding(cfg.n_users + 1, cfg.embedding_dim)
        nn.init.normal_(self.user_embedding.weight, std=0.1)
        self.to_state = None
        if cfg.user_conditioning in ("init_state", "both"):
            self.to_state = nn.Linear(cfg.embedding_dim, 2 * cfg.num_layers * cfg.hidden_size)

    @staticmethod
    def _lstm_input_size(cfg: ModelConfig) -> int:
        concat = cfg.user_conditioning in ("concat", "both")
        return cfg.n_inputs + (cfg.embedding_dim if concat else 0)

    def _users(self, x: torch.Tensor, user: torch.Tensor | None) -> torch.Tensor:
        if user is None:
            return torch.full((x.shape[0],), UNKNOWN_USER, dtype=torch.long, device=x.device)
        return user

    def user_vectors(self, user: torch.Tensor) -> torch.Tensor:
        table = self.user_embedding.weight
        last = self.cfg.trained_users or table.shape[0] - 1
        known = table[1 : last + 1].mean(dim=0) if last > 0 else table[0]
        # torch.where, not boolean indexing: no host sync, cuDNN-friendly shapes.
        return torch.where((user == UNKNOWN_USER)[:, None], known, table[user])

    def _lstm_inputs(self, x: torch.Tensor, user: torch.Tensor | None) -> torch.Tensor:
        if self.cfg.user_conditioning == "init_state":
            return x
        emb = self.user_vectors(self._users(x, user))[:, None, :].expand(-1, x.shape[1], -1)
        return torch.cat([x, emb], dim=-1)

    def _initial_state(self, x: torch.Tensor, user: torch.Tensor | None):
        if self.to_state is None:
            return None
        emb = self.user_vectors(self._users(x, user))
        # (batch, 2*layers*hidden) -> h0, c0 of shape (layers, batch, hidden), contiguous for cuDNN
        state = (
            torch.tanh(self.to_state(emb)).to(x.dtype).view(x.shape[0], 2 * self.cfg.num_layers, self.cfg.hidden_size)
        )
        h0, c0 = state.transpose(0, 1).chunk(2, dim=0)
        return h0.contiguous(), c0.contiguous()


# Each kind's class. models/kinetic.py adds lstm_kinetic's: it builds on this module, and the package
# imports it, so the entry is there before any build_model call.
MODEL_CLASSES: dict[str, type[HRLSTM]] = {"lstm": HRLSTM, "lstm_embeddings": HRLSTMWithEmbeddings}


def build_model(cfg: ModelConfig) -> HRLSTM:
    if cfg.model in MODEL_CLASSES:
        return MODEL_CLASSES[cfg.model](cfg)
    raise HRLSTMError(f"unknown model {cfg.model!r}; choose one of {', '.join(MODEL_KINDS)}")


@torch.no_grad()
def predict_bpm(
    model: HRLSTM, inputs: torch.Tensor, users: torch.Tensor, device: torch.device | str = "cpu", batch_size: int = 256
) -> np.ndarray:
    """Heart rate in BPM for every step of every workout, (n, seq_len)."""
    model.eval()
    out = []
    for start in range(0, len(inputs), batch_size):
        x = inputs[start : start + batch_size].to(device, non_blocking=True)
        u = users[start : start + batch_size].to(device, non_blocking=True)
        out.append(model(x, u).float().cpu())
    return torch.cat(out).numpy() if out else np.empty((0, inputs.shape[1]), np.float32)
