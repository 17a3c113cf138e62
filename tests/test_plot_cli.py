"""``rulelab plot DIR`` draws the figures that fit what the folder holds, and says so in one line when nothing does."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rulelab.cli import main
from rulelab.harness.results import write_parquet
from rulelab.sweep.plan import Group, Run
from rulelab.sweep.store import chunk_frame, write_chunk

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
rng = np.random.default_rng(0)


def learning_frame(rules=("backprop", "feedback_alignment"), seeds=2, steps=(10, 20, 30)) -> pd.DataFrame:
    rows = [{"rule": rule, "seed": seed, "step": step, "learning_rate": 1e-3, "hparam_index": 0,
             "test_accuracy": rng.uniform(), "alignment_angle_0": rng.uniform(0, 90), "alignment_angle_1": 0.0,
             "diverged_at": -1}
            for rule in rules for seed in range(seeds) for step in steps]
    return pd.DataFrame(rows)


def continual_frame(tasks=3) -> pd.DataFrame:
    rows = [{"rule": rule, "seed": seed, "hparam_index": 0, "trained_task": i, "eval_task": j,
             "accuracy": rng.uniform()}
            for rule in ("fine_tuning", "sleep_replay") for seed in range(2) for i in range(tasks) for j in range(tasks)]
    return pd.DataFrame(rows)


def regret_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    regret = pd.DataFrame([{"policy": policy, "kind": kind, "seed": seed, "trial": t, "cumulative_regret": 0.1 * t}
                           for policy, kind in (("meta_a2c", "learner"), ("thompson", "reference"))
                           for seed in range(2) for t in range(5)])
    training = pd.DataFrame([{"learner": "meta_a2c", "episodes": e, "episode_regret": 1.0 / (e + 1)} for e in range(4)])
    return regret, training


def sweep_folder(folder):
    group = Group("backprop", (), (16,), "tanh")
    runs = [Run(f"run{i}", group, (("learning_rate", lr),), seed) for i, (lr, seed) in
            enumerate([(1e-3, 0), (1e-3, 1), (1e-2, 0), (1e-2, 1)])]
    metrics = {"step": np.tile([10, 20], (4, 1)), "test_accuracy": rng.uniform(size=(4, 2)),
               "train_loss": rng.uniform(size=(4, 2)), "test_loss": rng.uniform(size=(4, 2)),
               "alignment_angle": np.zeros((4, 2, 2)), "diverged_at": -np.ones((4, 2), np.int32)}
    write_chunk(folder, "abc", chunk_frame(runs, metrics, "digits", "adam"))


def pngs(folder):
    return sorted(p.name for p in folder.glob("*.png"))


def assert_png(path):
    assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 1000


@pytest.mark.parametrize("kind, expected", [
    ("compare", ["learning_curves.png"]),
    ("continual", ["accuracy_matrices.png", "accuracy_over_tasks.png"]),
    ("meta_rl", ["cumulative_regret.png", "training.png"]),
    ("sweep", ["hyperparameter_sensitivity.png", "learning_curves.png"]),
])
def test_plot_dispatches_on_what_the_folder_holds(tmp_path, capsys, kind, expected):
    if kind == "compare":
        write_parquet(learning_frame(), tmp_path / "results.parquet")
    elif kind == "continual":
        write_parquet(continual_frame(), tmp_path / "results.parquet")
    elif kind == "meta_rl":
        regret, training = regret_frames()
        write_parquet(regret, tmp_path / "results.parquet")
        write_parquet(training, tmp_path / "training.parquet")
    else:
        sweep_folder(tmp_path)
    assert main(["plot", str(tmp_path)]) == 0
    assert pngs(tmp_path) == expected
    for name in expected:
        assert_png(tmp_path / name)
    assert sorted(capsys.readouterr().out.split()) == sorted(str(tmp_path / name) for name in expected)


def test_plot_redraws_over_existing_figures(tmp_path):
    write_parquet(learning_frame(), tmp_path / "results.parquet")
    (tmp_path / "learning_curves.png").write_bytes(b"stale")
    assert main(["plot", str(tmp_path)]) == 0
    assert_png(tmp_path / "learning_curves.png")


@pytest.mark.parametrize("make", ["empty", "missing", "unrelated parquet"])
def test_nothing_to_plot_is_one_line(tmp_path, capsys, make):
    folder = tmp_path / "results"
    if make != "missing":
        folder.mkdir()
    if make == "unrelated parquet":
        write_parquet(pd.DataFrame({"a": [1, 2]}), folder / "results.parquet")
    assert main(["plot", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rulelab plot: error: ")
    assert ("not a folder" in err) if make == "missing" else ("looked for chunks/*.parquet (a sweep)" in err)
