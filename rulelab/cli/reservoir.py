"""``rulelab reservoir``: train a fed-back readout on a temporal pattern, then let the reservoir generate it alone.

Every seed × gain × between-module fraction setting, plus the same settings without feedback (the no-feedback
readout baseline), runs as one vmapped program.
"""

from __future__ import annotations

import argparse

from rulelab.cli.arguments import CommandLineError, check_choices, positive_float, positive_int


def float_list(text: str) -> tuple[float, ...]:
    """``"1.2,1.5"`` -> ``(1.2, 1.5)``; every entry a finite number."""
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers like 1.2,1.5, got {text!r}") from None
    if not values or any(v != v or abs(v) == float("inf") for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated finite numbers like 1.2,1.5, got {text!r}")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rulelab.harness.reservoir import RESERVOIR_RULES
    from rulelab.tasks.temporal_patterns import TASKS

    parser.add_argument("--target", default="sine", help=f"one of {', '.join(TASKS)} (default: sine)")
    parser.add_argument("--period", type=positive_float, default=None,
                        help="seconds per cycle; for lorenz, seconds per Lorenz time unit (default: 4, lorenz 5)")
    parser.add_argument("--seeds", type=positive_int, default=4)
    parser.add_argument("--out", default="runs/reservoir", help="output folder (default: runs/reservoir)")
    parser.add_argument("--rule", default="force", help=f"one of {', '.join(RESERVOIR_RULES)} (default: force)")
    parser.add_argument("--size", type=positive_int, default=500, help="reservoir units N (default: 500)")
    parser.add_argument("--gains", type=float_list, default=(1.5,), help="recurrent gains g, e.g. 1.2,1.5")
    parser.add_argument("--modules", type=positive_int, default=4, help="number of modules M (default: 4)")
    parser.add_argument("--between", type=float_list, default=None,
                        help="fractions of connections between modules, e.g. 0.05,0.75 (default: 1-1/M, uniform)")
    parser.add_argument("--tau", type=positive_float, default=0.1, help="unit time constant in s (default: 0.1)")
    parser.add_argument("--dt", type=positive_float, default=0.01, help="Euler step in s (default: 0.01)")
    parser.add_argument("--train-periods", type=positive_float, default=None,
                        help="training length in periods (default: 10, lorenz 40)")
    parser.add_argument("--test-periods", type=positive_float, default=None,
                        help="free-running length in periods (default: 5, lorenz 20)")
    parser.add_argument("--lr", type=positive_float, default=None, help="optimizer learning rate (default: per rule)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the no-feedback readout baseline")
    parser.add_argument("--base-seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    from rulelab.harness.reservoir import RESERVOIR_RULES, ReservoirConfig, product_grid, reservoir_experiment
    from rulelab.tasks.temporal_patterns import TASKS

    check_choices("target", [args.target], TASKS)
    check_choices("rule", [args.rule], RESERVOIR_RULES)
    lorenz = args.target == "lorenz"
    period = args.period or float(TASKS[args.target].default_params().period)
    between = args.between if args.between is not None else (1.0 - 1.0 / args.modules,)
    if any(not 0.0 <= f <= 1.0 for f in between):
        raise CommandLineError(f"--between fractions must lie in [0, 1], got {','.join(map(str, between))}")
    if args.modules > args.size:
        raise CommandLineError(f"--modules ({args.modules}) cannot exceed --size ({args.size})")
    if args.dt > args.tau:
        raise CommandLineError(f"--dt ({args.dt}) must not exceed --tau ({args.tau})")
    train_periods = args.train_periods or (40.0 if lorenz else 10.0)
    test_periods = args.test_periods or (20.0 if lorenz else 5.0)
    try:
        config = ReservoirConfig(rule=args.rule, target=args.target, size=args.size, num_modules=args.modules,
                                 tau=args.tau, dt=args.dt, train_time=train_periods * period,
                                 test_time=test_periods * period)
    except ValueError as error:
        raise CommandLineError(str(error)) from None
    feedback = (1.0,) if args.no_baseline else (1.0, 0.0)
    hparams = product_grid(feedback_scale=feedback, gain=args.gains, between_module_fraction=between,
                           period=(period,))
    if args.lr is not None:
        hparams["learning_rate"] = [args.lr]
    _, summary = reservoir_experiment(config, hparams, num_seeds=args.seeds, base_seed=args.base_seed,
                                      out_dir=args.out)
    print(f"{args.rule} on {args.target} (period {period:g} s), N={args.size}, {args.modules} modules, "
          f"{args.seeds} seeds")
    print(format_summary(summary))
    print(f"results: {args.out}/summary.json, {args.out}/results.parquet, {args.out}/traces.parquet, "
          f"{args.out}/generation.png" + (f", {args.out}/tent_map.png" if lorenz else ""))
    return 0


def format_summary(summary: dict) -> str:
    """One line per setting with the median metrics over seeds."""
    metrics = ["train_error", "free_running_error", "free_running_spectral_error"]
    if summary["target"] == "lorenz":
        metrics += ["tent_map_distance", "tent_map_floor"]
    header = f"{'gain':>5s} {'between':>8s} {'feedback':>9s} " + " ".join(metrics)
    lines = [header + "   (medians over seeds)"]
    for setting in summary["settings"]:
        values = " ".join(
            f"{setting[m + '_median']:{len(m)}.4f}" if setting[m + "_median"] is not None else f"{'diverged':>{len(m)}s}"
            for m in metrics
        )
        feedback = "on" if setting["feedback_scale"] else "off"
        lines.append(f"{setting['gain']:5.2f} {setting['between_module_fraction']:8.2f} {feedback:>9s} {values}")
    return "\n".join(lines)
