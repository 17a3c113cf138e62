"""Conformance checks a user can run on one rule, reported check by check instead of as a deep traceback.

``rulelab check-rule NAME`` runs :func:`check_rule`; every sweep runs :func:`contract_checks` on each compiled
group's own network and a batch of its data before any training, and stops with one line naming what failed
(:class:`RuleCheckError`). The checks mirror the conformance suite of ``tests/test_conformance.py``:

- the rule builds for the network and ``init`` returns a state;
- ``update(params, state, batch, key=key)`` returns ``(updates, state, metrics)`` with a ``"loss"`` metric;
- updates have the structure, shapes and dtypes of the parameters; updates and metrics are finite;
- the new state has the structure, shapes and dtypes of the old one (a ``lax.scan`` carry);
- numeric hyperparameters work as traced values under ``vmap`` (a sweep's axis);
- (``check_rule`` only) ``jit`` agrees with eager execution and is deterministic for a key, and a few hundred SGD
  steps on the rule's learning problem reduce its loss.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from rulelab.core import Batch, ConformanceProblem, LearningRule, softmax_cross_entropy
from rulelab.nets.mlp import mlp
from rulelab.registry import conformance_problem, make_rule, rule_hyperparameters


class CheckResult(NamedTuple):
    check: str  # what was checked, in words
    passed: bool
    detail: str = ""  # why it failed (empty when it passed)


class RuleCheckError(ValueError):
    """A rule failed a conformance check; the message names the rule, the failed checks and why."""


def _error_line(error: BaseException) -> str:
    message = str(error).strip().splitlines()
    return f"{type(error).__name__}: {message[0]}" if message else type(error).__name__


def _attempt(check: str, probe: Callable[[], str | None]) -> CheckResult:
    """Run ``probe``: it returns ``None`` on success or a reason; an exception is a failure with its first line."""
    try:
        reason = probe()
    except Exception as error:  # noqa: BLE001  (a plugin may raise anything; report it, don't crash)
        return CheckResult(check, False, _error_line(error))
    return CheckResult(check, reason is None, reason or "")


def _shape_mismatch(got: Any, want: Any, what: str) -> str | None:
    """Why pytree ``got`` does not have the structure, shapes and dtypes of ``want`` (``None`` if it does)."""
    if jax.tree.structure(got) != jax.tree.structure(want):
        return f"{what} structure {jax.tree.structure(got)} differs from {jax.tree.structure(want)}"
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(got), jax.tree.leaves(want)):
        if _spec(a) != _spec(b):
            return f"{what}{jax.tree_util.keystr(path)} is {_spec(a)}, expected {_spec(b)}"
    return None


def _spec(leaf: Any) -> str:
    """``float32[64, 10]`` for an array, a shape-dtype struct or a Python number."""
    shape = getattr(leaf, "shape", np.shape(leaf))
    dtype = getattr(leaf, "dtype", None) or jnp.result_type(leaf)
    return f"{dtype}{list(shape)}"


def _non_finite(tree: Any, what: str) -> str | None:
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        if not bool(jnp.all(jnp.isfinite(jnp.asarray(leaf)))):
            return f"{what}{jax.tree_util.keystr(path)} is not finite"
    return None


def contract_checks(
    name: str,
    net: Any,
    params: Any,
    batch: Any,
    *,
    options: dict[str, Any] | None = None,
    traced: Sequence[str] = (),
    compute: bool = True,
) -> list[CheckResult]:
    """The rule-interface checks on ``net``, ``params`` and ``batch``; stops at the first check that fails.

    ``options`` are static hyperparameters; ``traced`` names numeric hyperparameters a sweep passes as arrays.
    With ``compute=False`` everything is traced with ``jax.eval_shape`` (structure, shapes and dtypes, no
    arithmetic, nothing compiled: what a sweep runs before training) and finiteness is not checked.
    """
    options = dict(options or {})
    key = jax.random.key(0)
    found: dict[str, Any] = {}
    defaults = rule_hyperparameters(name)
    call = (lambda fn, *args: fn(*args)) if compute else jax.eval_shape

    def build():
        found["rule"] = make_rule(name, net, **options)
        found["state"] = call(lambda p: found["rule"].init(jax.random.key(1), p), params)
        return None

    def update():
        result = call(lambda p, s, b: found["rule"].update(p, s, b, key=key), params, found["state"], batch)
        if not (isinstance(result, tuple) and len(result) == 3):
            return f"update returned {type(result).__name__}, expected a tuple (updates, state, metrics)"
        found["updates"], found["new_state"], metrics = result
        if not isinstance(metrics, dict) or "loss" not in metrics:
            return f"metrics must be a dict with a 'loss' entry, got {metrics!r:.80}"
        found["metrics"] = metrics
        return None

    def finite():
        if not compute:
            return None
        return _non_finite(found["updates"], "updates") or _non_finite(found["metrics"], "metrics")

    def traced_values():
        if not traced:
            return None

        def one(values, params, batch):
            rule = make_rule(name, net, **options, **values)
            return rule.update(params, rule.init(jax.random.key(1), params), batch, key=key)[0]

        values = {k: jnp.full((2,), float(defaults.get(k, 1.0)), jnp.float32) for k in traced}
        out = jax.eval_shape(jax.vmap(one, in_axes=(0, None, None)), values, params, batch)
        return _shape_mismatch(jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype), out), params,
                               "traced updates")

    checks = [
        ("builds for the network; init returns a state", build),
        ("update returns (updates, state, metrics) with a 'loss' metric", update),
        ("updates have the structure, shapes and dtypes of params",
         lambda: _shape_mismatch(found["updates"], params, "updates")),
        ("updates and metrics are finite" if compute else "updates and metrics (finiteness not computed)", finite),
        ("update keeps the state's structure, shapes and dtypes",
         lambda: _shape_mismatch(found["new_state"], found["state"], "state")),
        (f"traced hyperparameters under vmap ({', '.join(traced) or 'none swept'})", traced_values),
    ]
    results = []
    for check, probe in checks:
        results.append(_attempt(check, probe))
        if not results[-1].passed:
            break
    return results


def _compiled_checks(name: str, problem: ConformanceProblem) -> list[CheckResult]:
    rule = make_rule(name, problem.net, **problem.hyperparameters)
    params = problem.init_params(jax.random.key(0))
    batch = problem.sample_batch(jax.random.key(2))

    def updates(key):
        return rule.update(params, rule.init(key, params), batch, key=key)[0]

    def jit_matches_eager():
        eager, jitted = updates(jax.random.key(3)), jax.jit(updates)(jax.random.key(3))
        gap = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree.leaves(eager), jax.tree.leaves(jitted)))
        scale = max(float(jnp.max(jnp.abs(a))) for a in jax.tree.leaves(eager)) or 1.0
        return None if gap <= 1e-3 * scale + 1e-5 else f"largest difference {gap:.3g} (update scale {scale:.3g})"

    def deterministic():
        first, second = jax.jit(updates)(jax.random.key(11)), jax.jit(updates)(jax.random.key(11))
        same = all(bool(jnp.array_equal(a, b)) for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(second)))
        return None if same else "two calls with the same key gave different updates"

    return [_attempt("jit matches eager execution", jit_matches_eager),
            _attempt("deterministic for a given key", deterministic)]


def train_on_problem(rule: LearningRule, problem: ConformanceProblem, params: Any, state: Any) -> Any:
    """``problem.steps`` steps of plain SGD (rate ``problem.learning_rate``) on the rule's updates, batches drawn
    from ``problem.sample_batch`` with fixed keys; returns the final parameters. Shared by ``learning_check`` and
    the conformance test suite."""

    @jax.jit
    def train(params, state):
        def step(carry, key):
            params, state = carry
            batch_key, rule_key = jax.random.split(key)
            updates, state, _ = rule.update(params, state, problem.sample_batch(batch_key), key=rule_key)
            return (jax.tree.map(lambda p, u: p - problem.learning_rate * u, params, updates), state), None

        keys = jax.random.split(jax.random.key(21), problem.steps)
        return jax.lax.scan(step, (params, state), keys)[0][0]

    return train(params, state)


def learning_check(name: str, problem: ConformanceProblem) -> CheckResult:
    """Plain SGD on the rule's updates for ``problem.steps`` steps must cut the problem's loss enough."""
    check = "reduces the loss of its learning problem"
    found: dict[str, float] = {}

    def probe():
        rule = make_rule(name, problem.net, **problem.hyperparameters)
        params = problem.init_params(jax.random.key(0))
        evaluation = problem.sample_batch(jax.random.key(99))
        found["before"] = float(problem.loss(params, evaluation))
        trained = train_on_problem(rule, problem, params, rule.init(jax.random.key(1), params))
        found["after"] = float(problem.loss(trained, evaluation))

    result = _attempt(check, probe)
    if not result.passed:
        return result
    before, after = found["before"], found["after"]
    passed = bool(np.isfinite(after)) and after <= problem.max_final_loss_ratio * before
    return CheckResult(check, passed, f"loss {before:.4f} -> {after:.4f} after {problem.steps} SGD steps "
                                      f"(lr {problem.learning_rate}; needs ratio ≤ {problem.max_final_loss_ratio})")


def digits_problem(hidden: int = 32, batch_size: int = 32) -> ConformanceProblem:
    """Learning problem for supervised-MLP rules: a tanh MLP on scikit-learn digits, loss on held-out images."""
    from rulelab.tasks.supervised import load_digits

    data = load_digits()
    net = mlp((data.num_features, hidden, data.num_classes), "tanh")
    x_train, y_train = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    x_test, y_test = jnp.asarray(data.x_test), jnp.asarray(data.y_test)

    def sample_batch(key):
        index = jax.random.randint(key, (batch_size,), 0, x_train.shape[0])
        return Batch(x_train[index], y_train[index])

    def loss(params, batch):
        del batch  # always judged on the held-out images
        return softmax_cross_entropy(net.apply(params, x_test)[0], y_test)

    return ConformanceProblem(net, net.init, sample_batch, loss, {}, learning_rate=0.1, steps=300)


def _numeric_defaults(name: str, exclude: Sequence[str]) -> list[str]:
    return [k for k, v in rule_hyperparameters(name).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in exclude]


def check_rule(name: str, *, learn: bool = True) -> list[CheckResult]:
    """Every conformance check for rule ``name`` on its own problem (or digits for a supervised-MLP rule)."""
    problem = conformance_problem(name) or digits_problem()
    params = problem.init_params(jax.random.key(0))
    results = contract_checks(name, problem.net, params, problem.sample_batch(jax.random.key(2)),
                              options=problem.hyperparameters,
                              traced=_numeric_defaults(name, problem.hyperparameters))
    if all(r.passed for r in results):
        results += _compiled_checks(name, problem)
        if learn:
            results.append(learning_check(name, problem))
    return results


def failures_line(name: str, results: Sequence[CheckResult]) -> str:
    """One line naming every failed check of rule ``name`` and why."""
    failed = "; ".join(f"{r.check}: {r.detail}" for r in results if not r.passed)
    return f"rule {name!r} fails the conformance checks: {failed} (run `rulelab check-rule {name}` for all checks)"


def format_results(name: str, results: Sequence[CheckResult]) -> str:
    """A PASS/FAIL line per check, the reason under each failure."""
    lines = [f"conformance checks for rule {name!r}:"]
    for result in results:
        lines.append(f"  {'PASS' if result.passed else 'FAIL'}  {result.check}")
        if result.detail:
            lines.append(f"        {result.detail}")
    return "\n".join(lines)
