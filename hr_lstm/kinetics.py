"""The first-order heart-rate law, written once: the simulator generates with it and the physiological baseline fits it.

Heart rate relaxes toward a demand heart rate as a first-order system with separate on
(rising) and off (falling) time constants, the off one usually the longer (docs/physiology.md,
"1. Kinetics"). Each step uses the exact solution HR_k = D_k + (HR_{k-1} - D_k) exp(-dt_k / tau),
so any step length is stable. The simulator adds auto-pauses, during which heart rate relaxes
toward rest; the baseline's least squares asks for the Jacobian, propagated alongside.
This module imports only numpy: it is a base module, below every layer.
"""

from __future__ import annotations

import numpy as np


def first_order_hr(demand_bpm, dt_s, hr0_bpm, tau_on_s, tau_off_s, design=None, *, pause_s=None, rest_bpm=None):
    """Heart rate at each sample, first order toward the demand; returns (hr, jacobian or None).

    demand_bpm[..., k] is the demand over the interval ending at sample k and dt_s[..., k] that
    interval's length (index 0 unused: HR starts at hr0_bpm); a sample's speed describes the
    interval before it. Each step: HR_k = D_k + (HR_{k-1} - D_k) e^{-dt_k/tau}, tau = tau_on while
    rising (D_k > HR_{k-1}), else tau_off. Accepts one workout (1-D) or a batch (rows); hr0 and
    the taus are scalars or one per row; dt_s (and pause_s) broadcast to the demand's shape.

    design (n, T, P): dD/dparameters, with hr0 and the taus in columns 1, 4, 5 (zero there); the
    Jacobian (n, T, P) of HR is then propagated in the same pass, one pass instead of P+1 for
    differences. pause_s[..., k]: seconds of auto-pause before interval k, during which HR first
    relaxes toward rest_bpm (scalar or one per row) with tau_off. Pauses and the Jacobian are not
    combined. A batch's results are transposed views of time-major arrays.
    """
    if design is not None and pause_s is not None:
        raise ValueError("first_order_hr: the Jacobian is not propagated through pauses")
    d = np.asarray(demand_bpm, float)
    single = d.ndim == 1
    d = np.atleast_2d(d)
    n = d.shape[0]
    tau_on, tau_off = np.asarray(tau_on_s, float), np.asarray(tau_off_s, float)
    # Time-major copies: each step then reads contiguous rows (3-4x faster than strided columns).
    demand_t = np.ascontiguousarray(d.T)
    dt_t = np.ascontiguousarray(np.broadcast_to(np.asarray(dt_s, float), d.shape).T)
    if pause_s is not None:
        pause_t = np.ascontiguousarray(np.broadcast_to(np.asarray(pause_s, float), d.shape).T)
        rest = np.broadcast_to(np.asarray(rest_bpm, float), (n,))
    hr = np.empty_like(demand_t)
    h = hr[0] = np.broadcast_to(np.asarray(hr0_bpm, float), (n,))
    jac = None
    if design is not None:
        design_t = np.ascontiguousarray(design.transpose(1, 0, 2))
        jac = np.zeros_like(design_t)
        jac[0, :, 1] = 1.0
    for k in range(1, len(hr)):
        if pause_s is not None:
            h = rest + (h - rest) * np.exp(-pause_t[k] / tau_off)
        d = demand_t[k]
        rising = d > h
        tau = np.where(rising, tau_on, tau_off)
        e = np.exp(-dt_t[k] / tau)
        if jac is not None:
            j = jac[k]
            np.multiply(e[:, None], jac[k - 1] - design_t[k], out=j)
            j += design_t[k]
            de_dtau = (h - d) * e * dt_t[k] / tau**2
            j[:, 4] += rising * de_dtau
            j[:, 5] += ~rising * de_dtau
        h = hr[k] = d + (h - d) * e
    if single:
        return hr[:, 0], None if jac is None else jac[:, 0]
    return hr.T, None if jac is None else jac.transpose(1, 0, 2)
