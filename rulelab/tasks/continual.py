"""Continual-learning suites and the three scenarios of van de Ven, Tuytelaars & Tolias (2022, Nat. Mach. Intell.).

A *suite* is a fixed sequence of tasks built from one data set:

- ``split-<data>``: the 10 classes cut into tasks of consecutive classes (5 tasks of 2 by default: 0/1, 2/3, ...);
- ``permuted-<data>``: every task holds all 10 classes under its own fixed pixel permutation (task 0 unpermuted);
- ``rotated-<data>``: every task holds all 10 classes rotated by its own angle, ``t · 180° / num_tasks``
  (bilinear interpolation; image data only).

A *scenario* fixes what the network sees and must output (``C`` classes per task, ``T`` tasks, local label ``k``):

- ``task``: task-incremental, task identity given; ``T`` output heads of ``C`` units; the input carries a one-hot
  task code and the logits of the other heads are masked out (multi-head network); label ``t·C + k``;
- ``domain``: domain-incremental, one ``C``-way head shared by every task; label ``k``;
- ``class``: class-incremental, one ``T·C``-way head, no task identity; label ``t·C + k``.

Every input is a non-negative rate (``as_rates``: images in [0, 1], signed MNIST-1D as ON/OFF channel pairs), so
it can also drive spikes (the ``sleep_replay`` rule turns the mean input into Poisson spikes). Everything the
training loop touches is a pure, jittable function of array leaves (``TaskStream``), so a whole task sequence runs
inside one ``lax.scan``.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rulelab.core import Array, Batch, PRNGKey
from rulelab.nets.mlp import Activity, Network, mlp
from rulelab.tasks.supervised import load_dataset

SUITE_KINDS = ("split", "permuted", "rotated")
SUITE_DATASETS = ("digits", "mnist1d", "mnist", "fashion-mnist")
IMAGE_DATASETS = ("digits", "mnist", "fashion-mnist")  # square images: the ones a rotation is defined for
SUITES = tuple(
    f"{kind}-{data}" for kind in SUITE_KINDS for data in SUITE_DATASETS
    if kind != "rotated" or data in IMAGE_DATASETS
)
SCENARIOS = ("task", "domain", "class")
DEFAULT_NUM_TASKS = {"split": 5, "permuted": 10, "rotated": 5}
MASKED_LOGIT = -1e4  # logit given to the inactive heads of a task-incremental network (softmax weight exp(-1e4) = 0)


class ContinualSuite(NamedTuple):
    """A fixed task sequence over one data set (host-side numpy arrays)."""

    name: str
    x_train: np.ndarray  # [n_train, features] float32 non-negative rates
    label_train: np.ndarray  # [n_train] int32, class index within its task (0..classes_per_task-1)
    train_index: np.ndarray  # [tasks, max_train] int32 rows of x_train per task (padded past train_count)
    train_count: np.ndarray  # [tasks] int32
    x_test: np.ndarray  # [n_test, features]
    label_test: np.ndarray  # [n_test] int32
    test_index: np.ndarray  # [tasks, max_test] int32
    test_count: np.ndarray  # [tasks] int32
    pixel_index: np.ndarray | None  # [tasks, features, taps] source feature of each input feature; None = identity
    pixel_weight: np.ndarray | None  # [tasks, features, taps] interpolation weights
    classes_per_task: int
    task_names: tuple[str, ...]

    @property
    def num_tasks(self) -> int:
        return len(self.task_names)

    @property
    def num_features(self) -> int:
        return int(self.x_train.shape[1])


class UnknownSuiteError(ValueError):
    """A suite or scenario name that does not exist."""


def as_rates(x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inputs as non-negative rates: non-negative data divided by the training maximum (images to [0, 1]);
    signed data (MNIST-1D) split into ON/OFF channel pairs ``[relu(x), relu(-x)]``, which doubles the features,
    loses nothing and keeps the data's scale (squeezing it into [0, 1] slows learning tenfold)."""
    if x_train.min() >= 0:
        peak = float(x_train.max()) or 1.0
        return (x_train / peak).astype(np.float32), (x_test / peak).astype(np.float32)
    on_off = lambda x: np.concatenate([np.maximum(x, 0), np.maximum(-x, 0)], axis=1).astype(np.float32)  # noqa: E731
    return on_off(x_train), on_off(x_test)


def _padded_rows(groups: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Stack index lists of unequal length into ``[groups, longest]`` (padding repeats row 0) and their counts."""
    longest = max(len(g) for g in groups)
    table = np.stack([np.concatenate([g, np.full(longest - len(g), g[0])]) for g in groups]).astype(np.int32)
    return table, np.array([len(g) for g in groups], np.int32)


def _capped(rows: np.ndarray, cap: int | None) -> np.ndarray:
    return rows if cap is None else rows[:cap]


def permutation_maps(num_features: int, num_tasks: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Task 0 keeps the pixel order; task ``t > 0`` uses a fixed random permutation. Shapes ``[tasks, features, 1]``."""
    rng = np.random.default_rng(seed)
    index = [np.arange(num_features)] + [rng.permutation(num_features) for _ in range(num_tasks - 1)]
    return np.stack(index)[..., None].astype(np.int32), np.ones((num_tasks, num_features, 1), np.float32)


def rotation_map(side: int, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear rotation of a ``side × side`` image by ``degrees`` (clockwise as displayed, row 0 at the top) as 4
    taps per output pixel: index and weight arrays ``[side², 4]``.

    Output pixel ``p`` reads the input at ``R(-θ)(p - c) + c`` (``c`` the image centre); taps outside the image get
    weight 0, so the rotated image is zero-padded.
    """
    theta = np.deg2rad(degrees)
    centre = (side - 1) / 2.0
    rows, cols = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    dy, dx = rows.ravel() - centre, cols.ravel() - centre
    source_row = np.cos(theta) * dy - np.sin(theta) * dx + centre
    source_col = np.sin(theta) * dy + np.cos(theta) * dx + centre
    row0, col0 = np.floor(source_row), np.floor(source_col)
    fr, fc = source_row - row0, source_col - col0
    index, weight = [], []
    for r, c, w in ((row0, col0, (1 - fr) * (1 - fc)), (row0, col0 + 1, (1 - fr) * fc),
                    (row0 + 1, col0, fr * (1 - fc)), (row0 + 1, col0 + 1, fr * fc)):
        inside = (r >= 0) & (r < side) & (c >= 0) & (c < side)
        index.append(np.where(inside, r * side + c, 0))
        weight.append(np.where(inside, w, 0.0))
    return np.stack(index, -1).astype(np.int32), np.stack(weight, -1).astype(np.float32)


def _holdout_split(dataset, holdout: str):
    """``(x_train, y_train, x_eval, y_eval)``: the test set, or a fixed 20% of the training set for tuning."""
    if holdout == "test":
        return dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test
    if holdout != "validation":
        raise ValueError(f"unknown holdout {holdout!r}; valid: test, validation")
    order = np.random.default_rng(1).permutation(len(dataset.y_train))
    n_val = len(order) // 5
    val, train = order[:n_val], order[n_val:]
    return dataset.x_train[train], dataset.y_train[train], dataset.x_train[val], dataset.y_train[val]


def load_continual_suite(
    name: str,
    *,
    num_tasks: int | None = None,
    data_dir: str | os.PathLike | None = None,
    max_train_per_task: int | None = None,
    max_test_per_task: int | None = None,
    holdout: str = "test",
    seed: int = 0,
) -> ContinualSuite:
    """Build suite ``name`` (one of ``SUITES``); ``seed`` fixes the permutations (part of the benchmark, not a run).

    ``holdout="validation"`` evaluates on a fixed 20% of the training set instead of the test set (for tuning).
    MNIST / Fashion-MNIST are read from the user's files (``rulelab.tasks.supervised.load_dataset``).
    """
    if name not in SUITES:
        raise UnknownSuiteError(f"unknown suite {name!r}; valid: {', '.join(SUITES)}")
    kind, data_name = name.split("-", 1)
    num_tasks = DEFAULT_NUM_TASKS[kind] if num_tasks is None else int(num_tasks)
    if kind == "split" and num_tasks not in (2, 5):
        raise ValueError(f"a split suite has 2 or 5 tasks (10 classes), got {num_tasks}")
    if num_tasks < 2:
        raise ValueError(f"a continual suite needs at least 2 tasks, got {num_tasks}")
    dataset = load_dataset(data_name.replace("-", "_"), data_dir)
    x_train, y_train, x_test, y_test = _holdout_split(dataset, holdout)
    x_train, x_test = as_rates(x_train, x_test)
    y_train, y_test = y_train.astype(np.int32), y_test.astype(np.int32)
    features = x_train.shape[1]

    if kind == "split":
        classes_per_task = dataset.num_classes // num_tasks
        task_classes = np.arange(dataset.num_classes).reshape(num_tasks, classes_per_task)
        train_groups = [_capped(np.flatnonzero(np.isin(y_train, c)), max_train_per_task) for c in task_classes]
        test_groups = [_capped(np.flatnonzero(np.isin(y_test, c)), max_test_per_task) for c in task_classes]
        label_train, label_test = y_train % classes_per_task, y_test % classes_per_task
        pixel_index = pixel_weight = None
        task_names = tuple("/".join(map(str, c)) for c in task_classes)
    else:
        classes_per_task = dataset.num_classes
        train_groups = [_capped(np.arange(len(y_train)), max_train_per_task)] * num_tasks
        test_groups = [_capped(np.arange(len(y_test)), max_test_per_task)] * num_tasks
        label_train, label_test = y_train, y_test
        if kind == "permuted":
            pixel_index, pixel_weight = permutation_maps(features, num_tasks, seed)
            task_names = tuple(f"permutation {t}" for t in range(num_tasks))
        else:
            side = int(round(np.sqrt(features)))
            angles = [t * 180.0 / num_tasks for t in range(num_tasks)]
            maps = [rotation_map(side, a) for a in angles]
            pixel_index, pixel_weight = np.stack([m[0] for m in maps]), np.stack([m[1] for m in maps])
            task_names = tuple(f"{a:g}°" for a in angles)
    train_index, train_count = _padded_rows(train_groups)
    test_index, test_count = _padded_rows(test_groups)
    return ContinualSuite(name, x_train, label_train.astype(np.int32), train_index, train_count, x_test,
                          label_test.astype(np.int32), test_index, test_count, pixel_index, pixel_weight,
                          classes_per_task, task_names)


class ScenarioLayout(NamedTuple):
    """What a scenario asks of the network."""

    name: str
    num_outputs: int
    context_width: int  # task one-hot columns appended to the input (task-incremental only)


def scenario_layout(suite: ContinualSuite, scenario: str) -> ScenarioLayout:
    if scenario not in SCENARIOS:
        raise UnknownSuiteError(f"unknown scenario {scenario!r}; valid: {', '.join(SCENARIOS)}")
    tasks, classes = suite.num_tasks, suite.classes_per_task
    if scenario == "task":
        return ScenarioLayout(scenario, tasks * classes, tasks)
    if scenario == "domain":
        return ScenarioLayout(scenario, classes, 0)
    return ScenarioLayout(scenario, tasks * classes, 0)


def multi_head(net: Network, *, num_heads: int) -> Network:
    """A task-incremental network: the last ``num_heads`` input columns are a one-hot task code; only that task's
    head (a contiguous block of ``outputs / num_heads`` logits) stays, the others are set to ``MASKED_LOGIT``.

    The task code is also an input of the first layer (a learned per-task bias), so ``sizes`` describes the
    parameters exactly and every rule built for ``rulelab.mlp`` works unchanged.
    """
    head_size = net.sizes[-1] // num_heads

    def apply(params, x):
        logits, activity = net.apply(params, x)
        active = jnp.repeat(x[:, -num_heads:], head_size, axis=1) > 0.5
        masked = jnp.where(active, logits, MASKED_LOGIT)
        return masked, Activity(activity.inputs, activity.preactivations[:-1] + (masked,))

    return net._replace(apply=apply)


def without_bias(net: Network) -> Network:
    """The network with every bias held at zero (SRC's networks have none), whatever the bias leaves hold."""

    def apply(params, x):
        return net.apply(tuple({**layer, "bias": jnp.zeros_like(layer["bias"])} for layer in params), x)

    return net._replace(apply=apply)


def scenario_network(
    suite: ContinualSuite, scenario: str, hidden: tuple[int, ...], activation: str = "relu", *, bias: bool = True
) -> Network:
    """The MLP a scenario needs: inputs (plus task code), ``hidden`` widths, the scenario's outputs."""
    layout = scenario_layout(suite, scenario)
    net = mlp((suite.num_features + layout.context_width, *hidden, layout.num_outputs), activation)
    net = net if bias else without_bias(net)
    return multi_head(net, num_heads=layout.context_width) if scenario == "task" else net


class TaskStream(NamedTuple):
    """Device arrays of a suite under one scenario, with pure sampling and evaluation functions."""

    x_train: Array
    label_train: Array
    train_index: Array
    train_count: Array
    x_test: Array
    label_test: Array
    test_index: Array
    test_count: Array
    pixel_index: Array | None
    pixel_weight: Array | None
    num_tasks: int
    classes_per_task: int
    scenario: str

    def inputs(self, x: Array, tasks: Array) -> Array:
        """Examples ``x`` [n, features] as task ``tasks`` [n] presents them (pixel map, task code)."""
        if self.pixel_index is not None:
            index, weight = self.pixel_index[tasks], self.pixel_weight[tasks]  # [n, features, taps]
            taps = jnp.take_along_axis(x, index.reshape(x.shape[0], -1), axis=1).reshape(index.shape)
            x = jnp.sum(taps * weight, axis=-1)
        if self.scenario == "task":
            x = jnp.concatenate([x, jax.nn.one_hot(tasks, self.num_tasks, dtype=x.dtype)], axis=1)
        return x

    def labels(self, label: Array, tasks: Array) -> Array:
        """Scenario labels: the local label (domain) or ``task · C + label`` (task, class)."""
        return label if self.scenario == "domain" else tasks * self.classes_per_task + label

    def sample(self, key: PRNGKey, tasks: Array) -> Batch:
        """One training example of each task in ``tasks`` [n], uniformly from that task's training set."""
        position = jax.random.randint(key, tasks.shape, 0, self.train_count[tasks])
        rows = self.train_index[tasks, position]
        return Batch(self.inputs(self.x_train[rows], tasks), self.labels(self.label_train[rows], tasks))

    def test_set(self, task: Array) -> tuple[Batch, Array]:
        """The (padded) test set of ``task`` and its validity mask [max_test]."""
        rows = self.test_index[task]
        tasks = jnp.full(rows.shape, task)
        mask = jnp.arange(rows.shape[0]) < self.test_count[task]
        return Batch(self.inputs(self.x_test[rows], tasks), self.labels(self.label_test[rows], tasks)), mask


def task_stream(suite: ContinualSuite, scenario: str) -> TaskStream:
    """The device arrays of ``suite`` as ``scenario`` presents them."""
    scenario_layout(suite, scenario)  # validates the name

    def maybe(array):
        return None if array is None else jnp.asarray(array)

    return TaskStream(
        jnp.asarray(suite.x_train), jnp.asarray(suite.label_train), jnp.asarray(suite.train_index),
        jnp.asarray(suite.train_count), jnp.asarray(suite.x_test), jnp.asarray(suite.label_test),
        jnp.asarray(suite.test_index), jnp.asarray(suite.test_count), maybe(suite.pixel_index),
        maybe(suite.pixel_weight), suite.num_tasks, suite.classes_per_task, scenario,
    )
