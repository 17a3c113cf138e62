"""``rulelab continual``: continual-learning methods on a task suite, every seed of a method in one program."""

from __future__ import annotations

import argparse
from typing import Any

from rulelab.cli.arguments import CommandLineError, check_choices, int_list, name_list, positive_float, positive_int


def key_value(text: str) -> tuple[str, str]:
    """``"buffer_size=500"`` -> ``("buffer_size", "500")``."""
    key, separator, value = text.partition("=")
    if not separator or not key.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE like buffer_size=500, got {text!r}")
    return key.strip(), value.strip()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rulelab.harness.continual import DEFAULT_METHODS
    from rulelab.tasks.continual import SCENARIOS, SUITES

    parser.add_argument("--suite", default="split-digits", help=f"one of {', '.join(SUITES)} (default: split-digits)")
    parser.add_argument("--scenario", default="class", help=f"one of {', '.join(SCENARIOS)} (default: class)")
    parser.add_argument("--rules", type=name_list, default=DEFAULT_METHODS,
                        help="comma-separated methods: fine_tuning, joint, any rule, or a wrapper chain like "
                             f"sleep_replay:experience_replay (default: {','.join(DEFAULT_METHODS)})")
    parser.add_argument("--inner", default="backprop",
                        help="learning rule inside fine_tuning, joint and every wrapper (default: backprop)")
    parser.add_argument("--seeds", type=positive_int, default=5)
    parser.add_argument("--steps-per-task", type=positive_int, default=200)
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument("--hidden", type=int_list, default=(100, 100), help="hidden widths (default: 100,100)")
    parser.add_argument("--activation", default="relu")
    parser.add_argument("--no-bias", action="store_true", help="hold every bias at zero (SRC's networks have none)")
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--lr", type=positive_float, default=None, help="learning rate (default: 1e-3 adam, 0.05 sgd)")
    parser.add_argument("--num-tasks", type=positive_int, default=None,
                        help="tasks of a permuted / rotated suite (default 10 / 5); 2 or 5 for a split suite")
    parser.add_argument("--max-train-per-task", type=positive_int, default=None)
    parser.add_argument("--max-test-per-task", type=positive_int, default=None)
    parser.add_argument("--set", dest="settings", type=key_value, action="append", default=[], metavar="NAME=VALUE",
                        help="a rule hyperparameter for every method that has it, e.g. --set buffer_size=500 "
                             "(repeatable; integers are structural, floats are traced)")
    parser.add_argument("--data-dir", default=None, help="folder with MNIST / Fashion-MNIST files (or $RULELAB_DATA)")
    parser.add_argument("--out", default="runs/continual", help="output folder (default: runs/continual)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


# type of a hyperparameter's default -> (parser, what the user must write)
_SETTING_KINDS = {
    bool: (lambda t: {"true": True, "false": False}[t.lower()], "true or false"),
    int: (int, "an integer"),
    float: (float, "a number"),
    str: (str, "text"),
}


def _parse_setting(name: str, text: str, default: Any) -> Any:
    """``text`` as the type of the default; a ``None`` default takes an integer, a number or text."""
    if default is None:
        for parse in (int, float):
            try:
                return parse(text)
            except ValueError:
                continue
        return text
    parse, expected = _SETTING_KINDS.get(type(default), (str, "text"))
    try:
        return parse(text)
    except (KeyError, ValueError):
        raise CommandLineError(f"--set {name}={text}: expected {expected}") from None


def split_settings(settings: list[tuple[str, str]], methods: list) -> tuple[tuple[tuple[str, Any], ...], dict]:
    """``--set`` values → (static rule options, traced float hyperparameters); unknown names raise."""
    from rulelab.harness.continual import chain_hyperparameters

    defaults: dict[str, Any] = {}
    for method in methods:
        defaults.update(chain_hyperparameters(method.chain))
    static, traced = [], {}
    for name, text in settings:
        if name not in defaults:
            raise CommandLineError(f"--set {name}: no chosen method has it; valid: {', '.join(sorted(defaults))}")
        value = _parse_setting(name, text, defaults[name])
        if isinstance(value, float) and not isinstance(value, bool):
            traced[name] = value
        else:
            static.append((name, value))
    return tuple(static), traced


def run(args: argparse.Namespace) -> int:
    from rulelab.harness.continual import ContinualConfig, format_continual_table, parse_method, run_continual
    from rulelab.harness.train import OPTIMIZERS
    from rulelab.nets.mlp import ACTIVATIONS
    from rulelab.registry import UnknownRuleError, list_rules
    from rulelab.tasks.continual import SCENARIOS, SUITES, load_continual_suite
    from rulelab.tasks.supervised import DatasetNotFoundError

    check_choices("suite", [args.suite], SUITES)
    check_choices("scenario", [args.scenario], SCENARIOS)
    check_choices("inner rule", [args.inner], list_rules())
    check_choices("optimizer", [args.optimizer], OPTIMIZERS)
    check_choices("activation", [args.activation], ACTIVATIONS)
    methods = []
    for spec in args.rules:
        try:
            methods.append(parse_method(spec, args.inner))
        except UnknownRuleError:
            unknown = [name for name in spec.split(":") if name not in list_rules()]
            raise CommandLineError(f"unknown rule {', '.join(map(repr, unknown))} in {spec!r}; valid: "
                                   f"fine_tuning, joint, {', '.join(list_rules())}") from None
        except ValueError as error:
            raise CommandLineError(str(error)) from None
    rule_options, traced = split_settings(args.settings, methods)
    try:
        suite = load_continual_suite(args.suite, num_tasks=args.num_tasks, data_dir=args.data_dir,
                                     max_train_per_task=args.max_train_per_task,
                                     max_test_per_task=args.max_test_per_task)
    except (DatasetNotFoundError, ValueError) as error:
        raise CommandLineError(str(error)) from None
    config = ContinualConfig(inner=args.inner, rule_options=rule_options, hidden=args.hidden,
                             activation=args.activation, bias=not args.no_bias, optimizer=args.optimizer,
                             steps_per_task=args.steps_per_task, batch_size=args.batch_size)
    hparams = {**traced, **({"learning_rate": args.lr} if args.lr is not None else {})}
    try:
        result = run_continual(suite, args.scenario, args.rules, config=config, hparams=hparams,
                               num_seeds=args.seeds, out_dir=args.out, progress=not args.no_progress)
    except (TypeError, ValueError) as error:  # a hyperparameter a rule rejects (e.g. a non-positive buffer)
        raise CommandLineError(str(error)) from None
    print(f"{suite.name} ({suite.num_tasks} tasks: {', '.join(suite.task_names)}), {args.scenario}-incremental, "
          f"MLP hidden {','.join(map(str, args.hidden))} {args.activation}, {args.steps_per_task} steps/task × batch "
          f"{args.batch_size}, inner rule {args.inner}, {args.seeds} seeds")
    print(format_continual_table(result))
    print(f"results: {args.out}/results.parquet, {args.out}/runs.parquet, {args.out}/summary.json, "
          f"{args.out}/accuracy_matrices.png, {args.out}/accuracy_over_tasks.png")
    return 0
