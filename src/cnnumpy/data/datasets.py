"""`load_dataset`: the train and test `Dataset` of MNIST, its relatives and CIFAR-10.

(`Dataset` and `normalization_stats` live in `cnnumpy.data.dataset` and are
importable from here too.)

Where ``load_dataset`` looks, in order:

- ``data_dir``, if given, and only there: four IDX files matched by name;
- ``mnist-sample``: the file inside this package (no download);
- the cache folder ``cache_dir / name`` (default `default_cache_dir()`);
- system folders from a package, such as Debian's ``dataset-fashion-mnist``;
- a download into the cache folder, each file verified by its published
  digest (SHA-256 for the MNIST family, MD5 for CIFAR-10's archive).

CIFAR-10 is read from its binary version (`cnnumpy.data.cifar`), never from
the pickled Python version.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from cnnumpy.data import _folder, _sample, cifar
from cnnumpy.data.dataset import Dataset, normalization_stats
from cnnumpy.data.download import DownloadError, Progress
from cnnumpy.data.download import download as download_file
from cnnumpy.validation import check_bool, check_callable, check_path, check_str

__all__ = [
    "DATASETS",
    "Dataset",
    "DatasetNotFoundError",
    "default_cache_dir",
    "load_dataset",
    "load_test_set",
    "normalization_stats",
]

DATASETS = ("mnist-sample", "mnist", "fashion-mnist", "cifar10")

DIGITS = tuple(str(i) for i in range(10))
CLASS_NAMES = {
    "mnist-sample": DIGITS,
    "mnist": DIGITS,
    "fashion-mnist": (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    "cifar10": cifar.CLASS_NAMES,
}


class Remote(NamedTuple):
    """Mirror URLs (each ending in '/') and the SHA-256 of each file they serve."""

    mirrors: tuple[str, ...]
    sha256: dict[str, str]


# Digests of the .gz files as published; downloads are checked against them.
REMOTES = {
    "mnist": Remote(
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        sha256={
            "train-images-idx3-ubyte.gz": (
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"
            ),
            "train-labels-idx1-ubyte.gz": (
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"
            ),
            "t10k-images-idx3-ubyte.gz": (
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"
            ),
            "t10k-labels-idx1-ubyte.gz": (
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"
            ),
        },
    ),
    "fashion-mnist": Remote(
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        sha256={
            "train-images-idx3-ubyte.gz": (
                "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"
            ),
            "train-labels-idx1-ubyte.gz": (
                "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"
            ),
            "t10k-images-idx3-ubyte.gz": (
                "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"
            ),
            "t10k-labels-idx1-ubyte.gz": (
                "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"
            ),
        },
    ),
}

# Folders filled by system packages. Debian's dataset-fashion-mnist recompresses
# the files, so their digests differ from REMOTES: local folders (these, the cache
# and data_dir) are checked structurally by read_idx, never by digest.
SYSTEM_DIRS: dict[str, tuple[Path, ...]] = {
    "fashion-mnist": (Path("/usr/share/datasets/fashion-mnist"),),
}


class DatasetNotFoundError(FileNotFoundError):
    """The files of a data set are nowhere to be found, and could not be fetched."""


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/cnnumpy``, or ``~/.cache/cnnumpy``.

    The only place the data package reads the environment; as the XDG spec
    says, a relative ``XDG_CACHE_HOME`` is ignored.
    """
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "cnnumpy"


def load_dataset(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    progress: Progress | None = None,
) -> tuple[Dataset, Dataset]:
    """The train and test splits of a data set, as uint8 images (N, C, H, W).

    Parameters
    ----------
    name : str
        One of `DATASETS`: ``'mnist-sample'`` (the project's default: 5,000 real
        MNIST digits shipped inside cnnumpy, split 4,000 / 1,000),
        ``'mnist'`` or ``'fashion-mnist'`` (60,000 / 10,000, 1x28x28), or
        ``'cifar10'`` (50,000 / 10,000, 3x32x32 colour). With ``data_dir`` any
        name is accepted.
    data_dir : str or path-like, optional
        A folder with the four IDX files (gzip or raw), looked up only there.
        Names are matched by pattern, so MNIST's (``train-images-idx3-ubyte.gz``,
        ``t10k-labels-idx1-ubyte.gz`` ...) and EMNIST's
        (``emnist-digits-test-images-idx3-ubyte`` ...) both work: train files end
        in ``train-images-idx3-ubyte`` / ``train-labels-idx1-ubyte`` (or
        ``.idx3-ubyte`` / ``.idx1-ubyte``, each optionally ``.gz``), test files
        contain ``t10k-images`` / ``t10k-labels`` or ``test-images`` /
        ``test-labels``. For ``'cifar10'``: the folder of its binary batch
        files, the folder holding that (``cifar-10-batches-bin``), or the
        folder holding the archive ``cifar-10-binary.tar.gz``.
    cache_dir : str or path-like, optional
        Where downloads are kept, in a subfolder per data set; default
        `default_cache_dir()`. Unused by ``mnist-sample``, like the next two.
    download : bool
        Whether files missing from the cache and system folders may be
        downloaded (each checked against its published digest).
    progress : callable, optional
        ``progress(done_bytes, total_bytes)`` for each file downloaded, as in
        `download`.

    Returns
    -------
    train, test : Dataset
        Labels are int64; class names are the digits for MNIST, the ten
        clothing names for Fashion-MNIST, CIFAR-10's ten (``'airplane'`` ..
        ``'truck'``), else ``'0'`` .. ``str(max label)``.

    Raises
    ------
    ValueError
        If ``name`` is unknown (and no ``data_dir`` is given), or a file is
        malformed (`IDXError`, `CIFARError`; the message names it).
    DatasetNotFoundError
        If the files are not found and cannot be downloaded: the message lists
        the files needed, how to pass a folder, and why the download failed.
    NotADirectoryError, FileNotFoundError
        If ``data_dir`` is not a folder.

    Notes
    -----
    ``mnist-sample``'s split is stratified and fixed: a generator seeded with 0
    picked 20% of each class for the test set; both splits keep the source's
    order, which is grouped by class, so shuffle when training. Its file is
    checked against a SHA-256 before it is read.
    """
    _check_load_arguments(name, data_dir, cache_dir, download, progress)
    if data_dir is not None:
        return _load_folder(name, Path(data_dir))
    if name not in DATASETS:
        raise ValueError(
            f"`name` must be one of {', '.join(map(repr, DATASETS))} (or any name "
            f"with `data_dir`), got {name!r}"
        )
    if name == "mnist-sample":
        return _load_sample()
    cache = (default_cache_dir() if cache_dir is None else Path(cache_dir)) / name
    if name == "cifar10":
        try:
            archive = cifar.cached_archive(cache, download, progress)
        except (FileNotFoundError, DownloadError) as err:
            needs = f"its binary version {cifar.ARCHIVE} (or the folder it unpacks to)"
            raise DatasetNotFoundError(
                _not_found_message(name, (cache,), str(err), needs)
            ) from err
        return _cifar_datasets(archive)
    folders = (cache, *SYSTEM_DIRS.get(name, ()))
    for folder in folders:
        files = {role: folder / f for role, f in _folder.FILE_NAMES.items()}
        if all(path.is_file() for path in files.values()):
            return _load_files(name, files)
    files = {role: cache / f for role, f in _folder.FILE_NAMES.items()}
    missing = [path for path in files.values() if not path.is_file()]
    if not download:
        lacking = ", ".join(path.name for path in missing)
        reason = f"downloads are off (download=False) and the cache lacks {lacking}"
        raise DatasetNotFoundError(_not_found_message(name, folders, reason))
    remote = REMOTES[name]
    for path in missing:
        try:
            download_file(
                [mirror + path.name for mirror in remote.mirrors],
                path,
                remote.sha256[path.name],
                progress=progress,
            )
        except DownloadError as err:
            raise DatasetNotFoundError(
                _not_found_message(name, folders, str(err))
            ) from err
    return _load_files(name, files)


def load_test_set(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    progress: Progress | None = None,
) -> Dataset:
    """The test split of a data set; arguments as in `load_dataset`.

    With ``data_dir``, the folder needs only the two test files (``t10k-*`` or
    ``*test-*``), so a model trained on the MNIST sample can be evaluated on
    the 10,000 digits of MNIST's own test set alone.
    """
    _check_load_arguments(name, data_dir, cache_dir, download, progress)
    if data_dir is None:
        return load_dataset(
            name,
            cache_dir=cache_dir,
            download=download,
            progress=progress,
        )[1]
    if name == "cifar10":
        _check_folder(Path(data_dir))
        return _cifar_datasets(Path(data_dir), ("test",))[0]
    files = _find_files(Path(data_dir), ("test images", "test labels"))
    images, labels = _folder.read_split(files["test images"], files["test labels"])
    class_names = _class_names(name, {files["test labels"]: labels})
    return Dataset(images, labels, class_names, name)


def _check_load_arguments(
    name: object,
    data_dir: object,
    cache_dir: object,
    download: object,
    progress: object,
) -> None:
    check_str(name, "name")
    if data_dir is not None:
        check_path(data_dir, "data_dir")
    if cache_dir is not None:
        check_path(cache_dir, "cache_dir")
    check_bool(download, "download")
    if progress is not None:
        check_callable(progress, "progress")


def _not_found_message(
    name: str, folders: tuple[Path, ...], reason: str, needs: str = ""
) -> str:
    needs = needs or f"the four files {', '.join(_folder.FILE_NAMES.values())}"
    looked = ", ".join(str(folder) for folder in folders)
    return (
        f"data set {name!r} not found: it needs {needs} "
        f"(looked in {looked}). Put them in a folder and pass it with `--data DIR` "
        f"on the command line, or `data_dir=` in Python.\nReason: {reason}"
    )


def _load_sample() -> tuple[Dataset, Dataset]:
    splits = _sample.read_sample()
    train, test = (
        Dataset(*splits[split], DIGITS, "mnist-sample") for split in ("train", "test")
    )
    return train, test


def _check_folder(folder: Path) -> None:
    if not folder.exists():
        raise FileNotFoundError(f"`data_dir` {folder} does not exist")
    if not folder.is_dir():
        raise NotADirectoryError(f"`data_dir` {folder} is not a folder")


def _find_files(
    folder: Path, roles: tuple[str, ...] = _folder.ROLES
) -> dict[str, Path]:
    """The IDX file of each role in the ``data_dir`` folder."""
    _check_folder(folder)
    try:
        return _folder.find_idx_files(folder, roles)
    except FileNotFoundError as err:
        hint = " (it holds CIFAR-10: pass --dataset cifar10, or name='cifar10')"
        if any(folder.glob("*_batch*.bin")) or (folder / cifar.ARCHIVE).is_file():
            raise DatasetNotFoundError(f"{err}{hint}") from err
        raise DatasetNotFoundError(str(err)) from err


def _load_folder(name: str, folder: Path) -> tuple[Dataset, Dataset]:
    if name == "cifar10":
        _check_folder(folder)
        train, test = _cifar_datasets(folder)
        return train, test
    return _load_files(name, _find_files(folder))


def _cifar_datasets(
    source: Path, splits: tuple[str, ...] = ("train", "test")
) -> tuple[Dataset, ...]:
    """CIFAR-10's splits from its archive or a folder (searched by `find_cifar10`)."""
    try:
        arrays = cifar.read_cifar10(source, splits)
    except FileNotFoundError as err:
        raise DatasetNotFoundError(str(err)) from err
    return tuple(
        Dataset(*arrays[split], cifar.CLASS_NAMES, "cifar10") for split in splits
    )


def _class_names(name: str, labels_by_file: dict[Path, np.ndarray]) -> tuple[str, ...]:
    """The known names of ``name``'s classes, else '0' .. the largest label;
    every label must fit them (the file is named if one does not)."""
    top = max(int(labels.max(initial=0)) for labels in labels_by_file.values())
    class_names = CLASS_NAMES.get(name, tuple(str(i) for i in range(top + 1)))
    for path, labels in labels_by_file.items():
        if labels.max(initial=0) >= len(class_names):
            raise ValueError(
                f"{path}: labels go up to {labels.max()}, but {name!r} has "
                f"{len(class_names)} classes"
            )
    return class_names


def _load_files(name: str, files: dict[str, Path]) -> tuple[Dataset, Dataset]:
    train_images, train_labels = _folder.read_split(
        files["train images"], files["train labels"]
    )
    test_images, test_labels = _folder.read_split(
        files["test images"], files["test labels"]
    )
    if train_images.shape[1:] != test_images.shape[1:]:
        raise ValueError(
            f"{files['test images']} holds images of shape {test_images.shape[1:]}, "
            f"but {files['train images']} holds {train_images.shape[1:]}"
        )
    class_names = _class_names(
        name,
        {files["train labels"]: train_labels, files["test labels"]: test_labels},
    )
    return (
        Dataset(train_images, train_labels, class_names, name),
        Dataset(test_images, test_labels, class_names, name),
    )
