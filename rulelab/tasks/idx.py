"""Reading MNIST-style IDX files (plain or gzip) and Keras's ``mnist.npz``; never downloads anything."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

# IDX type codes -> numpy dtypes (big-endian on disk)
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (``.gz`` or plain) into a numpy array of its stored shape."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    type_code, ndim = data[2], data[3]
    if type_code not in _IDX_DTYPES:
        raise ValueError(f"{path}: unknown IDX type code {type_code:#x}")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[type_code])
    body = np.frombuffer(data, dtype=dtype, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says shape {shape} but the file holds {body.size} values")
    return body.reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file (gzip when ``path`` ends in ``.gz``); used by tests and tools."""
    path = Path(path)
    array = np.asarray(array)
    codes = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(np.int16): 0x0B,
             np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D, np.dtype(np.float64): 0x0E}
    code = codes[array.dtype]
    header = bytes([0, 0, code, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as handle:
        handle.write(payload)


def _find(folder: Path, stem: str) -> Path | None:
    # Accept the canonical names, torchvision's raw/ layout and the dotted variants some mirrors use.
    for base in (folder, folder / "raw", folder / "MNIST" / "raw", folder / "FashionMNIST" / "raw"):
        for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
            if (base / name).is_file():
                return base / name
    return None


def load_idx_folder(folder: str | os.PathLike) -> dict[str, np.ndarray] | None:
    """The four MNIST arrays from ``folder`` (IDX files or ``mnist.npz``), or ``None`` when they are not there."""
    folder = Path(folder)
    found = {key: _find(folder, stem) for key, stem in IDX_FILES.items()}
    if all(found.values()):
        return {key: read_idx(path) for key, path in found.items()}
    npz = folder / "mnist.npz"
    if npz.is_file():
        with np.load(npz) as arrays:
            return {"train_images": arrays["x_train"], "train_labels": arrays["y_train"],
                    "test_images": arrays["x_test"], "test_labels": arrays["y_test"]}
    return None
