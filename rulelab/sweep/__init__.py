"""Sweeps: a typed config in, a results folder of tidy Parquet chunks out, resumable after any interruption.

    from rulelab.sweep import load_config, run_sweep, load_results, as_xarray
    result = run_sweep(load_config("experiments/configs/fa_vs_backprop.toml"), "runs/fa_vs_backprop")
    frame = load_results("runs/fa_vs_backprop")          # one pandas DataFrame, one row per run × evaluation
    ds = as_xarray(frame)                                # dims (run_id, step), per-run labels as coordinates

The same from the shell: ``rulelab sweep CONFIG --out DIR``. See docs/workbench.md.
"""

from rulelab.sweep.checks import CheckResult, RuleCheckError, check_rule
from rulelab.sweep.config import (
    ExecutionSpec,
    NetworkSpec,
    RuleSpec,
    SweepConfig,
    SweepConfigError,
    TrainingSpec,
    config_from_dict,
    load_config,
    validate,
)
from rulelab.sweep.plan import Run, plan_sweep
from rulelab.sweep.runner import SweepResult, run_sweep
from rulelab.sweep.store import as_xarray, load_results

__all__ = [
    "CheckResult", "ExecutionSpec", "NetworkSpec", "RuleCheckError", "RuleSpec", "Run", "SweepConfig",
    "SweepConfigError", "SweepResult", "TrainingSpec", "as_xarray", "check_rule", "config_from_dict",
    "load_config", "load_results", "plan_sweep", "run_sweep", "validate",
]
