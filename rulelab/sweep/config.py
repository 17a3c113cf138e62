"""A sweep's typed configuration: frozen dataclasses, read from a TOML file or built in Python.

    name = "fa_vs_backprop"
    dataset = "digits"
    seeds = 4                         # seed indices 0..3, or a list such as [0, 5, 9]

    [network]
    hidden = [[64], [128, 128]]       # each width tuple is its own compiled group; [128, 128] means one
    activation = "tanh"               # or a list of activations (also structural)

    [training]
    optimizer = "adam"
    steps = 1000
    batch_size = 32
    eval_every = 100

    [grid]                            # shared by every rule; the cartesian product of the lists
    learning_rate = [1e-3, 3e-3]

    [[rules]]
    name = "backprop"                 # a registered rule, or "my_module:my_factory" for one not yet packaged

    [[rules]]
    name = "feedback_alignment"
    grid = { feedback_scale = [0.5, 1.0] }       # crossed with the shared grid
    # points = [{ learning_rate = 1e-2 }, ...]   # or an explicit list of settings, crossed with the grids
    # options = { variant = "uniform" }          # static (non-swept) options: strings, booleans, shape integers

    [execution]
    runs_per_chunk = 32               # runs trained together and written as one Parquet file
    checkpoint_every = 0              # evaluation periods between orbax checkpoints of a chunk (0: none)

Numbers in ``grid`` and ``points`` are traced (vmapped) hyperparameters; rule, options, widths and activation are
structural and give separate compiled groups. Everything is checked by :func:`validate` before any compute, and
every problem is reported as one :class:`SweepConfigError` line.
"""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import math
import tomllib
from pathlib import Path
from typing import Any, Mapping, Sequence

LEARNING_RATE = "learning_rate"
SEQUENCES = (list, tuple, range)  # what a list-valued field accepts (TOML gives lists; Python may give any)


class SweepConfigError(ValueError):
    """A sweep configuration that cannot run; the message is one line naming the field and the valid choices."""


HyperparameterGrid = Mapping[str, Sequence[float]]
HyperparameterPoint = Mapping[str, float]


@dataclasses.dataclass(frozen=True)
class RuleSpec:
    """One rule of the sweep with its own grid, explicit settings and static options."""

    name: str
    grid: HyperparameterGrid = dataclasses.field(default_factory=dict)
    points: Sequence[HyperparameterPoint] = ()
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class NetworkSpec:
    """Structural network choices; every combination is a separately compiled group."""

    hidden: Sequence[Sequence[int]] = ((128, 128),)
    activation: Sequence[str] = ("tanh",)


@dataclasses.dataclass(frozen=True)
class TrainingSpec:
    optimizer: str = "adam"
    steps: int = 1000
    batch_size: int = 32
    eval_every: int = 100


@dataclasses.dataclass(frozen=True)
class ExecutionSpec:
    """How the sweep is executed; never part of a run's identity."""

    runs_per_chunk: int = 32
    checkpoint_every: int = 0  # evaluation periods between checkpoints inside a chunk; 0 = whole chunks only


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    rules: Sequence[RuleSpec]
    dataset: str = "digits"
    name: str = "sweep"
    seeds: Sequence[int] = (0, 1, 2, 3)
    base_seed: int = 0
    grid: HyperparameterGrid = dataclasses.field(default_factory=dict)
    network: NetworkSpec = NetworkSpec()
    training: TrainingSpec = TrainingSpec()
    execution: ExecutionSpec = ExecutionSpec()
    data_dir: str | None = None


# --- reading TOML into the dataclasses --------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise SweepConfigError(message)


def _check_keys(table: Mapping[str, Any], valid: Sequence[str], where: str) -> None:
    unknown = sorted(set(table) - set(valid))
    _require(not unknown, f"{where}: unknown key {', '.join(map(repr, unknown))}; valid: {', '.join(valid)}")


def _field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _table(data: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    _require(isinstance(value, Mapping), f"{where}{key} must be a table, got {_describe(value)}")
    return value


def _integer(value: Any, where: str, *, minimum: int) -> int:
    _require(isinstance(value, int) and not isinstance(value, bool) and value >= minimum,
             f"{where} must be an integer ≥ {minimum}, got {_describe(value)}")
    return value


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, SEQUENCES) else [value]


def _widths(value: Any, where: str) -> tuple[tuple[int, ...], ...]:
    """``[128, 128]`` is one width tuple; ``[[64], [128, 128]]`` is two; ``[]`` is no hidden layer."""
    _require(isinstance(value, SEQUENCES), f"{where} must be a list of widths, got {_describe(value)}")
    groups = value if value and all(isinstance(v, SEQUENCES) for v in value) else [value]
    for group in groups:
        _require(all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in group),
                 f"{where} must hold positive integer widths like [128, 128], got {group!r}")
    return tuple(tuple(group) for group in groups)


def _grid(value: Any, where: str) -> dict[str, tuple[float, ...]]:
    _require(isinstance(value, Mapping), f"{where} must be a table of name = [values], got {_describe(value)}")
    grid = {}
    for name, values in value.items():
        values = _as_list(values)
        _require(len(values) > 0, f"{where}.{name} is empty: give at least one value")
        for v in values:
            _require(_is_number(v), f"{where}.{name} must hold numbers (swept values are traced), got "
                                    f"{_describe(v)}; put strings and booleans in options")
        grid[name] = tuple(float(v) for v in values)
    return grid


def _point(value: Any, where: str) -> dict[str, float]:
    _require(isinstance(value, Mapping) and value, f"{where} must be a non-empty table, got {_describe(value)}")
    for name, number in value.items():
        _require(_is_number(number), f"{where}.{name} must be a number, got {_describe(number)}")
    return {k: float(v) for k, v in value.items()}


def _rule_spec(data: Any, where: str) -> RuleSpec:
    if isinstance(data, str):
        return RuleSpec(data)
    _require(isinstance(data, Mapping), f"{where} must be a rule name or a table, got {_describe(data)}")
    _check_keys(data, _field_names(RuleSpec), where)
    _require(isinstance(data.get("name"), str), f"{where}.name must be a rule name, got {_describe(data.get('name'))}")
    points = data.get("points", [])
    _require(isinstance(points, SEQUENCES), f"{where}.points must be a list of tables, got {_describe(points)}")
    options = data.get("options", {})
    _require(isinstance(options, Mapping), f"{where}.options must be a table, got {_describe(options)}")
    return RuleSpec(
        data["name"],
        grid=_grid(data.get("grid", {}), f"{where}.grid"),
        points=tuple(_point(p, f"{where}.points[{i}]") for i, p in enumerate(points)),
        options=dict(options),
    )


def _seeds(value: Any) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        return tuple(range(_integer(value, "seeds", minimum=1)))
    _require(isinstance(value, SEQUENCES) and value,
             f"seeds must be a count or a non-empty list of seed indices, got {_describe(value)}")
    seeds = tuple(_integer(s, "seeds[]", minimum=0) for s in value)
    _require(len(set(seeds)) == len(seeds), f"seeds must not repeat, got {list(seeds)}")
    return seeds


def config_from_dict(data: Mapping[str, Any]) -> SweepConfig:
    """Build a :class:`SweepConfig` from parsed TOML, checking every type; raises :class:`SweepConfigError`."""
    _check_keys(data, _field_names(SweepConfig), "config")
    rules = data.get("rules")
    _require(isinstance(rules, SEQUENCES) and rules, "config: rules must be a non-empty list ([[rules]] tables or names)")
    for key in ("name", "dataset"):
        _require(isinstance(data.get(key, ""), str), f"{key} must be a string, got {_describe(data.get(key))}")
    network = _table(data, "network", "")
    _check_keys(network, _field_names(NetworkSpec), "[network]")
    training = _table(data, "training", "")
    _check_keys(training, _field_names(TrainingSpec), "[training]")
    execution = _table(data, "execution", "")
    _check_keys(execution, _field_names(ExecutionSpec), "[execution]")
    activations = _as_list(network.get("activation", "tanh"))
    _require(activations and all(isinstance(a, str) for a in activations),
             f"[network] activation must be a name or a list of names, got {network.get('activation')!r}")
    data_dir = data.get("data_dir")
    _require(data_dir is None or isinstance(data_dir, str), f"data_dir must be a path, got {_describe(data_dir)}")
    _require(isinstance(training.get("optimizer", "adam"), str),
             f"[training] optimizer must be a name, got {_describe(training.get('optimizer'))}")
    return SweepConfig(
        rules=tuple(_rule_spec(r, f"rules[{i}]") for i, r in enumerate(rules)),
        dataset=data.get("dataset", "digits"),
        name=data.get("name", "sweep"),
        seeds=_seeds(data.get("seeds", 4)),
        base_seed=_integer(data.get("base_seed", 0), "base_seed", minimum=0),
        grid=_grid(data.get("grid", {}), "[grid]"),
        network=NetworkSpec(
            hidden=_widths(network.get("hidden", [128, 128]), "[network] hidden"),
            activation=tuple(activations),
        ),
        training=TrainingSpec(
            optimizer=training.get("optimizer", "adam"),
            **{k: _integer(training[k], f"[training] {k}", minimum=1)
               for k in ("steps", "batch_size", "eval_every") if k in training},
        ),
        execution=ExecutionSpec(
            **{k: _integer(execution[k], f"[execution] {k}", minimum=1 if k == "runs_per_chunk" else 0)
               for k in ("runs_per_chunk", "checkpoint_every") if k in execution},
        ),
        data_dir=data_dir,
    )


def load_config(path: str | Path) -> SweepConfig:
    """Read a sweep TOML file; every problem (missing file, bad TOML, wrong type) is one-line SweepConfigError."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise SweepConfigError(f"cannot read config {str(path)!r}: {error.strerror or error}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SweepConfigError(f"{path}: invalid TOML: {error}") from None
    return config_from_dict(data)


# --- checking names against what rulelab provides ---------------------------------------------------------------


def _check_choice(kind: str, name: str, valid: Sequence[str]) -> None:
    _require(name in valid, f"unknown {kind} {name!r}; valid: {', '.join(valid)}")


def resolve_rule(spec: str) -> str:
    """A rule name the registry knows: a registered name as is, or ``module:factory`` imported and registered.

    ``module:factory`` lets a rule be checked and swept while it is being written, before it is packaged.
    """
    from rulelab.registry import list_rules, register_rule

    if ":" not in spec:
        _check_choice("rule", spec, list_rules())
        return spec
    module_name, _, attribute = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise SweepConfigError(f"cannot load rule {spec!r}: {type(error).__name__}: {error}") from None
    _require(callable(factory), f"rule {spec!r} is not a rule factory (not callable)")
    if spec not in list_rules():
        register_rule(spec)(factory)
    return spec


def rule_settings(config: SweepConfig, spec: RuleSpec) -> list[dict[str, float]]:
    """Every hyperparameter setting of one rule: shared grid × rule grid × points.

    The rule's grid replaces a shared-grid entry of the same name, and a point's value replaces a grid value.
    """
    grid = {**config.grid, **spec.grid}
    names = sorted(grid)
    crossed = [dict(zip(names, values)) for values in itertools.product(*(grid[n] for n in names))]
    points = list(spec.points) or [{}]
    return [{**g, **p} for g in crossed for p in points]


def validate(config: SweepConfig) -> SweepConfig:
    """Check types, names and hyperparameters against the installed rulelab before any data is loaded.

    Returns the config with every field in canonical form (tuples, floats), whether it came from TOML or Python.
    """
    from rulelab.harness.train import OPTIMIZERS
    from rulelab.nets.mlp import ACTIVATIONS
    from rulelab.registry import rule_hyperparameters
    from rulelab.tasks.supervised import DATASETS

    _require(isinstance(config, SweepConfig), f"expected a SweepConfig, got {type(config).__name__}")
    config = config_from_dict(dataclasses.asdict(config))  # the TOML reader's type checks, for Python configs too
    _check_choice("dataset", config.dataset, DATASETS)
    _check_choice("optimizer", config.training.optimizer, list(OPTIMIZERS))
    for activation in config.network.activation:
        _check_choice("activation", activation, list(ACTIVATIONS))
    _require(len(config.network.hidden) > 0, "[network] hidden is empty: give at least one width tuple")
    _require(len(config.network.activation) > 0, "[network] activation is empty: give at least one activation")
    _require(len(config.seeds) > 0, "seeds is empty: give a count or a list of seed indices")
    training = config.training
    _require(training.steps % training.eval_every == 0,
             f"[training] steps ({training.steps}) must be a multiple of eval_every ({training.eval_every})")
    names = [spec.name for spec in config.rules]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    _require(not duplicated, f"rule {duplicated[0] if duplicated else ''!r} is listed twice; "
                             f"merge its grids or use points")
    for spec in config.rules:
        resolve_rule(spec.name)
        valid = rule_hyperparameters(spec.name)
        for key in spec.options:
            _require(key in valid, f"rule {spec.name!r} has no option {key!r}; valid: {', '.join(valid) or '(none)'}")
        settings = rule_settings(config, spec)
        for key in sorted({k for s in settings for k in s} - {LEARNING_RATE}):
            _require(key in valid, f"rule {spec.name!r} has no hyperparameter {key!r}; "
                                   f"valid: {', '.join([LEARNING_RATE, *valid])}")
            _require(key not in spec.options, f"rule {spec.name!r}: {key!r} is both swept and a static option")
        for setting in settings:
            bad = {k: v for k, v in setting.items() if not math.isfinite(v)}
            _require(not bad, f"rule {spec.name!r}: hyperparameter values must be finite, got {bad}")
    return config
