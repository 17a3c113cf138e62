"""Sweep configs: TOML into typed dataclasses, the run table and its hashes, one-line errors before any compute."""

from __future__ import annotations

import dataclasses
import textwrap

import pytest

from rulelab.sweep import ExecutionSpec, RuleSpec, SweepConfig, SweepConfigError, config_from_dict, load_config
from rulelab.sweep.config import validate
from rulelab.sweep.plan import chunk_id, make_chunks, plan_sweep

GOOD = """
name = "demo"
dataset = "digits"
seeds = 3

[network]
hidden = [[16], [8, 8]]

[training]
optimizer = "sgd"
steps = 40
eval_every = 10

[grid]
learning_rate = [0.01, 0.1]

[[rules]]
name = "backprop"

[[rules]]
name = "feedback_alignment"
grid = { feedback_scale = [0.5, 1.0] }

[[rules]]
name = "sign_symmetry"
options = { variant = "random_magnitude" }
points = [{ learning_rate = 0.05 }, { learning_rate = 0.2, feedback_scale = 2.0 }]
"""


def write(tmp_path, text, name="sweep.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_toml_becomes_typed_frozen_config(tmp_path):
    config = validate(load_config(write(tmp_path, GOOD)))
    assert config.seeds == (0, 1, 2) and config.network.hidden == ((16,), (8, 8))
    assert config.grid == {"learning_rate": (0.01, 0.1)} and config.training.optimizer == "sgd"
    assert config.rules[2].options == {"variant": "random_magnitude"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.name = "other"


def test_run_table_crosses_grids_points_widths_and_seeds(tmp_path):
    runs = plan_sweep(validate(load_config(write(tmp_path, GOOD))))
    # per width and seed: backprop 2 lr; FA 2 lr × 2 scales; sign symmetry: 2 lr (shared grid) × 2 points,
    # where a point's learning rate overrides the grid's, so only 2 distinct settings remain
    assert len(runs) == 2 * 3 * (2 + 4 + 2)
    assert len({r.run_id for r in runs}) == len(runs)
    fa = [dict(r.hparams) for r in runs if r.group.rule == "feedback_alignment"]
    assert {(h["learning_rate"], h["feedback_scale"]) for h in fa} == {(a, b) for a in (0.01, 0.1) for b in (0.5, 1.0)}
    ss = {tuple(sorted(dict(r.hparams).items())) for r in runs if r.group.rule == "sign_symmetry"}
    # the first point keeps the rule's default feedback_scale (1.0), made explicit so both settings stack
    assert ss == {(("feedback_scale", 1.0), ("learning_rate", 0.05)), (("feedback_scale", 2.0), ("learning_rate", 0.2))}
    assert len({r.group for r in runs}) == 3 * 2  # rules × widths: one compiled program each


def test_run_id_hashes_what_is_computed_not_how(tmp_path):
    config = validate(load_config(write(tmp_path, GOOD)))
    ids = [r.run_id for r in plan_sweep(config)]
    rechunked = dataclasses.replace(config, name="renamed", execution=ExecutionSpec(runs_per_chunk=3))
    assert [r.run_id for r in plan_sweep(rechunked)] == ids
    more_seeds = plan_sweep(dataclasses.replace(config, seeds=(0, 1, 2, 3)))
    assert set(ids) < {r.run_id for r in more_seeds}  # growing a sweep keeps every finished run
    longer = plan_sweep(dataclasses.replace(config, training=dataclasses.replace(config.training, steps=80)))
    assert not set(ids) & {r.run_id for r in longer}
    # a default value given explicitly is the same run as the default left out
    explicit = dataclasses.replace(config, rules=(RuleSpec("feedback_alignment", grid={"feedback_scale": (1.0,)}),))
    omitted = dataclasses.replace(config, rules=(RuleSpec("feedback_alignment"),))
    assert {r.run_id for r in plan_sweep(validate(explicit))} == {r.run_id for r in plan_sweep(validate(omitted))}


def test_chunks_never_mix_groups_and_are_named_by_their_runs(tmp_path):
    runs = plan_sweep(validate(load_config(write(tmp_path, GOOD))))
    chunks = make_chunks(runs, 5)
    for group, group_chunks in chunks.items():
        assert all(run.group == group for chunk in group_chunks for run in chunk)
        assert all(len(chunk) <= 5 for chunk in group_chunks)
    flat = [run for group_chunks in chunks.values() for chunk in group_chunks for run in chunk]
    assert sorted(r.run_id for r in flat) == sorted(r.run_id for r in runs)
    first = next(iter(chunks.values()))[0]
    assert chunk_id(first) == chunk_id(list(reversed(first))) != chunk_id(first[:-1])


def test_python_configs_are_checked_like_toml_ones():
    config = validate(SweepConfig(rules=[RuleSpec("backprop")], seeds=range(2), grid={"learning_rate": [1e-3]}))
    assert config.seeds == (0, 1) and config.grid == {"learning_rate": (0.001,)}
    with pytest.raises(SweepConfigError, match="learning_rate must hold numbers"):
        validate(SweepConfig(rules=[RuleSpec("backprop")], grid={"learning_rate": ["fast"]}))


BAD_CONFIGS = {
    "unknown rule": ('rules = ["no_such_rule"]', "unknown rule 'no_such_rule'; valid: .*backprop"),
    "unknown dataset": ('dataset = "imagenet"\nrules = ["backprop"]', "unknown dataset 'imagenet'; valid: digits"),
    "wrong type": ('rules = ["backprop"]\n[training]\nsteps = "100"', r"\[training\] steps must be an integer"),
    "empty grid": ('rules = ["backprop"]\n[grid]\nlearning_rate = []', "learning_rate is empty"),
    "empty rules": ("rules = []", "rules must be a non-empty list"),
    "unknown key": ('rules = ["backprop"]\nseed = 3', "unknown key 'seed'; valid: rules, dataset"),
    "unknown hyperparameter": (
        '[[rules]]\nname = "feedback_alignment"\ngrid = { feedback_scael = [1.0] }',
        "has no hyperparameter 'feedback_scael'; valid: learning_rate, feedback_scale",
    ),
    "string swept": ('[[rules]]\nname = "sign_symmetry"\ngrid = { variant = ["uniform"] }', "put strings .* in options"),
    "steps not a multiple": ('rules = ["backprop"]\n[training]\nsteps = 50\neval_every = 20', "multiple of eval_every"),
    "bad toml": ('rules = ["backprop"', "invalid TOML"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_configs_fail_with_one_clear_line(tmp_path, case):
    text, message = BAD_CONFIGS[case]
    with pytest.raises(SweepConfigError, match=message) as error:
        validate(load_config(write(tmp_path, text)))
    assert "\n" not in str(error.value)


def test_config_from_dict_reports_the_field():
    with pytest.raises(SweepConfigError, match=r"rules\[0\].points\[1\].learning_rate must be a number"):
        config_from_dict({"rules": [{"name": "backprop", "points": [{"learning_rate": 1.0}, {"learning_rate": "x"}]}]})


def test_cli_bad_config_is_one_line_before_any_compute(tmp_path, capsys):
    from rulelab.cli import main

    path = write(tmp_path, 'rules = ["backprop", "nope"]\n')
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rulelab sweep: error: unknown rule 'nope'; valid:")
    assert not out.exists()
