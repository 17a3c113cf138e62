"""The continual-learning harness: an outer ``lax.scan`` over tasks around the inner ``lax.scan`` over steps.

``make_continual_program(config, suite, scenario)`` returns a ``TrainProgram`` whose evaluation periods are tasks,
so ``run_grid`` runs every seed × hyperparameter setting of a whole task sequence as one compiled, vmapped program.
Per task t the program

1. trains ``steps_per_task`` steps on task t (``sequential``) or on tasks 0..t (``joint``, the upper bound);
2. calls the rule's ``end_task`` hook on a sample of task t (consolidation: EWC's Fisher, a sleep phase, ...);
3. evaluates every task's test set: row t of the accuracy matrix R[t, j].

The untrained network's accuracies are recorded too, as the random-init reference of forward transfer.

Methods are named on the command line as a rule name, a chain ``wrapper:...:rule`` (outermost first; a chain that
ends in a wrapper gets ``inner``), or one of the baselines ``fine_tuning`` (the inner rule trained task after task)
and ``joint`` (the inner rule on all tasks seen so far).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd

from rulelab.core import Array, PRNGKey, tree_all_finite
from rulelab.harness.results import write_json, write_parquet
from rulelab.harness.run import run_grid
from rulelab.harness.train import TrainProgram, default_hparams, make_optimizer
from rulelab.registry import get_factory, make_rule, rule_hyperparameters
from rulelab.rules.task_aware import TaskAwareRule, as_task_aware
from rulelab.tasks.continual import ContinualSuite, scenario_network, task_stream

BASELINES = {"fine_tuning": "sequential", "joint": "joint"}  # baseline name -> data regime
DEFAULT_METHODS = ("fine_tuning", "joint", "ewc", "synaptic_intelligence", "experience_replay", "sleep_replay")


# ----------------------------------------------------------------------------------------------------------------
# Metrics of an accuracy matrix R[..., i, j] (accuracy on task j after training on task i)


def average_accuracy(accuracy_matrix: Array) -> Array:
    """ACC = (1/T) Σ_j R[T-1, j]: mean final accuracy over all tasks."""
    return jnp.mean(accuracy_matrix[..., -1, :], axis=-1)


def forgetting(accuracy_matrix: Array) -> Array:
    """Mean over tasks j < T-1 of max_{j ≤ l < T-1} R[l, j] − R[T-1, j] (Chaudhry et al. 2018, ECCV).

    The maximum runs over the rows after task j was learned and before the last, i.e. the best accuracy the task
    had before the final task minus its final accuracy (negative when a task is still improving at the end).
    """
    num_tasks = accuracy_matrix.shape[-1]
    earlier = accuracy_matrix[..., :-1, :-1]
    learned = np.arange(num_tasks - 1)[:, None] >= np.arange(num_tasks - 1)[None, :]
    best = jnp.max(jnp.where(learned, earlier, -jnp.inf), axis=-2)
    return jnp.mean(best - accuracy_matrix[..., -1, :-1], axis=-1)


def backward_transfer(accuracy_matrix: Array) -> Array:
    """BWT = (1/(T-1)) Σ_{j<T-1} (R[T-1, j] − R[j, j]) (Lopez-Paz & Ranzato 2017, GEM); negative = forgetting."""
    diagonal = jnp.diagonal(accuracy_matrix, axis1=-2, axis2=-1)
    return jnp.mean(accuracy_matrix[..., -1, :-1] - diagonal[..., :-1], axis=-1)


def forward_transfer(accuracy_matrix: Array, initial_accuracy: Array) -> Array:
    """FWT = (1/(T-1)) Σ_{j≥1} (R[j-1, j] − b_j), b_j the untrained network's accuracy on task j (GEM)."""
    before = jnp.diagonal(accuracy_matrix, offset=1, axis1=-2, axis2=-1)
    return jnp.mean(before - initial_accuracy[..., 1:], axis=-1)


def continual_metrics(accuracy_matrix: Array, initial_accuracy: Array) -> dict[str, Array]:
    return {
        "average_accuracy": average_accuracy(accuracy_matrix),
        "forgetting": forgetting(accuracy_matrix),
        "backward_transfer": backward_transfer(accuracy_matrix),
        "forward_transfer": forward_transfer(accuracy_matrix, initial_accuracy),
    }


# ----------------------------------------------------------------------------------------------------------------
# Methods: a rule chain and a data regime


class Method(NamedTuple):
    name: str  # as written by the user: "ewc", "fine_tuning", "sleep_replay:experience_replay", ...
    chain: tuple[str, ...]  # registered rule names, outermost wrapper first, the learning rule last
    regime: str  # "sequential" or "joint"


def is_wrapper(rule_name: str) -> bool:
    """True for rules that wrap an inner rule (their factory takes ``inner``)."""
    return "inner" in rule_hyperparameters(rule_name)


def parse_method(spec: str, inner: str = "backprop") -> Method:
    """``"fine_tuning"`` / ``"joint"`` / ``"rule"`` / ``"wrapper:...:rule"`` → ``Method``; unknown names raise."""
    if spec in BASELINES:
        get_factory(inner)
        return Method(spec, (inner,), BASELINES[spec])
    chain = tuple(spec.split(":"))
    for name in chain:
        get_factory(name)  # raises UnknownRuleError listing the rules
    for name in chain[:-1]:
        if not is_wrapper(name):
            raise ValueError(f"{name!r} in {spec!r} does not wrap another rule; only the last name may be a plain rule")
    if is_wrapper(chain[-1]):
        chain = chain + (inner,)
    return Method(spec, chain, "sequential")


def chain_hyperparameters(chain: Sequence[str]) -> dict[str, Any]:
    """Every hyperparameter of every rule in the chain (except ``inner``) with its default."""
    merged: dict[str, Any] = {}
    for name in chain:
        merged.update({k: v for k, v in rule_hyperparameters(name).items() if k != "inner"})
    return merged


def build_chain(net: Any, chain: Sequence[str], hyperparameters: dict[str, Any]) -> TaskAwareRule:
    """The rule ``chain[0](inner=chain[1](inner=...chain[-1]))``, each getting the hyperparameters it accepts."""
    unknown = set(hyperparameters) - set(chain_hyperparameters(chain))
    if unknown:
        raise TypeError(f"{':'.join(chain)} has no hyperparameter {', '.join(sorted(map(repr, unknown)))}; "
                        f"valid: {', '.join(chain_hyperparameters(chain)) or '(none)'}")

    def own(name):
        return {k: v for k, v in hyperparameters.items() if k in rule_hyperparameters(name)}

    rule = make_rule(chain[-1], net, **own(chain[-1]))
    for name in reversed(chain[:-1]):
        rule = make_rule(name, net, inner=rule, **own(name))
    return as_task_aware(rule)


# ----------------------------------------------------------------------------------------------------------------
# The program


@dataclasses.dataclass(frozen=True)
class ContinualConfig:
    """Static settings of one continual-learning program; numbers to sweep go in ``hparams``.

    ``rule_options`` are structural hyperparameters (buffer sizes, sleep lengths), routed to the rules of the chain
    that accept them; every entry of ``hparams`` except ``learning_rate`` is routed the same way, traced.
    """

    method: str = "fine_tuning"
    inner: str = "backprop"
    rule_options: tuple[tuple[str, Any], ...] = ()
    hidden: tuple[int, ...] = (100, 100)
    activation: str = "relu"
    bias: bool = True  # False: biases held at zero, as in SRC's networks
    optimizer: str = "adam"
    steps_per_task: int = 200
    batch_size: int = 32
    consolidation_batch_size: int = 256  # examples of the finished task handed to ``end_task``
    reset_optimizer: bool = True  # fresh optimizer state at every task (stale Adam moments would leak across tasks)

    def __post_init__(self):
        for field in ("steps_per_task", "batch_size", "consolidation_batch_size"):
            if getattr(self, field) <= 0:
                raise ValueError(f"{field} must be positive, got {getattr(self, field)}")


class ContinualState(NamedTuple):
    params: Any
    rule_state: Any
    opt_state: Any
    key: PRNGKey
    task: Array  # [] int32, the task being learned next
    diverged_at: Array  # [] int32, task during which the run went non-finite, -1 if it never did
    initial_accuracy: Array  # [tasks] accuracy of the untrained network on every task


def _guarded(state: ContinualState, proposed: tuple, finite: Array) -> ContinualState:
    """Accept ``(params, rule_state, opt_state)`` while the run is healthy; freeze it at its first non-finite value."""
    healthy = finite & (state.diverged_at < 0)
    kept = jax.tree.map(lambda new, old: jnp.where(healthy, new, old), proposed,
                        (state.params, state.rule_state, state.opt_state))
    diverged_at = jnp.where((state.diverged_at < 0) & ~finite, state.task, state.diverged_at)
    return state._replace(params=kept[0], rule_state=kept[1], opt_state=kept[2], diverged_at=diverged_at)


def make_continual_program(config: ContinualConfig, suite: ContinualSuite, scenario: str) -> TrainProgram:
    """Set up network, rule chain, optimizer and task stream; return the pure ``init`` / ``run`` pieces.

    ``run(state, hparams, *, num_evals)`` learns the next ``num_evals`` tasks and returns, per task,
    ``accuracy`` [tasks] (a row of R), ``initial_accuracy`` [tasks], ``train_loss``, ``diverged_at`` and the
    consolidation metrics of ``end_task``.
    """
    method = parse_method(config.method, config.inner)
    net = scenario_network(suite, scenario, config.hidden, config.activation, bias=config.bias)
    stream = task_stream(suite, scenario)
    options = dict(config.rule_options)
    build_chain(net, method.chain, options)  # fail here, in Python, on a bad name or option
    num_tasks = suite.num_tasks

    def build(hparams):
        rule_hparams = {k: v for k, v in hparams.items() if k != "learning_rate"}
        rule = build_chain(net, method.chain, {**options, **rule_hparams})
        return rule, make_optimizer(config.optimizer, hparams["learning_rate"])

    def evaluate(params) -> Array:
        def one(task):
            batch, mask = stream.test_set(task)
            correct = (jnp.argmax(net.apply(params, batch.x)[0], axis=-1) == batch.y) & mask
            return jnp.sum(correct) / jnp.sum(mask)

        return jax.lax.map(one, jnp.arange(num_tasks))

    def draw_tasks(key, task):
        if method.regime == "joint":
            return jax.random.randint(key, (config.batch_size,), 0, task + 1)
        return jnp.full((config.batch_size,), task)

    def init(key: PRNGKey, hparams) -> ContinualState:
        rule, optimizer = build(hparams)
        net_key, rule_key, run_key = jax.random.split(key, 3)
        params = net.init(net_key)
        return ContinualState(params, rule.init(rule_key, params), optimizer.init(params), run_key,
                              jnp.zeros((), jnp.int32), -jnp.ones((), jnp.int32), evaluate(params))

    def run(state: ContinualState, hparams, *, num_evals: int):
        rule, optimizer = build(hparams)

        def train_step(state: ContinualState, _):
            key, task_key, batch_key, rule_key = jax.random.split(state.key, 4)
            batch = stream.sample(batch_key, draw_tasks(task_key, state.task))
            updates, rule_state, metrics = rule.update(state.params, state.rule_state, batch, key=rule_key)
            steps, opt_state = optimizer.update(updates, state.opt_state, state.params)
            params = optax.apply_updates(state.params, steps)
            finite = jnp.isfinite(metrics["loss"]) & tree_all_finite(params)
            return _guarded(state._replace(key=key), (params, rule_state, opt_state), finite), metrics["loss"]

        def learn_task(state: ContinualState, _):
            if config.reset_optimizer:
                state = state._replace(opt_state=optimizer.init(state.params))
            state, losses = jax.lax.scan(train_step, state, None, length=config.steps_per_task)
            key, sample_key, end_key = jax.random.split(state.key, 3)
            sample = stream.sample(sample_key, jnp.full((config.consolidation_batch_size,), state.task))
            params, rule_state, end_metrics = rule.end_task(state.params, state.rule_state, sample, key=end_key)
            state = _guarded(state._replace(key=key), (params, rule_state, state.opt_state), tree_all_finite(params))
            metrics = {
                "task": state.task,
                "accuracy": evaluate(state.params),  # [tasks], row `task` of R
                "initial_accuracy": state.initial_accuracy,
                "train_loss": jnp.mean(losses),
                "diverged_at": state.diverged_at,
                **end_metrics,
            }
            return state._replace(task=state.task + 1), metrics

        return jax.lax.scan(learn_task, state, None, length=num_evals)

    return TrainProgram(init, run, num_tasks, net)


# ----------------------------------------------------------------------------------------------------------------
# Host side: run methods, tidy frames, summary


def broadcast_settings(hparams: dict[str, Any]) -> dict[str, np.ndarray]:
    """Scalars repeated to the length of the swept lists, so ``{"learning_rate": 1e-3, "ewc_strength": [1, 10]}``
    is a grid of two settings; lists of different lengths (other than 1) raise."""
    arrays = {k: np.atleast_1d(np.asarray(v, np.float64)) for k, v in hparams.items()}
    sizes = {len(v) for v in arrays.values()} - {1}
    if len(sizes) > 1:
        raise ValueError(f"swept hyperparameters need the same number of values, got {sorted(sizes)}")
    size = sizes.pop() if sizes else 1
    return {k: np.broadcast_to(v, (size,)) for k, v in arrays.items()}


def _hparam_columns(hparams: dict[str, Any], num_settings: int) -> dict[str, np.ndarray]:
    return {k: np.broadcast_to(np.atleast_1d(np.asarray(v, np.float64)), (num_settings,)) for k, v in hparams.items()}


def accuracy_frame(metrics: dict[str, np.ndarray], hparams: dict[str, Any], **labels: Any) -> pd.DataFrame:
    """One row per setting × seed × trained task i × evaluated task j (``accuracy`` = R[i, j])."""
    accuracy = np.asarray(metrics["accuracy"])  # [settings, seeds, tasks, tasks]
    num_h, num_s, num_t, _ = accuracy.shape
    h, s, i, j = np.meshgrid(*(np.arange(n) for n in accuracy.shape), indexing="ij")
    columns: dict[str, Any] = dict(labels)
    columns.update({k: v[h.ravel()] for k, v in _hparam_columns(hparams, num_h).items()})
    initial = np.broadcast_to(np.asarray(metrics["initial_accuracy"])[:, :, :1, :], accuracy.shape)
    columns.update(hparam_index=h.ravel(), seed=s.ravel(), trained_task=i.ravel(), eval_task=j.ravel(),
                   accuracy=accuracy.ravel(), initial_accuracy=initial.ravel())
    return pd.DataFrame(columns)


def run_metrics_frame(metrics: dict[str, np.ndarray], hparams: dict[str, Any], **labels: Any) -> pd.DataFrame:
    """One row per setting × seed: average accuracy, forgetting, backward and forward transfer, divergence."""
    accuracy = np.asarray(metrics["accuracy"])
    num_h, num_s = accuracy.shape[:2]
    h, s = np.meshgrid(np.arange(num_h), np.arange(num_s), indexing="ij")
    summary = continual_metrics(accuracy, np.asarray(metrics["initial_accuracy"])[:, :, 0, :])
    columns: dict[str, Any] = dict(labels)
    columns.update({k: v[h.ravel()] for k, v in _hparam_columns(hparams, num_h).items()})
    columns.update(hparam_index=h.ravel(), seed=s.ravel())
    columns.update({k: np.asarray(v).ravel() for k, v in summary.items()})
    columns["diverged"] = (np.asarray(metrics["diverged_at"])[:, :, -1] >= 0).ravel()
    return pd.DataFrame(columns)


def summarize_continual(runs: pd.DataFrame, suite: str, scenario: str) -> dict:
    """``summary.json`` content: per method, mean ± std over seeds (first hyperparameter setting)."""
    rules = {}
    for rule, group in runs[runs["hparam_index"] == 0].groupby("rule", sort=False):
        rules[rule] = {
            "average_accuracy_mean": float(group["average_accuracy"].mean()),
            "average_accuracy_std": float(group["average_accuracy"].std(ddof=0)),
            "forgetting_mean": float(group["forgetting"].mean()),
            "backward_transfer_mean": float(group["backward_transfer"].mean()),
            "seeds": int(group["seed"].nunique()),
        }
    return {"suite": suite, "scenario": scenario, "rules": rules}


class ContinualResult(NamedTuple):
    accuracy: pd.DataFrame  # tidy R[i, j] rows
    runs: pd.DataFrame  # one row per method × setting × seed
    summary: dict
    wall_s: dict[str, float]


def run_continual(
    suite: ContinualSuite,
    scenario: str,
    methods: Sequence[str] = DEFAULT_METHODS,
    *,
    config: ContinualConfig = ContinualConfig(),
    hparams: dict[str, Any] | None = None,
    num_seeds: int = 5,
    base_seed: int = 0,
    out_dir: str | Path | None = None,
    progress: bool = True,
) -> ContinualResult:
    """Run every method on ``suite`` under ``scenario`` for ``num_seeds`` seeds (one compiled program per method).

    ``hparams`` (numbers or lists to sweep) and ``config.rule_options`` go to every method whose chain accepts them;
    ``learning_rate`` to all.
    With ``out_dir``: results.parquet (R rows), runs.parquet, summary.json, accuracy_matrices.png and
    accuracy_over_tasks.png.
    """
    from rulelab.harness.continual_plots import plot_accuracy_matrices, plot_accuracy_over_tasks

    hparams = {**default_hparams(config), **(hparams or {})}  # only reads config.optimizer
    accuracy_frames, run_frames, wall_s = [], [], {}
    for name in methods:
        method = parse_method(name, config.inner)
        accepted = chain_hyperparameters(method.chain)
        options = tuple((k, v) for k, v in config.rule_options if k in accepted)
        method_config = dataclasses.replace(config, method=name, rule_options=options)
        method_hparams = broadcast_settings({k: v for k, v in hparams.items() if k == "learning_rate" or k in accepted})
        start = time.perf_counter()
        program = make_continual_program(method_config, suite, scenario)
        result = run_grid(program, method_hparams, num_seeds=num_seeds, base_seed=base_seed, progress=progress,
                          description=name, keep_state=False)
        wall_s[name] = time.perf_counter() - start
        labels = dict(suite=suite.name, scenario=scenario, rule=name)
        accuracy_frames.append(accuracy_frame(result.metrics, method_hparams, **labels))
        run_frames.append(run_metrics_frame(result.metrics, method_hparams, **labels))
    accuracy = pd.concat(accuracy_frames, ignore_index=True)
    runs = pd.concat(run_frames, ignore_index=True)
    summary = summarize_continual(runs, suite.name, scenario)
    if out_dir is not None:
        out_dir = Path(out_dir)
        write_parquet(accuracy, out_dir / "results.parquet")
        write_parquet(runs, out_dir / "runs.parquet")
        write_json(summary, out_dir / "summary.json")
        title = f"{suite.name}, {scenario}-incremental"
        plot_accuracy_matrices(accuracy, out_dir / "accuracy_matrices.png", title=title)
        plot_accuracy_over_tasks(accuracy, out_dir / "accuracy_over_tasks.png", title=title)
    return ContinualResult(accuracy, runs, summary, wall_s)


def format_continual_table(result: ContinualResult) -> str:
    """A fixed-width text table: accuracy, forgetting, backward and forward transfer (mean ± std over seeds)."""
    lines = [f"{'method':34s} {'average accuracy':>18s} {'forgetting':>11s} {'BWT':>8s} {'FWT':>8s} {'wall s':>7s}"]
    first = result.runs[result.runs["hparam_index"] == 0]
    for rule, group in first.groupby("rule", sort=False):
        accuracy = f"{100 * group['average_accuracy'].mean():.1f} ± {100 * group['average_accuracy'].std(ddof=0):.1f}%"
        diverged = int(group["diverged"].sum())
        note = f"  ({diverged} diverged)" if diverged else ""
        lines.append(f"{rule:34s} {accuracy:>18s} {100 * group['forgetting'].mean():10.1f}% "
                     f"{100 * group['backward_transfer'].mean():7.1f}% {100 * group['forward_transfer'].mean():7.1f}% "
                     f"{result.wall_s[rule]:7.1f}{note}")
    return "\n".join(lines)
