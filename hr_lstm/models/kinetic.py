"""An LSTM whose output passes through first-order heart-rate kinetics, shaped like the physiology.

The LSTM (with the user embedding, as `lstm_embeddings`) says what heart rate the effort demands
at each step; a kinetic layer says how fast this athlete's heart follows it. The layer is the law
of hr_lstm.kinetics (docs/physiology.md, "1. Kinetics"), with a gradient so it trains end to end:

    HR_k = D_k + (HR_{k-1} - D_k) exp(-dt_k / tau),  tau = tau_on while rising, else tau_off,

with the per-athlete time constants read from the user embedding by a small head, so an unknown
athlete (the mean embedding) gets the mean athlete's kinetics, and personalising the embedding
row personalises them too. HR_0 is the first demand: the LSTM sets each workout's start level
itself (it sees the athlete, the sport and the history inputs).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ..errors import HRLSTMError
from ..kinetics import first_order_hr
from .lstm import MODEL_CLASSES, HRLSTMWithEmbeddings, ModelConfig

# Where the time constants start: the literature's mean (57.6 s, docs/physiology.md "1. Kinetics"),
# with recovery (off) the slower.
TAU_ON_INIT_S, TAU_OFF_INIT_S = 60.0, 90.0
TAU_RANGE_S = (5.0, 900.0)  # below, heart rate would copy the demand; above, it would hardly move


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().double().numpy()


class _FirstOrderHR(torch.autograd.Function):
    """hr_lstm.kinetics.first_order_hr, the law written once, with its gradient written out by hand.

    Both passes run their 500-step loops in numpy: a training step then costs 1.05x lstm_embeddings'
    (CPU), against 1.6x with the loop in torch ops under autograd. The on/off switch is exact, as in
    the simulator and the baseline: the switch happens where HR_{k-1} = D_k, so heart rate stays
    continuous in every input and only its slope changes there (like a ReLU's)."""

    @staticmethod
    def forward(ctx, demand_bpm, dt_s, tau_on_s, tau_off_s):
        hr, _ = first_order_hr(
            _numpy(demand_bpm), _numpy(dt_s), _numpy(demand_bpm[:, 0]), _numpy(tau_on_s), _numpy(tau_off_s)
        )
        hr_bpm = torch.from_numpy(np.ascontiguousarray(hr)).to(demand_bpm)
        ctx.save_for_backward(hr_bpm, demand_bpm, dt_s, tau_on_s, tau_off_s)
        return hr_bpm

    @staticmethod
    def backward(ctx, grad_hr):
        hr, demand, dt, tau_on, tau_off = ctx.saved_tensors
        # Every step k >= 1 at once, now that each HR_{k-1} is known.
        gap = hr[:, :-1] - demand[:, 1:]
        rising = gap < 0
        tau = torch.where(rising, tau_on[:, None], tau_off[:, None])
        decay = torch.exp(-dt[:, 1:] / tau)  # dHR_k / dHR_{k-1}
        # The adjoint a_k = dLoss/dHR_k through all later steps: a_{k-1} += decay_k a_k, backwards in time.
        adjoint_t, decay_t = _numpy(grad_hr).T.copy(), _numpy(decay).T.copy()
        for k in range(len(adjoint_t) - 1, 0, -1):
            adjoint_t[k - 1] += decay_t[k - 1] * adjoint_t[k]
        adjoint = torch.from_numpy(adjoint_t.T).to(grad_hr)
        later = adjoint[:, 1:]
        grad_demand = torch.cat([adjoint[:, :1], later * (1 - decay)], dim=1)  # HR_0 is the first demand
        grad_tau = later * gap * decay * dt[:, 1:] / tau**2
        return grad_demand, None, (grad_tau * rising).sum(1), (grad_tau * ~rising).sum(1)


def kinetic_hr(
    demand_bpm: torch.Tensor, dt_s: torch.Tensor, tau_on_s: torch.Tensor, tau_off_s: torch.Tensor
) -> torch.Tensor:
    """Heart rate (batch, seq_len) following `demand_bpm` first order from HR_0 = the first demand.

    dt_s[:, k] is the interval ending at sample k (index 0 unused); the taus are one per row.
    Differentiable in the demand and both time constants."""
    return _FirstOrderHR.apply(demand_bpm, dt_s, tau_on_s, tau_off_s)


class HRLSTMKinetic(HRLSTMWithEmbeddings):
    """lstm_embeddings gives a demand heart rate per step; per-athlete on/off kinetics integrate it.

    Needs the `time_step` input: its column and training mean / std (ModelConfig.time_step_*,
    set from the data by training.prepare.configure_model) turn it back into seconds."""

    def __init__(self, cfg: ModelConfig):
        if cfg.time_step_column < 0:
            raise HRLSTMError(
                "lstm_kinetic needs the time_step input (seconds since the previous sample): add it to --features"
            )
        super().__init__(cfg)
        self.kinetic_head = nn.Linear(cfg.embedding_dim, 2)  # embedding -> log tau_on, log tau_off
        with torch.no_grad():  # every athlete starts at the literature's kinetics
            self.kinetic_head.weight.mul_(0.1)
            self.kinetic_head.bias.copy_(torch.tensor([math.log(TAU_ON_INIT_S), math.log(TAU_OFF_INIT_S)]))

    def time_constants_s(self, user: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(tau_on_s, tau_off_s), one per row of `user` (UNKNOWN_USER: from the mean embedding)."""
        log_tau = self.kinetic_head(self.user_vectors(user)).float()
        tau_s = log_tau.exp().clamp(*TAU_RANGE_S)
        return tau_s[:, 0], tau_s[:, 1]

    def step_seconds(self, x: torch.Tensor) -> torch.Tensor:
        """The `time_step` column back in seconds, (batch, seq_len)."""
        cfg = self.cfg
        return (x[..., cfg.time_step_column].float() * cfg.time_step_std_s + cfg.time_step_mean_s).clamp_min(0.0)

    def demand_bpm(self, x: torch.Tensor, user: torch.Tensor | None = None) -> torch.Tensor:
        """What the effort asks of the heart at each step: the LSTM's own output."""
        return super().forward(x, user)

    def forward(self, x: torch.Tensor, user: torch.Tensor | None = None) -> torch.Tensor:
        users = self._users(x, user)
        tau_on_s, tau_off_s = self.time_constants_s(users)
        return kinetic_hr(self.demand_bpm(x, users).float(), self.step_seconds(x), tau_on_s, tau_off_s)


MODEL_CLASSES["lstm_kinetic"] = HRLSTMKinetic
