"""Figures for the command line and the notebooks.

Each function draws with seaborn/matplotlib and returns the figure; none picks
a backend (papermill and Jupyter choose their own, headless runs fall back to
Agg by themselves).
"""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import MaxNLocator

from ..training.curves import training_curves  # noqa: F401  (the notebooks draw it too)

# ---- the data (01) ----------------------------------------------------------------------------


def workouts_per_user_and_sport(table: pd.DataFrame) -> plt.Figure:
    """How many workouts each user has (by main sport), and workouts per sport by gender."""
    per_user = table.groupby("user_id").agg(
        n_workouts=("id", "size"), main_sport=("sport_family", lambda s: s.mode().iloc[0])
    )
    fig, (ax_users, ax_sports) = plt.subplots(1, 2, figsize=(11, 3.8), constrained_layout=True)
    sns.histplot(per_user, x="n_workouts", hue="main_sport", multiple="stack", ax=ax_users, discrete=False)
    ax_users.set(xlabel="workouts per user", ylabel="users", title=f"{len(per_user):,} users")
    sns.countplot(
        table,
        y="sport",
        hue="gender",
        ax=ax_sports,
        order=table["sport"].value_counts().index,
        hue_order=sorted(table["gender"].unique()),
    )
    ax_sports.set(xlabel="workouts", ylabel="", title=f"{len(table):,} workouts by sport and gender")
    return fig


def distributions_by_sport(points: pd.DataFrame) -> plt.Figure:
    """Heart rate, speed and altitude at random time points, by sport family and gender."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), constrained_layout=True)
    for ax, (column, label) in zip(
        axes, (("heart_rate_bpm", "heart rate (BPM)"), ("speed_kmh", "speed (km/h)"), ("altitude_m", "altitude (m)"))
    ):
        sns.boxplot(
            points,
            x="sport_family",
            y=column,
            hue="gender",
            ax=ax,
            showfliers=False,
            order=sorted(points["sport_family"].unique()),
            hue_order=sorted(points["gender"].unique()),
        )
        ax.set(xlabel="", ylabel=label)
        if ax is not axes[-1]:
            ax.get_legend().remove()
    sns.move_legend(axes[-1], "upper left", bbox_to_anchor=(1, 1), frameon=False)
    return fig


def sampling_intervals(intervals_s: np.ndarray) -> plt.Figure:
    """Histogram of the seconds between samples (log scale): the grid is irregular, pauses make long gaps."""
    fig, ax = plt.subplots(figsize=(7, 3.4), constrained_layout=True)
    sns.histplot(np.clip(intervals_s, 1, None), log_scale=True, bins=60, ax=ax)
    median = float(np.median(intervals_s))
    ax.axvline(median, color="k", ls=":", lw=1)
    ax.set(xlabel="seconds between consecutive samples", ylabel="intervals", title=f"median {median:.0f} s")
    return fig


def workout_series(ws, rows: list[int]) -> plt.Figure:
    """Speed, altitude and heart rate of a few workouts against time, one column per workout."""
    channels = (
        ("speed_kmh", "speed (km/h)", "C0"),
        ("altitude_m", "altitude (m)", "C2"),
        ("heart_rate_bpm", "heart rate (BPM)", "C3"),
    )
    fig, axes = plt.subplots(
        3, len(rows), figsize=(4.2 * len(rows), 6.5), sharex="col", squeeze=False, constrained_layout=True
    )
    for col, row in enumerate(rows):
        minutes = ws.channel("time_s")[row] / 60.0
        meta = ws.meta.iloc[row]
        for r, (name, label, colour) in enumerate(channels):
            axes[r, col].plot(minutes, ws.channel(name)[row], color=colour, lw=1)
            axes[r, col].set(ylabel=label if col == 0 else "")
        axes[0, col].set_title(f"{meta['sport']}, {meta['gender']} (user {meta['user_id']})", fontsize=10)
        axes[-1, col].set(xlabel="minutes since start")
    return fig


def lag_correlation(table: pd.DataFrame) -> plt.Figure:
    """Correlation of speed with heart rate some time later, averaged over workouts, per sport family."""
    fig, ax = plt.subplots(figsize=(7, 3.6), constrained_layout=True)
    sns.lineplot(table, x="lag_s", y="r", hue="sport_family", ax=ax)
    for _, best in table.loc[table.groupby("sport_family")["r"].idxmax()].iterrows():
        ax.plot(best["lag_s"], best["r"], "o", color="k", ms=4)
    ax.set(
        xlabel="heart rate this many seconds after the speed (median sample spacing)",
        ylabel="mean within-workout r",
        title="speed vs later heart rate",
    )
    return fig


def filter_summary(reasons: pd.Series, by_sport: pd.DataFrame) -> plt.Figure:
    """Workouts kept and dropped by each filter, and which sports the filters removed."""
    fig, (ax_reason, ax_sport) = plt.subplots(
        1, 2, figsize=(12, 3.8), constrained_layout=True, gridspec_kw={"width_ratios": (1.3, 1)}
    )
    labels = [textwrap.fill(str(s), 45) for s in reasons.index]
    sns.barplot(x=reasons.to_numpy(), y=labels, ax=ax_reason, color="C0")
    ax_reason.bar_label(ax_reason.containers[0], fmt="{:,.0f}", padding=3)
    ax_reason.set(xlabel="workouts", title="what the filters did")
    sns.countplot(
        by_sport,
        y="sport",
        hue="status",
        ax=ax_sport,
        hue_order=["kept", "dropped"],
        order=by_sport["sport"].value_counts().index,
    )
    ax_sport.set(xlabel="workouts read", ylabel="")
    return fig


# ---- models (02, 03) --------------------------------------------------------------------------


def training_curves_compared(histories: dict) -> plt.Figure:
    """Training and validation MAE per epoch of several models on shared axes."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True, constrained_layout=True)
    for i, (name, h) in enumerate(histories.items()):
        for ax, values in zip(axes, (h.train_mae, h.val_mae)):
            ax.plot(h.epoch, values, color=f"C{i}", label=name)
            if h.best_epoch:
                ax.plot(h.best_epoch, values[h.epoch.index(h.best_epoch)], "o", color=f"C{i}")
    axes[0].set(xlabel="epoch", ylabel="MAE (BPM)", title="training")
    axes[1].set(xlabel="epoch", title="validation (dot: best epoch)")
    axes[1].legend(frameon=False)
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


def predicted_vs_actual(
    time_min: np.ndarray,
    true_bpm: np.ndarray,
    predictions: dict,
    picks: dict,
    clean_bpm: np.ndarray | None = None,
    mae_bpm: np.ndarray | None = None,
) -> plt.Figure:
    """Recorded and predicted heart rate of picked test workouts (e.g. good / median / bad)."""
    fig, axes = plt.subplots(
        1, len(picks), figsize=(4.6 * len(picks), 3.6), sharey=True, squeeze=False, constrained_layout=True
    )
    for ax, (label, row) in zip(axes[0], picks.items()):
        ax.plot(time_min[row], true_bpm[row], color="0.55", lw=1, label="recorded")
        if clean_bpm is not None:
            ax.plot(time_min[row], clean_bpm[row], color="k", lw=1, ls=":", label="noise-free (simulator)")
        for i, (name, pred) in enumerate(predictions.items()):
            ax.plot(time_min[row], pred[row], color=f"C{i}", lw=1.5, label=name)
        title = label + (f" workout: MAE {mae_bpm[row]:.1f} BPM" if mae_bpm is not None else " workout")
        ax.set(xlabel="minutes since start", title=title)
    axes[0, 0].set(ylabel="heart rate (BPM)")
    axes[0, -1].legend(frameon=False, fontsize=8)
    return fig


def error_by_time(table: pd.DataFrame, reference_mae: dict | None = None) -> plt.Figure:
    """Mean absolute error against minutes into the workout across test workouts, per model."""
    fig, ax = plt.subplots(figsize=(8, 3.6), constrained_layout=True)
    sns.lineplot(table, x="minute", y="mae_bpm", hue="model", ax=ax, lw=1.2, marker=".")
    references = reference_mae or {}
    for shade, (name, value) in zip(np.linspace(0.1, 0.65, max(len(references), 1)), references.items()):
        ax.axhline(value, color=str(round(shade, 2)), ls="--", lw=1, label=f"{name} (overall)")
    ax.set(xlabel="minutes into the workout", ylabel="MAE (BPM)", title="error along the workout")
    ax.legend(frameon=False, fontsize=8)
    return fig


def error_by_group(errors: pd.DataFrame, by: str = "sport") -> plt.Figure:
    """Per-workout MAE of test workouts grouped (e.g. by sport), one box per model."""
    fig, ax = plt.subplots(figsize=(8, 3.6), constrained_layout=True)
    order = errors[by].value_counts().index
    sns.boxplot(errors, x=by, y="mae_bpm", hue="model", order=order, ax=ax, showfliers=True, fliersize=2)
    counts = errors.drop_duplicates("test_row")[by].value_counts()
    ax.set_xticks(range(len(order)), [f"{g}\n({counts[g]} workouts)" for g in order])
    ax.set(xlabel="", ylabel="workout MAE (BPM)", title=f"error per {by}")
    return fig


def per_user_change(table: pd.DataFrame, before: str, after: str) -> plt.Figure:
    """Each user's mean workout MAE under two models (below the diagonal: `after` is better), and the change."""
    fig, (ax_scatter, ax_bar) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    sns.scatterplot(table, x=before, y=after, ax=ax_scatter)
    low, high = table[[before, after]].min().min(), table[[before, after]].max().max()
    ax_scatter.plot([low, high], [low, high], color="k", ls=":", lw=1)
    ax_scatter.set(xlabel=f"{before}: user MAE (BPM)", ylabel=f"{after}: user MAE (BPM)")
    colours = np.where(table["change_bpm"] < 0, "C2", "C3")
    ax_bar.bar(np.arange(len(table)), table["change_bpm"], color=colours)
    ax_bar.axhline(0, color="k", lw=0.8)
    better = float((table["change_bpm"] < 0).mean())
    ax_bar.set(
        xlabel="users, sorted", ylabel="MAE change (BPM)", xticks=[], title=f"{better:.0%} of users better with {after}"
    )
    return fig


def embedding_projection(projection: pd.DataFrame, hues: list[str], explained: np.ndarray | None = None) -> plt.Figure:
    """Users' learned embeddings on their first two principal components, coloured by user traits."""
    fig, axes = plt.subplots(1, len(hues), figsize=(4.8 * len(hues), 4), squeeze=False, constrained_layout=True)
    for ax, hue in zip(axes[0], hues):
        points = ax.scatter(projection["pc1"], projection["pc2"], c=projection[hue], cmap="viridis", s=25)
        fig.colorbar(points, ax=ax, label=hue)
        ax.set(xlabel="PC 1", ylabel="PC 2", title=f"coloured by {hue}")
    if explained is not None:
        fig.suptitle(
            "user embeddings, principal components explain "
            + " + ".join(f"{v:.0%}" for v in explained)
            + " of their variance"
        )
    return fig


# ---- comparison (04) --------------------------------------------------------------------------


def model_comparison(table: pd.DataFrame) -> plt.Figure:
    """Test MAE and R² of every model and reference prediction."""
    fig, (ax_mae, ax_r2) = plt.subplots(1, 2, figsize=(12, 0.6 * len(table) + 1.6), constrained_layout=True)
    palette = {"model": "C0", "reference": "0.6"}
    data = table.reset_index()
    for ax, column, label in ((ax_mae, "test_mae", "test MAE (BPM)"), (ax_r2, "test_r2", "test R²")):
        sns.barplot(data, x=column, y="prediction", hue="kind", palette=palette, dodge=False, ax=ax)
        ax.bar_label(ax.containers[0], fmt="{:.2f}", padding=3)
        if len(ax.containers) > 1:
            ax.bar_label(ax.containers[1], fmt="{:.2f}", padding=3)
        ax.set(xlabel=label, ylabel="")
    ax_r2.set(yticklabels=[])
    ax_r2.get_legend().remove()
    return fig


# ---- ablation (06) ----------------------------------------------------------------------------


def ablation(table: pd.DataFrame) -> plt.Figure:
    """Each row's test MAE, and its MAE difference to the default with the bootstrap interval."""
    fig, (ax_mae, ax_diff) = plt.subplots(
        1, 2, figsize=(12, 0.45 * len(table) + 1.6), constrained_layout=True, sharey=True
    )
    names = list(table.index)
    y = np.arange(len(names))
    ax_mae.barh(y, table["test MAE"], color="C0")
    ax_mae.bar_label(ax_mae.containers[0], fmt="{:.2f}", padding=3)
    if table["× floor"].notna().any():
        floor = float((table["test MAE"] / table["× floor"]).iloc[0])
        ax_mae.axvline(floor, color="k", ls=":", lw=1, label=f"noise floor {floor:.2f}")
        ax_mae.axvline(2 * floor, color="grey", ls="--", lw=1, label="2 × floor")
        ax_mae.legend(frameon=False, loc="lower left", bbox_to_anchor=(0, 1.0), ncol=2)
    ax_mae.set(yticks=y, yticklabels=names, xlabel="test MAE (BPM)", xlim=(0, 1.15 * float(table["test MAE"].max())))
    ax_mae.invert_yaxis()
    if "Δ MAE vs default" in table:
        diff = table["Δ MAE vs default"].fillna(0.0).to_numpy()
        low, high = table["95% CI low"].fillna(0.0).to_numpy(), table["95% CI high"].fillna(0.0).to_numpy()
        colour = np.where(low > 0, "C3", np.where(high < 0, "C2", "0.6"))
        ax_diff.barh(y, diff, color=colour, xerr=[diff - low, high - diff], capsize=3)
        ax_diff.axvline(0, color="k", lw=0.8)
    ax_diff.set(xlabel="MAE − default's MAE (BPM), 95% interval over athletes")
    return fig


# ---- your workouts (05) ---------------------------------------------------------------------


def bland_altman(predictions: dict, measured_bpm: np.ndarray, max_points: int = 4000, seed: int = 0) -> plt.Figure:
    """Bland-Altman: predicted minus measured against their mean, per time step, one panel per prediction,
    with the bias (mean difference) and the 95% limits of agreement (bias +- 1.96 SD)."""
    measured = np.asarray(measured_bpm, np.float64).ravel()
    fig, axes = plt.subplots(
        1, len(predictions), figsize=(4.2 * len(predictions), 3.6), sharey=True, squeeze=False, constrained_layout=True
    )
    rng = np.random.default_rng(seed)
    for ax, (name, pred) in zip(axes[0], predictions.items()):
        pred = np.asarray(pred, np.float64).ravel()
        ok = np.isfinite(pred) & np.isfinite(measured)
        mean, diff = (pred[ok] + measured[ok]) / 2, pred[ok] - measured[ok]
        shown = rng.choice(len(diff), min(max_points, len(diff)), replace=False)
        ax.scatter(mean[shown], diff[shown], s=3, alpha=0.25, color="tab:blue", linewidths=0)
        bias, spread = diff.mean(), 1.96 * diff.std()
        for level, style in ((bias, "-"), (bias - spread, "--"), (bias + spread, "--")):
            ax.axhline(level, color="tab:red", ls=style, lw=1)
        ax.set(title=textwrap.fill(name, 32), xlabel="mean of predicted and measured (BPM)")
        ax.text(
            0.02,
            0.97,
            f"bias {bias:+.1f}\n95% limits {bias - spread:+.1f} to {bias + spread:+.1f}",
            transform=ax.transAxes,
            va="top",
            fontsize=8,
        )
    axes[0][0].set_ylabel("predicted - measured (BPM)")
    return fig


def latest_runs(result, rows: tuple[str, ...], n: int = 4):
    """Measured heart rate of an athlete's first `n` latest workouts against the `rows` of an `AthleteResult`
    (reporting.athlete), each with its 80% band where it has one."""
    latest = result.latest.workouts
    n = min(n, len(latest))
    fig, axes = plt.subplots(
        (n + 1) // 2, 2, figsize=(12, 2.9 * ((n + 1) // 2)), squeeze=False, constrained_layout=True
    )
    colours = sns.color_palette("deep", len(rows))
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.set_visible(False)
            continue
        minute = latest.channel("time_s")[i] / 60
        ax.plot(minute, latest.channel("heart_rate_bpm")[i], color="black", lw=0.9, label="measured")
        for colour, name in zip(colours, rows):
            ax.plot(minute, result.predictions[name][i], color=colour, lw=1.3, label=name)
            if name in result.bands:
                low, high = result.bands[name]
                ax.fill_between(minute, low[i], high[i], color=colour, alpha=0.15, lw=0)
        ax.set_title(result.latest.names[i], fontsize=8)
        ax.set(xlabel="minute", ylabel="heart rate (BPM)")
    axes.flat[0].legend(fontsize=7, loc="lower right")
    return fig
