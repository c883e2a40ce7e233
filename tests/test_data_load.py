"""load_dataset from folders and from the packaged mnist-sample (no network)."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import re
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from cnnumpy.data import (
    DATASETS,
    DatasetNotFoundError,
    _sample,
    datasets,
    default_cache_dir,
    load_dataset,
    write_idx,
)

FILE_NAMES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
           "Sneaker", "Bag", "Ankle boot")  # fmt: skip


def write_split(folder, names=FILE_NAMES, n=(12, 5), classes=10, side=28, seed=0):
    """Four small IDX files in ``folder``; returns the arrays written."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = []
    for count in n:
        arrays.append(rng.integers(0, 256, size=(count, side, side)).astype(np.uint8))
        arrays.append((np.arange(count) % classes).astype(np.uint8))
    for name, array in zip(names, arrays):
        write_idx(folder / name, array)
    return arrays


@pytest.fixture
def no_system_dirs(monkeypatch):
    monkeypatch.setattr(datasets, "SYSTEM_DIRS", {})


def test_dataset_names():
    assert DATASETS == ("mnist-sample", "mnist", "fashion-mnist", "cifar10")


@pytest.mark.parametrize(
    ("name", "classes"),
    [
        ("mnist", tuple("0123456789")),
        ("fashion-mnist", FASHION),
        ("mnist-sample", tuple("0123456789")),
    ],
)
def test_data_dir_with_mnist_names(tmp_path, name, classes):
    train_x, train_y, test_x, test_y = write_split(tmp_path)
    train, test = load_dataset(name, data_dir=tmp_path)
    assert (len(train), len(test)) == (12, 5)
    assert train.images.shape == (12, 1, 28, 28) and train.images.dtype == np.uint8
    np.testing.assert_array_equal(train.images[:, 0], train_x)
    np.testing.assert_array_equal(test.images[:, 0], test_x)
    np.testing.assert_array_equal(train.labels, train_y)
    assert train.labels.dtype == np.int64
    assert train.class_names == test.class_names == classes
    assert train.name == test.name == name


def test_data_dir_with_emnist_names(tmp_path):
    names = (
        "emnist-letters-train-images-idx3-ubyte",  # raw and gzip mixed
        "emnist-letters-train-labels-idx1-ubyte.gz",
        "emnist-letters-test-images-idx3-ubyte.gz",
        "emnist-letters-test-labels-idx1-ubyte",
    )
    write_split(tmp_path, names, n=(30, 13), classes=27, side=28)
    (tmp_path / "README.txt").write_text("EMNIST letters")
    (tmp_path / ".t10k-images.part").write_bytes(b"unfinished download")
    train, test = load_dataset("emnist-letters", data_dir=str(tmp_path))
    assert (len(train), len(test)) == (30, 13)
    assert train.class_names == tuple(str(i) for i in range(27))


def test_data_dir_with_dotted_names(tmp_path):
    names = (
        "train-images.idx3-ubyte",
        "train-labels.idx1-ubyte",
        "t10k-images.idx3-ubyte",
        "t10k-labels.idx1-ubyte",
    )
    write_split(tmp_path, names, classes=4)
    train, _ = load_dataset("mine", data_dir=tmp_path)
    assert train.class_names == ("0", "1", "2", "3")


def test_data_dir_missing_or_ambiguous_files(tmp_path):
    write_split(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    pattern = (
        r"test labels file matching \*t10k-labels\* or \*test-labels\*, found no file"
    )
    with pytest.raises(
        DatasetNotFoundError, match=re.escape(str(tmp_path)) + ".*" + pattern
    ):
        load_dataset("mnist", data_dir=tmp_path)
    write_split(tmp_path)
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((1, 28, 28), np.uint8))
    with pytest.raises(
        FileNotFoundError,
        match=r"train images file matching .* found train-images-idx3-ubyte, train-images-idx3-ubyte.gz",
    ):
        load_dataset("mnist", data_dir=tmp_path)


def test_data_dir_that_is_not_a_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"`data_dir` .*nowhere does not exist"):
        load_dataset("mnist", data_dir=tmp_path / "nowhere")
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match=r"`data_dir` .*file is not a folder"):
        load_dataset("mnist", data_dir=tmp_path / "file")


def test_data_dir_inconsistent_files(tmp_path):
    write_split(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(4, np.uint8))
    with pytest.raises(
        ValueError,
        match=r"t10k-labels-idx1-ubyte.gz holds 4 labels but .*t10k-images-idx3-ubyte.gz holds 5 images",
    ):
        load_dataset("mnist", data_dir=tmp_path)
    write_split(tmp_path, classes=12)
    with pytest.raises(
        ValueError,
        match=r"train-labels-idx1-ubyte.gz: labels go up to 11, but 'mnist' has 10 classes",
    ):
        load_dataset("mnist", data_dir=tmp_path)
    write_split(tmp_path, side=28)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((5, 20, 20), np.uint8))
    with pytest.raises(
        ValueError,
        match=r"t10k-images-idx3-ubyte.gz holds images of shape \(1, 20, 20\)",
    ):
        load_dataset("mnist", data_dir=tmp_path)
    write_idx(
        tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((5, 28, 28, 1), np.uint8)
    )
    with pytest.raises(
        ValueError, match=r"t10k-images-idx3-ubyte.gz: expected 3-D images"
    ):
        load_dataset("mnist", data_dir=tmp_path)


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(
        ValueError,
        match=r"`name` must be one of 'mnist-sample', 'mnist', 'fashion-mnist'.*got 'cifar'",
    ):
        load_dataset("cifar")
    with pytest.raises(TypeError, match="`name` must be a str"):
        load_dataset(None)


def test_cache_folder_is_used_first(tmp_path, no_system_dirs, monkeypatch):
    arrays = write_split(tmp_path / "cache" / "mnist")
    # An unreachable mirror: the cache alone must do.
    monkeypatch.setitem(
        datasets.REMOTES, "mnist", datasets.Remote(("http://127.0.0.1:9/",), {})
    )
    train, test = load_dataset("mnist", cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(test.labels, arrays[3])


def test_fashion_mnist_from_the_debian_folder(tmp_path, monkeypatch):
    arrays = write_split(tmp_path / "debian")
    monkeypatch.setattr(
        datasets, "SYSTEM_DIRS", {"fashion-mnist": (tmp_path / "debian",)}
    )
    train, test = load_dataset(
        "fashion-mnist", cache_dir=tmp_path / "cache", download=False
    )
    np.testing.assert_array_equal(train.images[:, 0], arrays[0])
    assert train.class_names == FASHION
    assert not (tmp_path / "cache").exists()


def test_offline_and_missing_says_what_and_how(tmp_path, no_system_dirs):
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("mnist", cache_dir=tmp_path, download=False)
    message = str(info.value)
    for name in FILE_NAMES:
        assert name in message
    assert "--data DIR" in message and "data_dir=" in message
    assert "download=False" in message and str(tmp_path / "mnist") in message
    assert isinstance(info.value, FileNotFoundError)


def test_load_dataset_validates_arguments(tmp_path):
    with pytest.raises(TypeError, match="`download` must be a bool, got str 'yes'"):
        load_dataset("mnist", cache_dir=tmp_path, download="yes")
    with pytest.raises(TypeError, match="`progress` must be callable, got int 1"):
        load_dataset("mnist", cache_dir=tmp_path, progress=1)


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "cnnumpy"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "cnnumpy"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "cnnumpy"


# ---------------------------------------------------------------- mnist-sample

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "make_mnist_sample.py"


def load_script():
    """scripts/make_mnist_sample.py as a module (its split and its npz writer)."""
    spec = importlib.util.spec_from_file_location("make_mnist_sample", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def sample():
    return load_dataset("mnist-sample")


def test_mnist_sample_sizes_and_types(sample):
    train, test = sample
    assert (len(train), len(test)) == (4000, 1000)
    for split in sample:
        assert split.images.shape[1:] == (1, 28, 28) and split.images.dtype == np.uint8
        assert split.labels.dtype == np.int64
        assert split.images.max() == 255 and split.images.min() == 0
        assert split.class_names == tuple("0123456789") and split.name == "mnist-sample"


def test_mnist_sample_is_stratified_and_grouped_by_class(sample):
    train, test = sample
    assert np.bincount(train.labels, minlength=10).tolist() == [400] * 10
    assert np.bincount(test.labels, minlength=10).tolist() == [100] * 10
    # Both splits keep the source's order, which is grouped by class.
    for split in sample:
        assert np.all(np.diff(split.labels) >= 0)


def test_mnist_sample_is_deterministic_and_disjoint(sample):
    train, test = sample
    again_train, again_test = load_dataset("mnist-sample")
    np.testing.assert_array_equal(train.images, again_train.images)
    np.testing.assert_array_equal(test.labels, again_test.labels)
    train_rows = {row.tobytes() for row in train.images}
    test_rows = {row.tobytes() for row in test.images}
    assert len(train_rows) == 4000 and len(test_rows) == 1000  # no duplicate digits
    assert not train_rows & test_rows


def test_mnist_sample_file_is_what_the_script_writes(sample):
    """The script's writer, given the packaged arrays, gives the packaged bytes:
    its output depends on the arrays alone (no timestamps). With another zlib the
    bytes could differ; this machine's is the one that wrote the file."""
    train, test = sample
    blob = load_script().npz_bytes(
        {
            "train_images": train.images,
            "train_labels": train.labels.astype(np.uint8),
            "test_images": test.images,
            "test_labels": test.labels.astype(np.uint8),
        }
    )
    assert hashlib.sha256(blob).hexdigest() == _sample.SAMPLE_SHA256
    packaged = resources.files("cnnumpy.data") / _sample.SAMPLE_FILE
    assert blob == packaged.read_bytes()
    assert len(blob) < 1_000_000


def test_mnist_sample_tampered_copy_is_refused(tmp_path):
    raw = bytearray(
        (resources.files("cnnumpy.data") / _sample.SAMPLE_FILE).read_bytes()
    )
    raw[len(raw) // 2] ^= 1  # one bit of one pixel's compressed stream
    path = tmp_path / "mnist_sample.npz"
    path.write_bytes(bytes(raw))
    with pytest.raises(
        ValueError,
        match=re.escape(str(path))
        + r": SHA-256 is [0-9a-f]{64}, expected "
        + _sample.SAMPLE_SHA256
        + ".*reinstall cnnumpy",
    ):
        _sample.read_sample(path)
    assert _sample.read_sample()["test"][0].shape == (1000, 1, 28, 28)


def test_load_dataset_refuses_a_sample_file_with_another_digest(monkeypatch):
    monkeypatch.setattr(_sample, "SAMPLE_SHA256", "0" * 64)
    with pytest.raises(ValueError, match=r"mnist_sample\.npz: SHA-256 is "):
        load_dataset("mnist-sample")


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"train_images": np.zeros(3, np.uint8)}, "expected uint8 arrays train_images"),
        (
            {
                "train_images": np.zeros((4000, 1, 28, 28), np.uint8),
                "train_labels": np.zeros(4000, np.int64),
            },
            r"expected uint8 arrays train_images \(4000, 1, 28, 28\) and "
            r"train_labels \(4000,\)",
        ),
    ],
)
def test_mnist_sample_file_of_the_wrong_arrays_names_the_file(
    tmp_path, monkeypatch, arrays, message
):
    blob = load_script().npz_bytes(arrays)
    path = tmp_path / "other.npz"
    path.write_bytes(blob)
    monkeypatch.setattr(_sample, "SAMPLE_SHA256", hashlib.sha256(blob).hexdigest())
    with pytest.raises(ValueError, match=re.escape(str(path)) + ": " + message):
        _sample.read_sample(path)


def test_mnist_sample_file_that_is_no_zip_names_the_file(tmp_path, monkeypatch):
    path = tmp_path / "other.npz"
    path.write_bytes(b"not a zip")
    monkeypatch.setattr(
        _sample, "SAMPLE_SHA256", hashlib.sha256(b"not a zip").hexdigest()
    )
    with pytest.raises(ValueError, match=re.escape(str(path)) + ": not a readable"):
        _sample.read_sample(path)


def test_npz_writer_is_deterministic_and_round_trips():
    arrays = {
        "a": np.arange(6, dtype=np.uint8).reshape(2, 3),
        "b": np.ones(4, np.uint8),
    }
    script = load_script()
    assert script.npz_bytes(arrays) == script.npz_bytes(arrays)
    with np.load(io.BytesIO(script.npz_bytes(arrays)), allow_pickle=False) as npz:
        assert npz.files == ["a", "b"]
        for name, array in arrays.items():
            np.testing.assert_array_equal(npz[name], array)
            assert npz[name].dtype == array.dtype


def test_split_is_exact_stratified_and_sorted():
    split = load_script().split
    labels = np.repeat(np.arange(4), [7, 13, 1, 29])  # 50 items, uneven classes
    train, test = split(labels, test_fraction=0.2, seed=0)
    assert len(test) == 10 and len(train) == 40
    assert np.all(np.diff(test) > 0) and np.all(np.diff(train) > 0)
    np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(50))
    counts = np.bincount(labels[test], minlength=4)
    assert np.all(np.abs(counts - np.bincount(labels) * 0.2) < 1)
    np.testing.assert_array_equal(split(labels)[1], test)


def test_load_test_set_needs_only_the_test_files(tmp_path):
    from cnnumpy.data import DatasetNotFoundError, load_test_set
    from conftest import MNIST_DIR

    test = load_test_set("mnist", data_dir=MNIST_DIR)
    assert test.images.shape == (1_000, 1, 28, 28) and test.name == "mnist"
    assert test.class_names == tuple("0123456789")
    with pytest.raises(DatasetNotFoundError, match=r"expected exactly one test images"):
        load_test_set("mnist", data_dir=tmp_path)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((2, 28, 28), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([3, 12], np.uint8))
    with pytest.raises(
        ValueError, match=r"t10k-labels.*labels go up to 12, but 'mnist'"
    ):
        load_test_set("mnist", data_dir=tmp_path)
    assert len(load_test_set("letters", data_dir=tmp_path).class_names) == 13
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_test_set("mnist", data_dir=tmp_path / "none")
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="is not a folder"):
        load_test_set("mnist", data_dir=tmp_path / "file")
