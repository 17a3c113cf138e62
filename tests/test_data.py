"""Embedded data sets and the IDX / npz readers for the user's own MNIST files."""

from __future__ import annotations

import numpy as np
import pytest

from rulelab.tasks.idx import IDX_FILES, read_idx, write_idx
from rulelab.tasks.supervised import DatasetNotFoundError, load_dataset


def test_digits_is_embedded_and_split_deterministically():
    first, second = load_dataset("digits"), load_dataset("digits")
    assert first.x_train.shape == (1438, 64) and first.x_test.shape == (359, 64)
    assert first.x_train.dtype == np.float32 and 0.0 <= first.x_train.min() and first.x_train.max() <= 1.0
    np.testing.assert_array_equal(first.y_test, second.y_test)
    assert set(np.unique(first.y_train)) == set(range(10))


def test_mnist1d_is_generated_locally_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("RULELAB_CACHE", str(tmp_path))
    state = np.random.get_state()
    data = load_dataset("mnist1d")
    assert data.x_train.shape == (4000, 40) and data.x_test.shape == (1000, 40)
    assert (tmp_path / "mnist1d.npz").is_file()
    assert np.array_equal(np.random.get_state()[1], state[1]), "generation must not disturb numpy's global RNG"
    np.testing.assert_array_equal(load_dataset("mnist1d").y_test, data.y_test)


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.float32])
def test_idx_round_trip(tmp_path, suffix, dtype):
    array = (np.arange(2 * 3 * 5) % 200).reshape(2, 3, 5).astype(dtype)
    write_idx(tmp_path / f"a{suffix}", array)
    np.testing.assert_array_equal(read_idx(tmp_path / f"a{suffix}"), array)


def test_idx_rejects_a_file_that_is_not_idx(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x50\x4b\x03\x04 zip")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "bad")


def fake_mnist(folder, gz=False, n_train=20, n_test=10):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {"train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
              "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8)}
    for key, stem in IDX_FILES.items():
        write_idx(folder / (stem + (".gz" if gz else "")), arrays[key])
    return arrays


@pytest.mark.parametrize("layout", ["flat", "torchvision", "gzip-in-subfolder"])
def test_mnist_reads_the_users_idx_files(tmp_path, layout):
    if layout == "flat":
        arrays = fake_mnist(tmp_path)
    elif layout == "torchvision":
        arrays = fake_mnist(tmp_path / "MNIST" / "raw")
    else:
        arrays = fake_mnist(tmp_path / "mnist", gz=True)
    data = load_dataset("mnist", data_dir=tmp_path)
    assert data.x_train.shape == (20, 784) and data.x_test.shape == (10, 784)
    np.testing.assert_allclose(data.x_train[3], arrays["train_images"][3].ravel() / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(data.y_test, arrays["test_labels"])


def test_fashion_mnist_reads_keras_npz_from_env(tmp_path, monkeypatch):
    folder = tmp_path / "fashion_mnist"
    folder.mkdir()
    rng = np.random.default_rng(1)
    np.savez(folder / "mnist.npz", x_train=rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
             y_train=np.arange(6) % 10, x_test=rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
             y_test=np.arange(4))
    monkeypatch.setenv("RULELAB_DATA", str(tmp_path))
    data = load_dataset("fashion_mnist")
    assert data.x_train.shape == (6, 784) and list(data.y_test) == [0, 1, 2, 3]


def test_missing_files_give_one_line_saying_what_goes_where(tmp_path, monkeypatch):
    monkeypatch.delenv("RULELAB_DATA", raising=False)
    with pytest.raises(DatasetNotFoundError) as error:
        load_dataset("mnist", data_dir=tmp_path)
    message = str(error.value)
    assert "\n" not in message and "train-images-idx3-ubyte" in message and str(tmp_path) in message
    with pytest.raises(ValueError, match="valid: digits, mnist1d, mnist, fashion_mnist"):
        load_dataset("cifar")
