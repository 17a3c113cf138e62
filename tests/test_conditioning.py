"""Pavlovian conditioning: the TD error moves from the reward to the CS; omission gives a negative error."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rulelab.cli import main
from rulelab.harness.conditioning import ConditioningConfig, conditioning_summary, run_conditioning


@pytest.fixture(scope="module")
def trained():
    config = ConditioningConfig(acquisition_trials=150, extinction_trials=100)
    return config, run_conditioning(config, seed=0)


def test_prediction_error_transfers_from_reward_to_cs(trained):
    config, result = trained
    summary = conditioning_summary(result, config)
    first = result.td_errors[0]
    assert first[result.reward_index] == pytest.approx(1.0) and first[result.cs_index] == pytest.approx(0.0)
    assert summary["delta_at_cs_final"] == pytest.approx(config.reward_size, abs=0.05)
    assert summary["delta_at_reward_final"] == pytest.approx(0.0, abs=0.05)
    assert summary["delta_at_omission"] < -0.9 * config.reward_size


def test_extinction_removes_the_cs_response(trained):
    config, result = trained
    assert abs(result.td_errors[-1, result.cs_index]) < 0.1
    assert np.all(result.td_errors[-1] < 0.01)  # no positive surprise is left anywhere


def test_discounting_scales_the_cs_response_by_gamma_to_the_delay():
    config = ConditioningConfig(acquisition_trials=400, extinction_trials=1, discount=0.95)
    summary = conditioning_summary(run_conditioning(config), config)
    assert summary["delta_at_cs_final"] == pytest.approx(0.95 ** config.reward_delay, abs=0.03)


def test_cli_writes_summary_and_rejects_bad_input(tmp_path, capsys):
    assert main(["conditioning", "--acquisition-trials", "60", "--extinction-trials", "5", "--learning-rate", "0.5",
                 "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary) == {"delta_at_cs_final", "delta_at_reward_final", "delta_at_omission"}
    assert (tmp_path / "td_errors.png").exists() and (tmp_path / "td_errors.parquet").exists()
    figure = tmp_path / "td_errors.png"
    figure.unlink()
    assert main(["plot", str(tmp_path)]) == 0  # redrawn from the Parquet rows alone
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["conditioning", "--trace-decay", "1.5"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "[0, 1]" in error[0]
