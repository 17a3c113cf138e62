"""``rulelab continual`` end to end on a tiny configuration, and its one-line errors for bad input."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from rulelab.cli import main

SUMMARY_RULE_KEYS = {"average_accuracy_mean", "average_accuracy_std", "forgetting_mean", "backward_transfer_mean",
                     "seeds"}


def test_end_to_end_writes_table_parquet_plots_and_summary(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["continual", "--suite", "split-digits", "--scenario", "task", "--rules",
                 "sleep_replay:experience_replay", "--seeds", "2", "--steps-per-task", "20", "--hidden", "16",
                 "--set", "sleep_steps=20", "--set", "buffer_size=50", "--set", "sleep_scale=3.0",
                 "--no-progress", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "sleep_replay:experience_replay" in printed and "average accuracy" in printed

    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {"suite", "scenario", "rules"}
    assert (summary["suite"], summary["scenario"]) == ("split-digits", "task")
    row = summary["rules"]["sleep_replay:experience_replay"]
    assert set(row) == SUMMARY_RULE_KEYS and row["seeds"] == 2
    assert 0.5 <= row["average_accuracy_mean"] <= 1.0  # task-incremental 2-way heads: well above chance

    accuracy = pd.read_parquet(out / "results.parquet")
    assert len(accuracy) == 2 * 5 * 5  # seeds × trained task × evaluated task
    assert set(accuracy["sleep_scale"]) == {3.0}
    runs = pd.read_parquet(out / "runs.parquet")
    assert len(runs) == 2 and {"forgetting", "backward_transfer", "forward_transfer"} <= set(runs.columns)
    for png in ("accuracy_matrices.png", "accuracy_over_tasks.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("arguments, expected", [
    (["--suite", "split-cifar"], "valid: split-digits"),
    (["--scenario", "online"], "valid: task, domain, class"),
    (["--rules", "fine_tuning,no_such_rule"], "valid: fine_tuning, joint"),
    (["--rules", "backprop:ewc"], "does not wrap"),
    (["--inner", "no_such_rule"], "valid:"),
    (["--rules", "ewc", "--set", "buffer_size=10"], "valid: ewc_strength"),
    (["--rules", "experience_replay", "--set", "buffer_size=many"], "expected an integer"),
    (["--rules", "experience_replay", "--set", "buffer_size=0"], "buffer_size must be positive"),
    (["--num-tasks", "3"], "2 or 5 tasks"),
    (["--suite", "split-mnist", "--data-dir", "/nonexistent/rulelab"], "files not found"),
    (["--seeds", "0"], "positive integer"),
    (["--set", "sleep_steps"], "NAME=VALUE"),
])
def test_bad_input_is_one_line_naming_the_choices(arguments, expected, capsys):
    try:
        code = main(["continual", "--steps-per-task", "1", "--seeds", "1", "--out", "/nonexistent/never"] + arguments)
    except SystemExit as exit_:  # argparse-level errors
        code = exit_.code
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "Traceback" not in error
    assert expected in error
