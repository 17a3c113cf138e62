"""rulelab: a JAX laboratory for biologically plausible learning rules.

A rule is a pair of pure functions (``init``, ``update``) returning gradient-signed updates, so every rule is
compared with backprop on the same footing and any optax optimizer applies it.
"""

from rulelab import rules as _builtin_rules  # noqa: F401  (registers the built-in rules)
from rulelab.core import (
    Batch,
    EmptyState,
    LearningRule,
    accuracy,
    angle_degrees,
    softmax_cross_entropy,
    tree_cosine,
)
from rulelab.harness import TrainConfig, make_train, make_train_program, run_grid
from rulelab.harness.sharding import use_host_device_per_core
from rulelab.nets import Activity, Network, mlp
from rulelab.registry import list_rules, make_rule, register_rule, rule_hyperparameters
from rulelab.tasks import DATASETS, Dataset, load_dataset

__version__ = "0.1.0"

__all__ = [
    "Activity", "Batch", "DATASETS", "Dataset", "EmptyState", "LearningRule", "Network", "TrainConfig",
    "accuracy", "angle_degrees", "list_rules", "load_dataset", "make_rule", "make_train", "make_train_program",
    "mlp", "register_rule", "rule_hyperparameters", "run_grid", "softmax_cross_entropy", "tree_cosine",
    "use_host_device_per_core",
]
