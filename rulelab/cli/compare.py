"""``rulelab compare``: backprop and other rules on one data set, all seeds of a rule vmapped in one program."""

from __future__ import annotations

import argparse

from rulelab.cli.arguments import (
    CommandLineError,
    check_choices,
    int_list,
    name_list,
    positive_float,
    positive_int,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rulelab.harness.compare import DEFAULT_COMPARE_RULES
    from rulelab.harness.train import OPTIMIZERS
    from rulelab.tasks.supervised import DATASETS

    parser.add_argument("--rules", type=name_list, default=DEFAULT_COMPARE_RULES,
                        help=f"comma-separated rule names (default: {','.join(DEFAULT_COMPARE_RULES)})")
    parser.add_argument("--dataset", default="digits", help=f"one of {', '.join(DATASETS)} (default: digits)")
    parser.add_argument("--data-dir", default=None, help="folder with MNIST / Fashion-MNIST files (or $RULELAB_DATA)")
    parser.add_argument("--seeds", type=positive_int, default=8)
    parser.add_argument("--steps", type=positive_int, default=3000)
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument("--eval-every", type=positive_int, default=100)
    parser.add_argument("--hidden", type=int_list, default=(128, 128), help="hidden widths, e.g. 256,256")
    parser.add_argument("--activation", default="tanh")
    parser.add_argument("--optimizer", default="adam", help=f"one of {', '.join(OPTIMIZERS)}")
    parser.add_argument("--lr", type=positive_float, default=None, help="learning rate (default: 1e-3 adam, 0.05 sgd)")
    parser.add_argument("--out", default="runs/compare", help="output folder (default: runs/compare)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    from rulelab.harness.compare import compare_rules, format_table
    from rulelab.harness.train import OPTIMIZERS, TrainConfig
    from rulelab.nets.mlp import ACTIVATIONS
    from rulelab.registry import list_rules
    from rulelab.tasks.supervised import DATASETS, DatasetNotFoundError, load_dataset

    check_choices("rule", args.rules, list_rules())
    check_choices("dataset", [args.dataset], DATASETS)
    check_choices("optimizer", [args.optimizer], OPTIMIZERS)
    check_choices("activation", [args.activation], ACTIVATIONS)
    if args.steps % args.eval_every:
        raise CommandLineError(f"--steps ({args.steps}) must be a multiple of --eval-every ({args.eval_every})")
    try:
        dataset = load_dataset(args.dataset, args.data_dir)
    except DatasetNotFoundError as error:
        raise CommandLineError(str(error)) from None
    config = TrainConfig(hidden=args.hidden, activation=args.activation, optimizer=args.optimizer,
                         steps=args.steps, batch_size=args.batch_size, eval_every=args.eval_every)
    try:
        _, summary = compare_rules(dataset, args.rules, config=config, learning_rate=args.lr, num_seeds=args.seeds,
                                   out_dir=args.out, progress=not args.no_progress)
    except ValueError as error:  # e.g. a rule that rejects the chosen activation, raised before any compute
        raise CommandLineError(str(error)) from None
    sizes = "-".join(map(str, (dataset.num_features, *args.hidden, dataset.num_classes)))
    print(f"{dataset.name}, MLP {sizes} {args.activation}, {args.steps} steps × batch {args.batch_size}, "
          f"{args.seeds} seeds")
    print(format_table(summary))
    print(f"results: {args.out}/results.parquet, {args.out}/summary.json, {args.out}/learning_curves.png")
    return 0
