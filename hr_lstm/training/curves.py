"""The training-curves figure every run writes beside its checkpoint."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib.pyplot as plt

from ..paths import write_bytes_atomic


def training_curves(history, title: str = "") -> plt.Figure:
    """Train/validation loss (MSE) and MAE per epoch, the best epoch marked."""
    fig, (ax_loss, ax_mae) = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    ax_loss.plot(history.epoch, history.train_loss, label="train")
    ax_loss.plot(history.epoch, history.val_loss, label="validation")
    ax_loss.set(xlabel="epoch", ylabel="MSE (BPM²)", yscale="log", title="loss")
    ax_mae.plot(history.epoch, history.train_mae, label="train")
    ax_mae.plot(history.epoch, history.val_mae, label="validation")
    ax_mae.set(xlabel="epoch", ylabel="MAE (BPM)", title="mean absolute error")
    for ax in (ax_loss, ax_mae):
        if history.best_epoch:
            ax.axvline(history.best_epoch, color="grey", ls=":", lw=1, label="best epoch")
        ax.legend(frameon=False)
    if title:
        fig.suptitle(title)
    return fig


def save_training_curves(history, path: Path, title: str) -> None:
    fig = training_curves(history, title=title)
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, dpi=110, format="png")
    finally:
        plt.close(fig)
    write_bytes_atomic(path, buffer.getbuffer())
