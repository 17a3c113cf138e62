"""Search the sleep-phase constants of ``sleep_replay`` on a validation split (never the test set).

Random search over ``SEARCH_SPACE`` (``--settings N``) or a full grid (``--grid '{"sleep_scale": [2, 4]}'``; the
other constants keep their defaults). Every setting × seed is one vmapped program (the constants are traced), so a
search compiles once. Prints the best settings by mean average accuracy and writes them all as JSON.

    python experiments/continual_sleep_tuning.py --suite split-digits --settings 64 --seeds 3 --out runs/sleep_tuning

``--space '{"sleep_inhibition": [0.6, 1.0, false]}'`` replaces ``SEARCH_SPACE`` (name -> [low, high, log]) for the
random search, e.g. to search the MNIST-1D options ``sleep_inhibition`` and ``sleep_input_contrast``.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np

from rulelab.harness.continual import ContinualConfig, continual_metrics, make_continual_program
from rulelab.harness.run import run_grid
from rulelab.harness.sharding import use_host_device_per_core
from rulelab.tasks.continual import load_continual_suite

# name -> (low, high, log scale); the firing threshold stays 1 (only scale / threshold matters to the dynamics)
SEARCH_SPACE = {
    "sleep_scale": (1.0, 16.0, True),
    "sleep_potentiation": (3e-4, 3e-2, True),
    "sleep_depression": (3e-4, 3e-2, True),
    "sleep_input_rate": (0.1, 1.0, True),
    "sleep_decay": (0.9, 1.0, False),
    "sleep_bias_current": (0.0, 1.0, False),
}


def sample_settings(num_settings: int, seed: int, space: dict | None = None) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    settings = {}
    for name, (low, high, log) in (space or SEARCH_SPACE).items():
        draw = rng.uniform(np.log(low), np.log(high), num_settings) if log else rng.uniform(low, high, num_settings)
        settings[name] = np.exp(draw) if log else draw
    return settings


def grid_settings(grid: dict[str, list[float]]) -> dict[str, np.ndarray]:
    combinations = list(itertools.product(*grid.values()))
    return {name: np.array([c[i] for c in combinations], float) for i, name in enumerate(grid)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="split-digits")
    parser.add_argument("--scenario", default="class")
    parser.add_argument("--settings", type=int, default=64, help="random-search size")
    parser.add_argument("--grid", type=json.loads, default=None, help="JSON {name: [values]} instead of random")
    parser.add_argument("--space", type=json.loads, default=None,
                        help='JSON {name: [low, high, log]} replacing SEARCH_SPACE for the random search')
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--search-seed", type=int, default=0)
    parser.add_argument("--steps-per-task", type=int, default=500)
    parser.add_argument("--hidden", default="256,256")
    parser.add_argument("--sleep-steps", type=int, default=400)
    parser.add_argument("--sleep-steps-growth", type=int, default=200)
    parser.add_argument("--no-bias", action="store_true")
    parser.add_argument("--out", default="runs/sleep_tuning")
    args = parser.parse_args()

    suite = load_continual_suite(args.suite, holdout="validation")
    config = ContinualConfig(
        method="sleep_replay", hidden=tuple(int(h) for h in args.hidden.split(",")), bias=not args.no_bias,
        steps_per_task=args.steps_per_task,
        rule_options=(("sleep_steps", args.sleep_steps), ("sleep_steps_growth", args.sleep_steps_growth)),
    )
    settings = grid_settings(args.grid) if args.grid else sample_settings(args.settings, args.search_seed, args.space)
    num_settings = len(next(iter(settings.values())))
    hparams = {**settings, "learning_rate": np.full(num_settings, 1e-3)}
    result = run_grid(make_continual_program(config, suite, args.scenario), hparams, num_seeds=args.seeds,
                      base_seed=1000, keep_state=False, description="sleep search")
    metrics = continual_metrics(result.metrics["accuracy"], result.metrics["initial_accuracy"][:, :, 0])
    accuracy = np.asarray(metrics["average_accuracy"])  # [settings, seeds]
    order = np.argsort(-accuracy.mean(axis=1))
    rows = [{"average_accuracy_mean": float(accuracy[h].mean()), "average_accuracy_std": float(accuracy[h].std()),
             **{k: float(v[h]) for k, v in settings.items()}} for h in order]
    for row in rows[:10]:
        print(json.dumps({k: round(v, 4) for k, v in row.items()}))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.suite}_{args.scenario}.json").write_text(json.dumps({"args": vars(args), "ranked": rows}, indent=2))


if __name__ == "__main__":
    use_host_device_per_core()  # one host device per CPU core, before JAX starts
    main()
