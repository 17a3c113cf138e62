"""One small sweep, checked end to end: divergence is contained and reported, results load as pandas and xarray."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rulelab.harness.slicing import SliceSpec
from rulelab.sweep import (
    ExecutionSpec,
    NetworkSpec,
    RuleCheckError,
    RuleSpec,
    SweepConfig,
    TrainingSpec,
    as_xarray,
    load_results,
    run_sweep,
)
from rulelab.sweep.checks import contract_checks
from rulelab.sweep.plan import plan_sweep
from rulelab.sweep.store import chunk_files

HUGE = 1e4  # SGD at this rate blows a linear network's weights past float32 within a few steps (tanh saturates
# and ReLU units die instead, so they can stay finite)

CONFIG = SweepConfig(
    name="tiny",
    rules=(RuleSpec("backprop"),),
    seeds=(0, 1, 2),
    grid={"learning_rate": (0.1, HUGE)},
    network=NetworkSpec(hidden=((16,),), activation=("linear",)),
    training=TrainingSpec(optimizer="sgd", steps=60, batch_size=32, eval_every=20),
    execution=ExecutionSpec(runs_per_chunk=2),  # a slice of 3 runs: a chunk of 2 and a chunk of 1 padded to 2
)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """The sweep run as two slices into one folder, as two independent processes would (the second completes it)."""
    out = tmp_path_factory.mktemp("sweep")
    messages = []
    first = run_sweep(CONFIG, out, progress=False, log=messages.append, slice_spec=SliceSpec(0, 2))
    assert first.trained == 3 and first.summary == {} and not (out / "summary.json").exists()
    assert any("3 runs of other slices are not finished yet" in m for m in messages)
    return run_sweep(CONFIG, out, progress=False, log=messages.append, slice_spec=SliceSpec(1, 2)), messages


def test_every_run_is_in_the_results_once(swept):
    result, _ = swept
    runs = plan_sweep(CONFIG)
    frame = result.frame
    assert sorted(frame["run_id"].unique()) == sorted(r.run_id for r in runs)
    assert len(frame) == len(runs) * 3  # three evaluation points each
    assert (frame.groupby("run_id")["step"].apply(list) == [[20, 40, 60]] * len(runs)).all()
    assert result.trained == 3 and result.reused == 0  # the second slice's share
    assert len(chunk_files(result.out_dir)) == 4  # two chunks per slice
    assert result.summary["runs"] == len(runs)
    reloaded = load_results(result.out_dir)
    assert len(reloaded) == len(frame) and set(reloaded.columns) == set(frame.columns)


def test_a_diverging_cell_is_frozen_and_reported_while_the_rest_finish(swept):
    result, messages = swept
    final = result.frame[result.frame["step"] == 60]
    huge = final[final["learning_rate"] == HUGE]
    healthy = final[final["learning_rate"] != HUGE]
    assert len(huge) == 3 and (huge["diverged_at"] >= 0).all() and (huge["diverged_at"] < 20).all()
    assert (healthy["diverged_at"] == -1).all()
    assert np.isfinite(healthy["test_accuracy"]).all() and (healthy["test_accuracy"] > 0.3).all()  # chance is 0.1
    # frozen: after it diverged (before step 20) a run's evaluations never change again
    frozen = result.frame[result.frame["learning_rate"] == HUGE].groupby("run_id")["test_accuracy"].nunique()
    assert (frozen == 1).all()
    reported = {(d["run_id"], d["diverged_at"]) for d in result.summary["diverged_runs"]}
    assert reported == set(zip(huge["run_id"], huge["diverged_at"]))
    assert any("3 of 6 runs diverged" in m for m in messages)
    saved = json.loads((result.out_dir / "summary.json").read_text())
    assert len(saved["diverged_runs"]) == 3
    huge_setting = [s for s in saved["settings"] if s.get("learning_rate") == HUGE][0]
    assert huge_setting["diverged"] == 3 and "final_test_accuracy_mean" not in huge_setting


def test_xarray_view_has_runs_by_steps_with_labels(swept):
    result, _ = swept
    dataset = as_xarray(result.frame)
    assert dict(dataset.sizes) == {"run_id": 6, "step": 3}
    by_rate = dataset["test_accuracy"].groupby("learning_rate").mean()
    assert list(by_rate["learning_rate"].values) == [0.1, HUGE]
    assert set(np.unique(dataset["seed"].values)) == {0, 1, 2}
    first = result.frame.iloc[0]
    np.testing.assert_allclose(dataset["test_accuracy"].sel(run_id=first["run_id"], step=first["step"]),
                               first["test_accuracy"])


def test_standard_figures_are_written(swept):
    result, _ = swept
    for name in ("learning_curves.png", "hyperparameter_sensitivity.png", "summary.json", "sweep.json"):
        assert (result.out_dir / name).stat().st_size > 0


def test_rerun_trains_nothing_and_returns_the_same_frame(swept):
    result, _ = swept
    again = run_sweep(CONFIG, result.out_dir, progress=False)  # the whole table now, no slice
    assert again.trained == 0 and again.reused == 6
    assert again.frame.sort_values(["run_id", "step"]).reset_index(drop=True).equals(
        result.frame.sort_values(["run_id", "step"]).reset_index(drop=True))


def transposed_backprop(net):
    """A broken rule: right values, wrong shapes (the output-layer kernel update is transposed)."""
    import rulelab

    inner = rulelab.make_rule("backprop", net)

    def update(params, state, batch, *, key):
        updates, state, metrics = inner.update(params, state, batch, key=key)
        last = dict(updates[-1], kernel=updates[-1]["kernel"].T)
        return (*updates[:-1], last), state, metrics

    return rulelab.LearningRule(inner.init, update)


def test_a_rule_that_breaks_the_contract_is_reported_before_training(tmp_path, monkeypatch):
    import jax

    import rulelab
    from rulelab import registry

    net = rulelab.mlp((64, 16, 10))
    batch = rulelab.Batch(jax.numpy.zeros((4, 64)), jax.numpy.zeros((4,), jax.numpy.int32))
    # registered for this test only (monkeypatch removes it), so no other test ever sees a broken rule
    monkeypatch.setitem(registry._BUILTIN, "tests_transposed_backprop", transposed_backprop)
    results = contract_checks("tests_transposed_backprop", net, jax.eval_shape(net.init, jax.random.key(0)), batch,
                              compute=False)
    assert [r.passed for r in results] == [True, True, False]
    assert "[1]['kernel'] is float32[10, 16], expected float32[16, 10]" in results[-1].detail
    config = SweepConfig(rules=(RuleSpec("tests_transposed_backprop"),), seeds=(0,),
                         network=NetworkSpec(hidden=((16,),)), training=TrainingSpec(steps=20, eval_every=10))
    with pytest.raises(RuleCheckError, match="updates have the structure, shapes and dtypes of params") as error:
        run_sweep(config, tmp_path / "out", progress=False)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "out").exists()


def test_dry_run_checks_and_counts_without_training(tmp_path, capsys):
    from rulelab.cli import main

    path = tmp_path / "sweep.toml"
    path.write_text('rules = ["backprop", "feedback_alignment"]\nseeds = 3\n[network]\nhidden = [[8], [16]]\n'
                    '[grid]\nlearning_rate = [0.001, 0.01]\n')
    assert main(["sweep", str(path), "--out", str(tmp_path / "out"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "24 runs in 4 compiled groups; config and rules check out" in out
    assert "feedback_alignment [16] tanh: 6 runs" in out
    assert not (tmp_path / "out").exists()
