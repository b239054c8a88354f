"""Splits, normalisation without leakage, the two models, and checkpoints."""

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_record, write_fitrec

from hr_lstm.data.cache import load_workouts
from hr_lstm.data.features import FEATURES, FeatureConfig, build_inputs, fit_normalizer
from hr_lstm.data.filters import FilterConfig, apply_filters
from hr_lstm.data.splits import SplitConfig, make_split
from hr_lstm.errors import CheckpointError, HRLSTMError
from hr_lstm.models.checkpoint import load_checkpoint, restore_model, save_checkpoint
from hr_lstm.models.lstm import UNKNOWN_USER, HRLSTMWithEmbeddings, ModelConfig, build_model


def _meta(n_users=6, per_user=10, seed=0):
    rng = np.random.default_rng(seed)
    rows = [
        {"id": str(u * 100 + k), "user_id": str(u), "start_time": int(rng.integers(0, 10**8))}
        for u in range(n_users)
        for k in range(per_user)
    ]
    return pd.DataFrame(rng.permutation(rows).tolist())


def test_user_time_split_keeps_each_users_time_order():
    meta = _meta()
    split = make_split(meta, SplitConfig("user_time", seed=0))
    assert len(split.train) + len(split.val) + len(split.test) == len(meta)
    for user, rows in meta.groupby("user_id"):

        def t(part):
            return meta.loc[np.intersect1d(part, rows.index), "start_time"]

        assert t(split.train).max() < t(split.val).min() <= t(split.val).max() < t(split.test).min()
        assert len(np.intersect1d(split.train, rows.index)) == 8  # 80/10/10 of 10 workouts


def test_user_split_has_disjoint_users_and_is_deterministic():
    meta = _meta(n_users=20)
    a = make_split(meta, SplitConfig("user", seed=1))
    b = make_split(meta, SplitConfig("user", seed=1))
    users = [set(meta.loc[p, "user_id"]) for p in (a.train, a.val, a.test)]
    assert not (users[0] & users[1]) and not (users[0] & users[2]) and not (users[1] & users[2])
    assert all(np.array_equal(x, y) for x, y in zip((a.train, a.val, a.test), (b.train, b.val, b.test)))
    c = make_split(meta, SplitConfig("workout", seed=2))
    assert c.sizes() == "Train: 160 | Val: 20 | Test: 20"
    with pytest.raises(HRLSTMError, match="unknown split"):
        make_split(meta, SplitConfig("random"))


@pytest.fixture
def workouts(tmp_path):
    records = [
        make_record(workout_id=i, user_id=i % 3, seed=i, gender=["male", "female", "unknown"][i % 3]) for i in range(9)
    ]
    records[8]["heart_rate"] = [300.0] * 500  # broken strap: the filter must drop it
    records[7]["heart_rate"][10] = 0.0  # one bad point: interpolated, workout kept
    return load_workouts(write_fitrec(tmp_path / "d.json", records), cache=False, log=lambda *a: None)


def test_filters_drop_and_repair_with_reasons(workouts):
    kept, report = apply_filters(workouts, FilterConfig(min_workouts_per_user=3))
    assert report.n_read == 9 and report.n_kept == 6  # workout 8 dropped, then user 2 has only 2 left
    assert "1 heart rate outside 30-230" in report.summary() and "2 users with fewer than 3" in report.summary()
    assert report.n_points_repaired == 1
    hr = kept.channel("heart_rate_bpm")
    assert hr.min() >= 30 and hr.max() <= 230
    only_walks, _ = apply_filters(workouts, FilterConfig(sports=("run",), min_workouts_per_user=1))
    assert len(only_walks) == 8
    with pytest.raises(HRLSTMError, match="no workouts left"):
        apply_filters(workouts, FilterConfig(sports=("bike",), min_workouts_per_user=1))


def test_normalisation_uses_training_workouts_only(workouts):
    cfg = FeatureConfig(inputs=("speed", "altitude", "gender", "sport", "grade", "time_elapsed"))
    train = workouts.subset(np.arange(4))
    test = workouts.subset(np.arange(4, 9))
    test.series = test.series.copy()
    test.series[:, :, 1] += 1000.0  # wildly different test speeds must not move the statistics
    norm = fit_normalizer(train, cfg)
    assert norm.mean == fit_normalizer(train, cfg).mean
    x_train = build_inputs(train, cfg, norm)
    assert x_train.shape == (4, 500, 3 + 4 + 2)
    np.testing.assert_allclose(x_train[..., :2].reshape(-1, 2).mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(x_train[..., :2].reshape(-1, 2).std(0), 1, atol=1e-3)
    assert build_inputs(test, cfg, norm)[..., 0].mean() > 100  # scaled by train stats, not its own
    assert set(np.unique(x_train[..., 2])) <= {0.0, 0.5, 1.0}  # gender stays a flag
    with pytest.raises(HRLSTMError, match="unknown feature"):
        FeatureConfig(inputs=("speed", "cadence"))


def test_sport_variant_tells_bikes_apart_within_the_family(workouts):
    # A mountain-bike ride and a road ride share the 'bike' family one-hot but not the physics.
    ws = workouts.subset(np.arange(5))
    ws.meta = ws.meta.assign(sport=["bike", "mountain bike", "Bike (Transport)", "run", "mountain bike"])
    cfg = FeatureConfig(inputs=("sport", "sport_variant"))
    x = build_inputs(ws, cfg, fit_normalizer(ws, cfg))[:, 0, :]
    family, variant = x[:, :4], x[:, 4:]
    np.testing.assert_array_equal(family[:3], np.tile(family[:1], (3, 1)))  # all three are 'bike'
    np.testing.assert_array_equal(variant, [[0, 0], [1, 0], [0, 1], [0, 0], [1, 0]])  # not rescaled: flags


def test_history_features_come_from_the_same_athletes_earlier_workouts(workouts):
    cfg = FeatureConfig(inputs=("previous_workout",))
    norm = fit_normalizer(workouts, cfg)
    x = build_inputs(workouts, cfg, norm)
    assert x.shape == (9, 500, 2) and np.isfinite(x).all()
    meta, hr = workouts.meta, workouts.channel("heart_rate_bpm").mean(axis=1)
    for user, rows in meta.groupby("user_id"):
        order = rows.sort_values("start_time").index.to_numpy()
        np.testing.assert_array_equal(x[order[0]], 0.0)  # the first workout has no history: the training mean
        for before, after in zip(order, order[1:]):
            expected = (hr[before] - norm.mean[0]) / norm.std[0]
            np.testing.assert_allclose(x[after, :, 0], expected, rtol=1e-5)  # constant along the workout
    later = workouts.subset(np.arange(len(workouts)))
    later.meta = meta.assign(start_time=1_400_000_000 + 86_400 * np.arange(len(meta))[::-1] * 2)  # 2 days apart
    days = FEATURES["days_since_first"].compute(later)[:, :, 0]
    assert (days == days[:, :1]).all()  # one number per workout
    by_user = later.meta.assign(days=days[:, 0]).groupby("user_id")["days"]
    assert (by_user.min() == 0).all() and sorted(by_user.max()) == [12, 12, 12]  # users i%3: 3 workouts 6 apart
    assert FeatureConfig(inputs=("seed",)).inputs == ("speed", "altitude", "gender")
    assert FeatureConfig(inputs=("all",)).inputs[-2:] == ("previous_workout", "days_since_first")
    assert FeatureConfig().inputs == FeatureConfig(inputs=("default",)).inputs
    assert "previous_workout" not in FeatureConfig().inputs, "left out of the default (docs/benchmarks.md)"


@pytest.mark.parametrize("conditioning", ["concat", "init_state", "both"])
def test_user_conditioning_variants(conditioning):
    torch.manual_seed(0)
    cfg = ModelConfig(
        model="lstm_embeddings",
        n_inputs=3,
        hidden_size=16,
        num_layers=2,
        n_users=4,
        embedding_dim=8,
        user_conditioning=conditioning,
    )
    model = build_model(cfg)
    x = torch.randn(5, 50, 3)
    a, b = model(x, torch.tensor([1, 1, 1, 1, 1])), model(x, torch.tensor([2, 2, 2, 2, 2]))
    assert a.shape == (5, 50) and not torch.allclose(a, b), "who is running must change the prediction"
    assert model(x).shape == (5, 50)  # unknown users: the mean embedding
    assert model.lstm.input_size == (3 if conditioning == "init_state" else 11)
    with pytest.raises(HRLSTMError, match="unknown user conditioning"):
        build_model(ModelConfig(model="lstm_embeddings", user_conditioning="film"))


def test_models_shapes_output_init_and_unknown_users():
    torch.manual_seed(0)
    x = torch.randn(5, 500, 3)
    base = build_model(ModelConfig(model="lstm", n_inputs=3, hidden_size=16, num_layers=2, output_init_bpm=142.0))
    y = base(x)
    assert y.shape == (5, 500) and abs(float(y.detach().mean()) - 142.0) < 5  # first epoch starts near the mean
    emb = build_model(
        ModelConfig(model="lstm_embeddings", n_inputs=3, hidden_size=16, num_layers=1, n_users=4, embedding_dim=8)
    )
    assert isinstance(emb, HRLSTMWithEmbeddings)
    users = torch.tensor([1, 2, 3, 4, UNKNOWN_USER])
    assert emb(x, users).shape == (5, 500)
    mean_vec = emb.user_embedding.weight[1:].mean(0)
    torch.testing.assert_close(emb.user_vectors(torch.tensor([UNKNOWN_USER]))[0], mean_vec)
    assert emb(x).shape == (5, 500)  # no user ids at all: everyone is unknown
    # A row appended later (personalisation) must not move what cold-start users get.
    grown = build_model(
        ModelConfig(
            model="lstm_embeddings",
            n_inputs=3,
            hidden_size=16,
            num_layers=1,
            n_users=5,
            embedding_dim=8,
            trained_users=4,
        )
    )
    state = emb.state_dict()
    state["user_embedding.weight"] = torch.cat([state["user_embedding.weight"], torch.full((1, 8), 9.0)])
    grown.load_state_dict(state)
    torch.testing.assert_close(grown.user_vectors(torch.tensor([UNKNOWN_USER]))[0], mean_vec)
    with pytest.raises(HRLSTMError, match="unknown model"):
        build_model(ModelConfig(model="gru"))


def test_checkpoint_round_trip_with_weights_only(tmp_path):
    cfg = ModelConfig(model="lstm_embeddings", n_inputs=3, hidden_size=8, num_layers=1, n_users=2)
    model = build_model(cfg)
    path = save_checkpoint(
        tmp_path / "m.pt",
        model.state_dict(),
        config={"model": cfg.__dict__},
        normalizer={"mean": [0.0], "std": [1.0]},
        user_ids=["a", "b"],
        metrics={"test_mae": np.float64(7.5)},
    )
    raw = torch.load(path, weights_only=True)  # plain types only: the safe loader accepts it
    assert raw["metrics"]["test_mae"] == 7.5 and raw["user_ids"] == ["a", "b"]
    restored = restore_model(load_checkpoint(path))
    x = torch.randn(2, 500, 3)
    torch.testing.assert_close(restored(x, torch.tensor([1, 0])), model.eval()(x, torch.tensor([1, 0])))


class _Pickled:
    pass


def test_checkpoints_that_are_not_ours(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    (tmp_path / "corrupt.pt").write_bytes(b"PK\x03\x04 not really a zip")
    torch.save({"format": "x", "obj": _Pickled()}, tmp_path / "pickled.pt")  # needs a full unpickler
    for name, message in [
        ("other.pt", "not an hr_lstm checkpoint"),
        ("corrupt.pt", "not a readable PyTorch checkpoint"),
        ("pickled.pt", "not a readable PyTorch checkpoint"),
        ("missing.pt", "no such checkpoint"),
    ]:
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(tmp_path / name)
        assert name in str(err.value) and message in str(err.value) and "\n" not in str(err.value)
