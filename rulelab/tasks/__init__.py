"""Tasks: supervised data sets, continual-learning suites, RL and meta-RL environments."""

from rulelab.tasks.supervised import DATASETS, Dataset, DatasetNotFoundError, load_dataset

__all__ = ["DATASETS", "Dataset", "DatasetNotFoundError", "load_dataset"]
