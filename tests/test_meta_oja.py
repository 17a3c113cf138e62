"""Known answer (Confavreux et al. 2020): meta-learning the polynomial rule for PCA rediscovers Oja's rule."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "meta_learn_oja.py"
SMALL = ["--optimizers", "gradient", "--meta-steps", "150", "--num-tasks", "8", "--inner-steps", "100",
         "--inner-learning-rate", "0.1", "--eval-tasks", "64"]
# A random 27-dimensional θ has cosine ~ N(0, 1/27) with Oja's vector (sd 0.19), and the random start here has
# cosine ≈ 0. Above 0.8 (≈ 4 sd) the two Oja terms hold 64% or more of θ's squared norm. The small
# configuration reaches 0.88-0.92 over seeds 0-3; the full one reaches 0.99 (docs/meta_learning.md).
MIN_COSINE = 0.8


def load_script():
    spec = importlib.util.spec_from_file_location("meta_learn_oja", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_meta_gradient_rediscovers_ojas_rule(tmp_path):
    assert load_script().main(["--out", str(tmp_path), *SMALL]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    learned = summary["gradient"]
    assert summary["initial"]["cosine_to_oja"] < 0.3
    assert learned["cosine_to_oja"] > MIN_COSINE, learned["coefficients"]
    coefficients = learned["coefficients"]
    assert len(coefficients) == 27
    # Oja's signature: Hebbian growth x*y balanced by the decay y^2*w of equal size
    assert coefficients["x*y"] > 0.3 and coefficients["y^2*w"] < -0.3
    assert abs(coefficients["x*y"] + coefficients["y^2*w"]) < 0.35 * coefficients["x*y"]
    others = [abs(v) for k, v in coefficients.items() if k not in ("x*y", "y^2*w")]
    assert max(others) < 0.6 * coefficients["x*y"]
    # and the learned rule does the job on fresh tasks: unit-norm weights along the first principal component
    assert learned["evaluation"]["alignment_mean"] > 0.95 > summary["initial"]["evaluation"]["alignment_mean"]
    assert abs(learned["evaluation"]["weight_norm_mean"] - 1.0) < 0.1
    for name in ("meta_history.parquet", "coefficient_trajectories.parquet", "meta_learning_curves.png",
                 "learned_coefficients.png"):
        assert (tmp_path / name).is_file()


def test_bad_arguments_fail_in_one_line(tmp_path, capsys):
    script = load_script()
    assert script.main(["--out", str(tmp_path), "--optimizers", "adam"]) == 2
    assert capsys.readouterr().err.strip().endswith("valid: gradient, evolution")
    assert script.main(["--out", str(tmp_path), "--strategy", "pso"]) == 2
    assert "valid: cma_es, snes, open_es" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--out", str(tmp_path), "--meta-steps", "-3"])
    assert exit_info.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


@pytest.mark.slow
def test_full_configuration_with_both_meta_optimisers(tmp_path):
    assert load_script().main(["--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    for optimizer in ("gradient", "evolution"):
        assert summary[optimizer]["cosine_to_oja"] > 0.85, summary[optimizer]["coefficients"]
        assert summary[optimizer]["evaluation"]["alignment_mean"] > 0.97
