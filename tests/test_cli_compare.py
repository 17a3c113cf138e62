"""`rulelab compare` end to end, and its one-line errors on bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from rulelab.cli import main


def test_compare_end_to_end_as_a_user_runs_it(tmp_path):
    out = tmp_path / "out"
    completed = subprocess.run(
        [sys.executable, "-m", "rulelab.cli", "compare", "--rules", "backprop,feedback_alignment", "--seeds", "2",
         "--steps", "200", "--eval-every", "100", "--hidden", "32", "--out", str(out), "--no-progress"],
        capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    assert "feedback_alignment" in completed.stdout and "±" in completed.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset"] == "digits"
    for rule in ("backprop", "feedback_alignment"):
        row = summary["rules"][rule]
        assert row["seeds"] == 2 and 0.5 < row["test_accuracy_mean"] <= 1.0 and "wall_s" in row
    frame = pd.read_parquet(out / "results.parquet")
    assert len(frame) == 2 * 2 * 2  # rules × seeds × evaluation points
    assert {"rule", "seed", "step", "train_loss", "test_accuracy", "alignment_angle_0"} <= set(frame.columns)
    assert (out / "learning_curves.png").stat().st_size > 1000


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["compare", "--rules", "backprop,nope"], "valid: backprop"),
        (["compare", "--dataset", "cifar"], "valid: digits, mnist1d, mnist, fashion_mnist"),
        (["compare", "--hidden", "128,x"], "positive integers"),
        (["compare", "--seeds", "0"], "positive integer"),
        (["compare", "--steps", "-5"], "positive integer"),
        (["compare", "--optimizer", "lbfgs"], "valid: sgd, momentum, adam"),
        (["compare", "--steps", "150", "--eval-every", "100"], "multiple of --eval-every"),
        (["compare", "--dataset", "mnist", "--data-dir", "/nonexistent"], "train-images-idx3-ubyte"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_exits_nonzero_with_one_line(argv, expected, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        sys.exit(main(argv + (["--out", str(tmp_path)] if argv[0] == "compare" else [])))
    assert exit_info.value.code != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert expected in err
    assert not any(tmp_path.iterdir()), "nothing may be written on bad input"
