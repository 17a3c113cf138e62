#!/usr/bin/env python
"""Rediscover Oja's rule by meta-learning a polynomial plasticity rule (Confavreux et al. 2020, NeurIPS).

A single linear unit learns with ``parameterized_plasticity`` over the 27-term polynomial basis
``x^α y^β w^γ`` (α, β, γ ∈ {0, 1, 2}). The coefficients θ are meta-learned, from a small random start, so that
after ``--inner-steps`` of learning on a random Gaussian input distribution the unit's weight vector is the unit-norm
first principal component (``rulelab.meta.principal_component``). Two meta-optimisers: Adam on ``jax.grad`` through
the unrolled inner loop, and an evolution strategy (evosax) that evaluates a vmapped population. The known answer
is Oja's rule, θ[x*y] = 1, θ[y^2*w] = −1, everything else 0, up to a positive scale; ``summary.json`` reports the
learned coefficients by name and their cosine similarity to that vector.

    python experiments/meta_learn_oja.py --out results/meta_learn_oja
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
    name_list,
    positive_float,
    positive_int,
)
from rulelab.core import tree_cosine
from rulelab.harness.results import write_json, write_parquet
from rulelab.meta import EVOLUTION_STRATEGIES, meta_train_evolution, meta_train_gradient
from rulelab.meta.plots import plot_coefficients, plot_meta_history
from rulelab.meta.principal_component import PrincipalComponentMetaConfig, make_meta_loss, make_rule_evaluator
from rulelab.rules.parameterized_plasticity import BASES, oja_coefficients

OPTIMIZERS = ("gradient", "evolution")
TERM_NAMES = BASES["polynomial"].term_names


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(prog="meta_learn_oja.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--optimizers", type=name_list, default=OPTIMIZERS, help="gradient,evolution")
    parser.add_argument("--meta-steps", type=positive_int, default=500, help="meta-gradient steps")
    parser.add_argument("--meta-learning-rate", type=positive_float, default=0.02, help="Adam, cosine-decayed")
    parser.add_argument("--strategy", default="cma_es", help=f"one of {', '.join(EVOLUTION_STRATEGIES)}")
    parser.add_argument("--generations", type=positive_int, default=300)
    parser.add_argument("--population", type=positive_int, default=32)
    parser.add_argument("--es-std", type=positive_float, default=0.1, help="initial search standard deviation")
    parser.add_argument("--num-inputs", type=positive_int, default=5)
    parser.add_argument("--num-tasks", type=positive_int, default=16, help="random tasks per meta-loss")
    parser.add_argument("--inner-steps", type=positive_int, default=200)
    parser.add_argument("--inner-batch-size", type=positive_int, default=4)
    parser.add_argument("--inner-learning-rate", type=positive_float, default=0.05)
    parser.add_argument("--sparsity-penalty", type=float, default=0.002,
                        help="λ of the parsimony term λ·Σ|θ_k| in the meta-loss (0 to switch it off)")
    parser.add_argument("--init-scale", type=positive_float, default=0.01, help="std of the random initial θ")
    parser.add_argument("--eval-tasks", type=positive_int, default=256, help="fresh tasks for the final evaluation")
    args = parser.parse_args(argv)
    check_choices("optimizer", args.optimizers, OPTIMIZERS)
    check_choices("evolution strategy", [args.strategy], EVOLUTION_STRATEGIES)
    if args.sparsity_penalty < 0:
        raise CommandLineError(f"--sparsity-penalty must be non-negative, got {args.sparsity_penalty}")
    if args.num_inputs < 2:
        raise CommandLineError(f"--num-inputs must be at least 2 to have a principal component, got {args.num_inputs}")
    if args.population < 4 or args.population % 2:
        raise CommandLineError(f"--population must be an even number of at least 4, got {args.population}")
    return args


def named(coefficients) -> dict[str, float]:
    return {name: float(value) for name, value in zip(TERM_NAMES, np.asarray(coefficients))}


def history_frames(optimizer: str, history: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tidy per-step metrics and the long coefficient trajectory of one meta-optimiser."""
    coefficients = np.asarray(history["meta_params"]["coefficients"])  # [steps, terms]
    oja = oja_coefficients()
    cosine = np.asarray(jax.vmap(lambda c: tree_cosine(c, oja))(jnp.asarray(coefficients)))
    steps = np.arange(len(coefficients))
    metrics = pd.DataFrame({"optimizer": optimizer, "step": steps, "meta_loss": np.asarray(history["meta_loss"]),
                            "cosine_to_oja": cosine})
    trajectory = pd.DataFrame({
        "optimizer": optimizer,
        "step": np.repeat(steps, len(TERM_NAMES)),
        "term": np.tile(TERM_NAMES, len(steps)),
        "coefficient": coefficients.ravel(),
    })
    return metrics, trajectory


def summarise_evaluation(results: dict) -> dict[str, float]:
    """Mean and 5th percentile of |cos(w_T, u₁)|, mean ‖w_T‖ and mean task loss over the evaluation tasks."""
    results = {k: np.asarray(v) for k, v in results.items()}
    return {"alignment_mean": float(np.mean(results["alignment"])),
            "alignment_p05": float(np.percentile(results["alignment"], 5)),
            "weight_norm_mean": float(np.mean(results["weight_norm"])),
            "task_loss_mean": float(np.mean(results["loss"]))}


def run(args: argparse.Namespace) -> dict:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = PrincipalComponentMetaConfig(
        num_inputs=args.num_inputs, num_tasks=args.num_tasks, inner_steps=args.inner_steps,
        inner_batch_size=args.inner_batch_size, inner_learning_rate=args.inner_learning_rate,
        sparsity_penalty=args.sparsity_penalty,
    )
    meta_loss = make_meta_loss(config)
    evaluate = make_rule_evaluator(config, args.eval_tasks)
    init_key, gradient_key, evolution_key, eval_key = jax.random.split(jax.random.key(args.seed), 4)
    initial = {"coefficients": args.init_scale * jax.random.normal(init_key, (len(TERM_NAMES),))}
    learned, frames, trajectories, seconds = {}, [], [], {}
    for optimizer in args.optimizers:
        start = time.perf_counter()
        if optimizer == "gradient":
            schedule = optax.cosine_decay_schedule(args.meta_learning_rate, args.meta_steps, alpha=0.1)
            final, history = meta_train_gradient(
                meta_loss, initial, gradient_key, num_steps=args.meta_steps,
                optimizer=optax.chain(optax.clip_by_global_norm(1.0), optax.adam(schedule)),
            )
        else:
            final, history = meta_train_evolution(
                meta_loss, initial, evolution_key, num_generations=args.generations,
                population_size=args.population, strategy=args.strategy, std_init=args.es_std,
            )
        learned[optimizer] = np.asarray(jax.block_until_ready(final["coefficients"]))
        seconds[optimizer] = time.perf_counter() - start
        metrics, trajectory = history_frames(optimizer, history)
        frames.append(metrics)
        trajectories.append(trajectory)

    history = pd.concat(frames, ignore_index=True)
    write_parquet(history, out / "meta_history.parquet")
    write_parquet(pd.concat(trajectories, ignore_index=True), out / "coefficient_trajectories.parquet")
    plot_meta_history(history, out / "meta_learning_curves.png", ["meta_loss", "cosine_to_oja"],
                      title="meta-learning a plasticity rule for PCA")
    oja = np.asarray(oja_coefficients())
    plot_coefficients({"Oja": named(oja), **{f"learned ({k})": named(v) for k, v in learned.items()}},
                      out / "learned_coefficients.png", title="learned rule vs Oja's rule")

    summary = {
        "experiment": "meta_learn_oja",
        "reference": "Confavreux, Zenke, Agnes, Lillicrap & Vogels 2020, NeurIPS; Oja 1982",
        "seed": args.seed,
        "config": {**vars(config), "meta_steps": args.meta_steps, "meta_learning_rate": args.meta_learning_rate,
                   "strategy": args.strategy, "generations": args.generations, "population": args.population,
                   "es_std": args.es_std, "init_scale": args.init_scale, "eval_tasks": args.eval_tasks},
        "meta_objective": "mean over random tasks of (1 - cos^2(w_T, u1)) + (|w_T|^2 - 1)^2, "
                          "plus sparsity_penalty * sum_k |theta_k|",
        "oja_coefficients": named(oja),
        "initial": {"coefficients": named(initial["coefficients"]),
                    "cosine_to_oja": float(tree_cosine(initial["coefficients"], oja)),
                    "evaluation": summarise_evaluation(evaluate(initial["coefficients"], eval_key))},
        "oja_evaluation": summarise_evaluation(evaluate(oja, eval_key)),
    }
    for optimizer, coefficients in learned.items():
        final_rows = history[history.optimizer == optimizer]
        summary[optimizer] = {
            "coefficients": named(coefficients),
            "cosine_to_oja": float(tree_cosine(coefficients, oja)),
            "oja_scale": float(np.dot(coefficients, oja) / np.dot(oja, oja)),  # θ's projection, in units of Oja
            "final_meta_loss": float(final_rows.meta_loss.iloc[-1]),
            "evaluation": summarise_evaluation(evaluate(coefficients, eval_key)),
            "seconds": seconds[optimizer],
        }
    write_json(summary, out / "summary.json")
    return summary


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
    except CommandLineError as error:
        print(f"meta_learn_oja.py: error: {error}", file=sys.stderr)
        return 2
    summary = run(args)
    for optimizer in args.optimizers:
        result = summary[optimizer]
        print(f"{optimizer}: cosine to Oja {result['cosine_to_oja']:.3f}, "
              f"held-out alignment {result['evaluation']['alignment_mean']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
