"""Supervised data sets: embedded ones (digits, MNIST-1D) and the user's own MNIST / Fashion-MNIST files.

Nothing is ever downloaded. ``digits`` ships inside scikit-learn; ``mnist1d`` is generated locally with the
``mnist1d`` package's ``make_dataset`` (its default arguments, seed 42) and cached as ``.npz``; ``mnist`` and
``fashion_mnist`` are read from IDX files (plain or .gz, torchvision's ``raw/`` layout too) or Keras's
``mnist.npz`` in ``--data-dir`` / ``$RULELAB_DATA``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from rulelab.tasks.idx import IDX_FILES, load_idx_folder


class Dataset(NamedTuple):
    name: str
    x_train: np.ndarray  # [n_train, features] float32
    y_train: np.ndarray  # [n_train] int32
    x_test: np.ndarray  # [n_test, features] float32
    y_test: np.ndarray  # [n_test] int32
    num_classes: int

    @property
    def num_features(self) -> int:
        return int(self.x_train.shape[1])


class DatasetNotFoundError(FileNotFoundError):
    """The user's data files are not where rulelab looks for them."""


DATASETS = ("digits", "mnist1d", "mnist", "fashion_mnist")


def _cache_dir() -> Path:
    return Path(os.environ.get("RULELAB_CACHE", Path.home() / ".cache" / "rulelab"))


def load_digits(test_fraction: float = 0.2) -> Dataset:
    """scikit-learn's 8×8 digits (1797 images), pixels scaled to [0, 1], a fixed stratified-by-shuffle split."""
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int32)
    order = np.random.default_rng(0).permutation(len(y))  # a fixed split, independent of any global RNG
    n_test = int(round(test_fraction * len(y)))
    test, train = order[:n_test], order[n_test:]
    return Dataset("digits", x[train], y[train], x[test], y[test], 10)


def load_mnist1d() -> Dataset:
    """MNIST-1D (Greydanus 2020): 4000 train / 1000 test sequences of length 40, generated locally and cached."""
    path = _cache_dir() / "mnist1d.npz"
    if not path.is_file():
        from mnist1d.data import get_dataset_args, make_dataset

        saved_state = np.random.get_state()  # make_dataset seeds numpy's global RNG; leave the user's untouched
        try:
            data = make_dataset(get_dataset_args())
        finally:
            np.random.set_state(saved_state)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(temporary, x=data["x"], y=data["y"], x_test=data["x_test"], y_test=data["y_test"])
        os.replace(temporary, path)
    with np.load(path) as arrays:
        return Dataset(
            "mnist1d",
            arrays["x"].astype(np.float32),
            arrays["y"].astype(np.int32),
            arrays["x_test"].astype(np.float32),
            arrays["y_test"].astype(np.int32),
            10,
        )


def _data_root(data_dir: str | os.PathLike | None) -> Path | None:
    root = data_dir or os.environ.get("RULELAB_DATA")
    return Path(root).expanduser() if root else None


def load_idx_dataset(name: str, data_dir: str | os.PathLike | None = None) -> Dataset:
    """MNIST or Fashion-MNIST from the user's files; a clear one-line error says where they are expected."""
    root = _data_root(data_dir)
    subfolders = {"mnist": ("mnist", "MNIST"), "fashion_mnist": ("fashion_mnist", "fashion-mnist", "FashionMNIST")}
    candidates = [] if root is None else [root / s for s in subfolders[name]] + [root]
    for folder in candidates:
        arrays = load_idx_folder(folder) if folder.is_dir() else None
        if arrays is not None:
            def flat(images):
                return (images.reshape(len(images), -1) / 255.0).astype(np.float32)

            return Dataset(name, flat(arrays["train_images"]), arrays["train_labels"].astype(np.int32),
                           flat(arrays["test_images"]), arrays["test_labels"].astype(np.int32), 10)
    where = f"{root}/{subfolders[name][0]}/ (or {root}/)" if root else "a folder given by --data-dir or $RULELAB_DATA"
    raise DatasetNotFoundError(
        f"{name} files not found: put {', '.join(IDX_FILES.values())} (optionally .gz) or mnist.npz in {where}"
    )


def load_dataset(name: str, data_dir: str | os.PathLike | None = None) -> Dataset:
    """Load data set ``name`` (one of ``DATASETS``)."""
    if name == "digits":
        return load_digits()
    if name == "mnist1d":
        return load_mnist1d()
    if name in ("mnist", "fashion_mnist"):
        return load_idx_dataset(name, data_dir)
    raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}")
