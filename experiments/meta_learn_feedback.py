#!/usr/bin/env python
"""Meta-learn feedback alignment's feedback scale (and/or the learning rate) through a whole training run on digits.

The meta-objective is the *final validation cross-entropy* of a network trained by the harness
(``rulelab.meta.objectives.make_heldout_objective``): the validation split is held out of the training data, and
the test split is only reported. Accuracy is reported but never optimised: it is a step function of the weights,
so its gradient is zero almost everywhere and carries no signal. Meta-parameters are learned as logarithms.

Outputs: the meta-gradient checked against central finite differences, the meta-loss landscape over the first
meta-parameter with the meta-gradient drawn as tangents, and meta-training by Adam on ``jax.grad`` through the
unrolled harness and by an evolution strategy over a vmapped population of harness runs.

    python experiments/meta_learn_feedback.py --out results/meta_learn_feedback
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd

from rulelab.cli.arguments import (
    CommandLineError,
    OneLineParser,
    check_choices,
    int_list,
    name_list,
    positive_float,
    positive_int,
)
from rulelab.harness.results import write_json, write_parquet
from rulelab.harness.train import TrainConfig
from rulelab.meta import EVOLUTION_STRATEGIES, finite_difference_gradient, meta_train_evolution, meta_train_gradient
from rulelab.meta.objectives import in_log_space, make_heldout_objective
from rulelab.meta.plots import plot_landscape_with_tangents, plot_meta_history
from rulelab.registry import list_rules, rule_hyperparameters
from rulelab.tasks import DATASETS, load_dataset
from rulelab.tasks.supervised import DatasetNotFoundError

OPTIMIZERS = ("gradient", "evolution")
ACCURACY_NOTE = ("the meta-objective is the final validation cross-entropy; accuracy is piecewise constant in the "
                 "weights (its gradient is zero almost everywhere), so it is reported, never differentiated")


def float_list(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        values = ()
    if not values or any(not v > 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated positive numbers like 0.1,0.01, got {text!r}")
    return values


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(prog="meta_learn_feedback.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dataset", default="digits", help=f"one of {', '.join(DATASETS)}")
    parser.add_argument("--data-dir", default=None, help="folder with MNIST / Fashion-MNIST files")
    parser.add_argument("--rule", default="feedback_alignment")
    parser.add_argument("--meta-parameters", type=name_list, default=("feedback_scale",),
                        help="learning_rate and/or numeric rule hyperparameters, e.g. feedback_scale,learning_rate")
    parser.add_argument("--learning-rate", type=positive_float, default=0.05, help="SGD learning rate (start value)")
    parser.add_argument("--feedback-scale", type=positive_float, default=1.0, help="start value of feedback_scale")
    parser.add_argument("--hidden", type=int_list, default=(64,))
    parser.add_argument("--inner-steps", type=positive_int, default=400)
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument("--eval-every", type=positive_int, default=20, help="unroll period (steps)")
    parser.add_argument("--checkpoint-every", type=positive_int, default=None, help="in periods of --eval-every")
    parser.add_argument("--truncation", type=positive_int, default=None, help="in periods of --eval-every")
    parser.add_argument("--optimizers", type=name_list, default=OPTIMIZERS, help="gradient,evolution")
    parser.add_argument("--meta-steps", type=positive_int, default=40)
    parser.add_argument("--meta-learning-rate", type=positive_float, default=0.2, help="Adam on log-parameters")
    parser.add_argument("--strategy", default="cma_es", help=f"one of {', '.join(EVOLUTION_STRATEGIES)}")
    parser.add_argument("--generations", type=positive_int, default=15)
    parser.add_argument("--population", type=positive_int, default=8)
    parser.add_argument("--es-std", type=positive_float, default=0.3, help="initial search std (log space)")
    parser.add_argument("--fd-steps", type=float_list, default=(0.1, 0.01, 0.001), help="finite-difference steps")
    parser.add_argument("--landscape-points", type=positive_int, default=16)
    parser.add_argument("--landscape-range", type=float_list, default=(0.1, 1000.0),
                        help="lowest,highest multiple of the start value of the first meta-parameter")
    parser.add_argument("--eval-seeds", type=positive_int, default=8)
    args = parser.parse_args(argv)
    check_choices("dataset", [args.dataset], DATASETS)
    check_choices("rule", [args.rule], list_rules())
    numeric = [k for k, v in rule_hyperparameters(args.rule).items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)]
    check_choices("meta-parameter", args.meta_parameters, ["learning_rate", *numeric])
    check_choices("optimizer", args.optimizers, OPTIMIZERS)
    check_choices("evolution strategy", [args.strategy], EVOLUTION_STRATEGIES)
    if args.inner_steps % args.eval_every:
        raise CommandLineError(
            f"--inner-steps ({args.inner_steps}) must be a multiple of --eval-every ({args.eval_every})")
    if len(args.landscape_range) != 2 or args.landscape_range[0] >= args.landscape_range[1]:
        raise CommandLineError(
            f"--landscape-range must be two increasing numbers like 0.1,1000, got {args.landscape_range}")
    if args.population < 4 or args.population % 2:
        raise CommandLineError(f"--population must be an even number of at least 4, got {args.population}")
    return args


def start_values(args: argparse.Namespace) -> dict[str, float]:
    """Every numeric hyperparameter at its start value: the rule's defaults, overridden from the command line."""
    values = {k: float(v) for k, v in rule_hyperparameters(args.rule).items()
              if isinstance(v, (int, float)) and not isinstance(v, bool)}
    values["learning_rate"] = args.learning_rate
    if "feedback_scale" in values:
        values["feedback_scale"] = args.feedback_scale
    return values


def as_floats(tree) -> dict[str, float]:
    return {k: float(v) for k, v in tree.items()}


def evaluate(value_and_grad, log_params, keys) -> dict[str, float]:
    """Mean and std over seeds of the held-out metrics of runs with ``exp(log_params)``."""
    runs = [as_floats(value_and_grad(log_params, key)[0][1]) for key in keys]
    frame = pd.DataFrame(runs)
    means = {f"{c}_mean": float(frame[c].mean()) for c in frame}
    return {**means, **{f"{c}_std": float(frame[c].std()) for c in frame}}


def gradient_check(value_and_grad, log_params, key, steps) -> pd.DataFrame:
    """Meta-gradient against central differences of the same compiled objective, one row per (parameter, step)."""
    (_, _), gradient = value_and_grad(log_params, key)
    rows = []
    for step in steps:
        estimate = finite_difference_gradient(lambda p: value_and_grad(p, key)[0][0], log_params, step=step)
        for name in log_params:
            exact, approx = float(gradient[name]), float(estimate[name])
            rows.append({"meta_parameter": f"log_{name}", "step": step, "meta_gradient": exact,
                         "finite_difference": approx, "relative_error": abs(exact - approx) / max(abs(approx), 1e-12)})
    return pd.DataFrame(rows)


def landscape(value_and_grad, log_params, name, key, multiples, num_points) -> pd.DataFrame:
    """The meta-loss and its gradient along ``name`` (``multiples`` of its start value), other parameters fixed."""
    rows = []
    for log_value in float(log_params[name]) + np.linspace(*np.log(multiples), num_points):
        params = {**log_params, name: jnp.asarray(log_value, jnp.float32)}
        (loss, metrics), gradient = value_and_grad(params, key)
        rows.append({name: float(np.exp(log_value)), "meta_loss": float(loss),
                     "meta_gradient": float(gradient[name]), **as_floats(metrics)})
    return pd.DataFrame(rows)


def history_frame(optimizer: str, history: dict) -> pd.DataFrame:
    """One row per meta-step: the loss, the meta-parameter values and, for gradients, the norm and step taken."""
    values = {name: np.exp(np.asarray(v)) for name, v in history["meta_params"].items()}
    extras = {k: np.asarray(history[k], np.float64) for k in ("gradient_norm", "finite") if k in history}
    steps = np.arange(len(history["meta_loss"]))
    return pd.DataFrame({"optimizer": optimizer, "step": steps, "meta_loss": np.asarray(history["meta_loss"]),
                         **values, **extras})


def run(args: argparse.Namespace) -> dict:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        dataset = load_dataset(args.dataset, args.data_dir)
    except DatasetNotFoundError as error:
        raise CommandLineError(str(error)) from None
    config = TrainConfig(rule=args.rule, hidden=args.hidden, activation="tanh", optimizer="sgd",
                         steps=args.inner_steps, batch_size=args.batch_size, eval_every=args.eval_every)
    _, objective = make_heldout_objective(config, dataset, split_seed=args.seed, truncation=args.truncation,
                                          checkpoint_every=args.checkpoint_every)
    start = start_values(args)
    fixed = {k: v for k, v in start.items() if k not in args.meta_parameters}
    meta_loss = in_log_space(objective, fixed)
    initial = {name: jnp.log(jnp.asarray(start[name], jnp.float32)) for name in args.meta_parameters}
    value_and_grad = jax.jit(jax.value_and_grad(meta_loss, has_aux=True))
    root = jax.random.key(args.seed)
    check_key, landscape_key, gradient_key, evolution_key = jax.random.split(root, 4)
    eval_keys = list(jax.random.split(jax.random.fold_in(root, 1), args.eval_seeds))

    checks = gradient_check(value_and_grad, initial, check_key, args.fd_steps)
    write_parquet(checks, out / "gradient_check.parquet")
    first = args.meta_parameters[0]
    scan = landscape(value_and_grad, initial, first, landscape_key, args.landscape_range, args.landscape_points)
    write_parquet(scan, out / "landscape.parquet")

    learned, frames, seconds = {}, [], {}
    for optimizer in args.optimizers:
        began = time.perf_counter()
        if optimizer == "gradient":
            final, history = meta_train_gradient(meta_loss, initial, gradient_key, num_steps=args.meta_steps,
                                                 optimizer=optax.adam(args.meta_learning_rate), has_aux=True)
        else:
            final, history = meta_train_evolution(lambda p, k: meta_loss(p, k)[0], initial, evolution_key,
                                                  num_generations=args.generations, population_size=args.population,
                                                  strategy=args.strategy, std_init=args.es_std)
        learned[optimizer] = jax.block_until_ready(final)
        seconds[optimizer] = time.perf_counter() - began
        frames.append(history_frame(optimizer, history))
    history = pd.concat(frames, ignore_index=True)
    write_parquet(history, out / "meta_history.parquet")
    plot_meta_history(history, out / "meta_learning_curves.png", ["meta_loss", *args.meta_parameters],
                      title=f"meta-learning {args.rule} on {args.dataset}")
    marks = {"start": start[first], **{f"learned ({k})": float(jnp.exp(v[first])) for k, v in learned.items()}}
    plot_landscape_with_tangents(scan, out / "landscape.png", x=first, marks=marks,
                                 title=f"final validation loss vs {first} (one inner run key)")

    summary = {
        "experiment": "meta_learn_feedback",
        "seed": args.seed,
        "config": {"dataset": args.dataset, "rule": args.rule, "hidden": list(args.hidden), "optimizer": "sgd",
                   "inner_steps": args.inner_steps, "batch_size": args.batch_size, "eval_every": args.eval_every,
                   "checkpoint_every": args.checkpoint_every, "truncation": args.truncation,
                   "meta_parameters": list(args.meta_parameters), "fixed": fixed, "meta_steps": args.meta_steps,
                   "meta_learning_rate": args.meta_learning_rate, "strategy": args.strategy,
                   "generations": args.generations, "population": args.population, "es_std": args.es_std},
        "meta_objective": "final validation cross-entropy (validation = 20% of the training split)",
        "note": ACCURACY_NOTE,
        "gradient_check": checks.to_dict(orient="records"),
        "max_relative_error_at_smallest_step": float(checks[checks.step == min(args.fd_steps)].relative_error.max()),
        "landscape_best": {first: float(scan.loc[scan.meta_loss.idxmin(), first]),
                           "meta_loss": float(scan.meta_loss.min())},
        "start": {"values": {k: start[k] for k in args.meta_parameters},
                  "evaluation": evaluate(value_and_grad, initial, eval_keys)},
    }
    for optimizer, final in learned.items():
        summary[optimizer] = {"values": {k: float(jnp.exp(v)) for k, v in final.items()},
                              "evaluation": evaluate(value_and_grad, final, eval_keys),
                              "seconds": seconds[optimizer]}
    write_json(summary, out / "summary.json")
    return summary


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        summary = run(args)
    except CommandLineError as error:
        print(f"meta_learn_feedback.py: error: {error}", file=sys.stderr)
        return 2
    start = summary["start"]["evaluation"]
    print(f"start {summary['start']['values']}: test loss {start['test_loss_mean']:.4f}, "
          f"test accuracy {start['test_accuracy_mean']:.4f}")
    for optimizer in args.optimizers:
        result = summary[optimizer]["evaluation"]
        print(f"{optimizer} {summary[optimizer]['values']}: test loss {result['test_loss_mean']:.4f}, "
              f"test accuracy {result['test_accuracy_mean']:.4f}")
    worst = summary["max_relative_error_at_smallest_step"]
    print(f"meta-gradient vs finite differences: max relative error {worst:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
