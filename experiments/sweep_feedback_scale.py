#!/usr/bin/env python
"""Feedback alignment's accuracy and alignment angle against the scale of its fixed random feedback.

The sweep is built in Python (the same frozen dataclasses a TOML config is read into) and its command line comes
from tyro; every feedback scale × learning rate × seed of a width is one vmapped program. Rerunning into the same
``--out`` reuses finished runs, so the grid can be grown (more scales, more seeds) without recomputing.

    python experiments/sweep_feedback_scale.py --out runs/feedback_scale
    python experiments/sweep_feedback_scale.py --scales 0.1 0.3 1 3 10 --seeds 8 --steps 3000
"""

from __future__ import annotations

import dataclasses
import sys

import tyro

from rulelab.harness.sharding import use_host_device_per_core
from rulelab.sweep import (
    NetworkSpec,
    RuleCheckError,
    RuleSpec,
    SweepConfig,
    SweepConfigError,
    TrainingSpec,
    run_sweep,
)
from rulelab.sweep.summary import final_rows, format_summary


@dataclasses.dataclass(frozen=True)
class Args:
    out: str = "runs/feedback_scale"
    dataset: str = "digits"
    scales: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0)
    learning_rates: tuple[float, ...] = (1e-3, 3e-3)
    hidden: tuple[int, ...] = (128, 128)
    seeds: int = 4
    steps: int = 1500
    progress: bool = True


def sweep_config(args: Args) -> SweepConfig:
    return SweepConfig(
        name="feedback_scale",
        dataset=args.dataset,
        rules=(RuleSpec("backprop"), RuleSpec("feedback_alignment", grid={"feedback_scale": args.scales})),
        seeds=range(args.seeds),
        grid={"learning_rate": args.learning_rates},
        network=NetworkSpec(hidden=(args.hidden,)),
        training=TrainingSpec(optimizer="adam", steps=args.steps, eval_every=args.steps // 10),
    )


def main(argv: list[str] | None = None) -> int:
    args = tyro.cli(Args, args=argv)
    try:
        result = run_sweep(sweep_config(args), args.out, progress=args.progress,
                           log=lambda message: print(message, file=sys.stderr))
    except (SweepConfigError, RuleCheckError) as error:
        print(f"sweep_feedback_scale.py: error: {error}", file=sys.stderr)
        return 2
    print(format_summary(result.summary))
    final = final_rows(result.frame)
    fa = final[final["rule"] == "feedback_alignment"]
    means = fa.groupby(["feedback_scale", "learning_rate"])[["test_accuracy", "alignment_angle_0"]].mean()
    best = means.loc[means.groupby(level="feedback_scale")["test_accuracy"].idxmax()]
    print("feedback alignment at each scale's best learning rate (mean over seeds; angle of the first hidden layer):")
    print(best.round(3).to_string())
    return 0


if __name__ == "__main__":
    use_host_device_per_core()  # one host device per CPU core, before JAX starts
    sys.exit(main())
