"""download() and load_dataset's downloads, against a local HTTP server."""

from __future__ import annotations

import functools
import hashlib
import http.server
import socket
import threading

import numpy as np
import pytest

from cifar_files import archive_bytes, batches
from cnnumpy.data import (
    CIFARError,
    DatasetNotFoundError,
    DownloadError,
    cifar,
    datasets,
    download,
    load_dataset,
    load_test_set,
    write_idx,
)

FILE_NAMES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """(folder served, base URL ending in '/') of a local HTTP server."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    # A short poll interval: shutdown() waits for the next poll.
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def refused_url():
    """A URL on a port nobody listens to."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/file"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def payload(server, rng):
    """A 200 kB file on the server (several chunks): (its name, bytes)."""
    root, _ = server
    data = rng.bytes(200_000)
    (root / "blob.bin").write_bytes(data)
    return "blob.bin", data


def test_download_checks_md5_and_sha256_when_given(server, payload, tmp_path):
    _, base = server
    name, data = payload
    md5 = hashlib.md5(data).hexdigest()
    dest = tmp_path / "out" / "blob.bin"
    assert download(base + name, dest, md5=md5.upper()) == dest
    assert dest.read_bytes() == data
    dest.unlink()
    download(base + name, dest, sha256(data), md5=md5)
    with pytest.raises(DownloadError, match=f"MD5 mismatch: expected {'0' * 32}"):
        download(base + name, dest.parent / "other", sha256(data), md5="0" * 32)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["blob.bin"]


def test_download_success_with_progress(server, payload, tmp_path):
    _, base = server
    name, data = payload
    calls = []
    dest = tmp_path / "new" / "folder" / "blob.bin"
    got = download(
        base + name, dest, sha256(data).upper(), progress=lambda *a: calls.append(a)
    )
    assert got == dest and dest.read_bytes() == data
    assert [p.name for p in dest.parent.iterdir()] == ["blob.bin"]
    assert calls[0] == (0, len(data)) and calls[-1] == (len(data), len(data))
    done = [d for d, _ in calls]
    assert len(calls) > 3 and done == sorted(done) and len(set(done)) == len(done)


def test_download_replaces_an_existing_file(server, payload, tmp_path):
    _, base = server
    name, data = payload
    dest = tmp_path / "blob.bin"
    dest.write_bytes(b"old")
    download([base + name], dest, sha256(data))
    assert dest.read_bytes() == data


def test_checksum_mismatch_leaves_nothing(server, payload, tmp_path):
    _, base = server
    name, data = payload
    dest = tmp_path / "out" / "blob.bin"
    wrong = "0" * 64
    with pytest.raises(DownloadError) as info:
        download(base + name, dest, wrong)
    message = str(info.value)
    assert "blob.bin" in message and base + name in message
    assert f"expected {wrong}, got {sha256(data)}" in message
    assert list(dest.parent.iterdir()) == []
    assert isinstance(info.value, OSError)
    assert info.value.failures == (
        (base + name, f"SHA-256 mismatch: expected {wrong}, got {sha256(data)}"),
    )


def test_http_404(server, tmp_path):
    _, base = server
    dest = tmp_path / "out" / "x.gz"
    with pytest.raises(
        DownloadError, match=r"could not download x.gz to .*\n  .*missing.gz: HTTP 404"
    ):
        download(base + "missing.gz", dest, "0" * 64)
    assert list(dest.parent.iterdir()) == []


def test_connection_refused(refused_url, tmp_path):
    with pytest.raises(DownloadError, match=refused_url + ": .*[Rr]efused"):
        download(refused_url, tmp_path / "x", "0" * 64, timeout=5)
    assert list(tmp_path.iterdir()) == []


def test_falls_back_to_the_next_mirror(server, payload, refused_url, tmp_path):
    _, base = server
    name, data = payload
    dest = tmp_path / name
    calls = []
    mirrors = [refused_url, base + "no-such-file", base + name]
    download(mirrors, dest, sha256(data), progress=lambda *a: calls.append(a))
    assert dest.read_bytes() == data
    assert calls[0] == (0, len(data))


def test_every_failure_is_reported_in_one_message(
    server, payload, refused_url, tmp_path
):
    _, base = server
    name, _ = payload
    with pytest.raises(DownloadError) as info:
        download([refused_url, base + name], tmp_path / name, "1" * 64)
    lines = str(info.value).splitlines()
    assert len(lines) == 3 and name in lines[0]
    assert lines[1].startswith(f"  {refused_url}: ") and lines[2].startswith(
        f"  {base + name}: SHA-256 mismatch"
    )


def test_interrupted_download_leaves_no_partial_file(server, payload, tmp_path):
    _, base = server
    name, data = payload

    def interrupt(done, total):
        if done > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        download(base + name, tmp_path / "out" / name, sha256(data), progress=interrupt)
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"urls": []}, ValueError, "`urls` must be a URL or a non-empty sequence"),
        ({"urls": [1]}, TypeError, "`urls` must be a URL or a non-empty sequence"),
        (
            {"sha256": "abc"},
            ValueError,
            "`sha256` must be 64 hexadecimal digits, got 'abc'",
        ),
        ({"md5": "z" * 32}, ValueError, "`md5` must be 32 hexadecimal digits"),
        ({"sha256": None}, ValueError, "`sha256` or `md5` must be given, got neither"),
        ({"progress": 3}, TypeError, "`progress` must be callable, got int 3"),
        ({"timeout": 0}, ValueError, "`timeout` must be > 0, got 0"),
    ],
)
def test_download_validates_arguments(tmp_path, kwargs, error, message):
    args = {
        "urls": "http://127.0.0.1:9/x",
        "dest": tmp_path / "x",
        "sha256": "0" * 64,
    } | kwargs
    with pytest.raises(error, match=message):
        download(**args)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- load_dataset


@pytest.fixture
def mnist_server(server, monkeypatch):
    """Four small MNIST-like files on the server, set as the 'mnist' remote."""
    root, base = server
    rng = np.random.default_rng(1)
    arrays = [
        rng.integers(0, 256, size=(20, 28, 28)).astype(np.uint8),
        (np.arange(20) % 10).astype(np.uint8),
        rng.integers(0, 256, size=(6, 28, 28)).astype(np.uint8),
        (np.arange(6) % 10).astype(np.uint8),
    ]
    for name, array in zip(FILE_NAMES, arrays):
        write_idx(root / name, array)
    digests = {name: sha256((root / name).read_bytes()) for name in FILE_NAMES}
    monkeypatch.setitem(datasets.REMOTES, "mnist", datasets.Remote((base,), digests))
    monkeypatch.setattr(datasets, "SYSTEM_DIRS", {})
    return root, arrays


def test_load_dataset_downloads_into_the_cache(mnist_server, tmp_path, monkeypatch):
    root, arrays = mnist_server
    cache = tmp_path / "cache"
    calls = []
    train, test = load_dataset(
        "mnist", cache_dir=cache, progress=lambda *a: calls.append(a)
    )
    np.testing.assert_array_equal(train.images[:, 0], arrays[0])
    np.testing.assert_array_equal(test.labels, arrays[3])
    assert sorted(p.name for p in (cache / "mnist").iterdir()) == sorted(FILE_NAMES)
    assert sum(done == 0 for done, _ in calls) == 4  # each file starts at 0
    # Now cached: the server is not asked again.
    for name in FILE_NAMES:
        (root / name).unlink()
    again, _ = load_dataset("mnist", cache_dir=cache)
    np.testing.assert_array_equal(again.images, train.images)


def test_load_dataset_downloads_only_missing_files(mnist_server, tmp_path):
    root, arrays = mnist_server
    cache = tmp_path / "cache"
    load_dataset("mnist", cache_dir=cache)
    (cache / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    (root / "train-images-idx3-ubyte.gz").unlink()  # would fail if asked for
    _, test = load_dataset("mnist", cache_dir=cache)
    np.testing.assert_array_equal(test.labels, arrays[3])


def test_load_dataset_download_failure_message(mnist_server, tmp_path, monkeypatch):
    root, _ = mnist_server
    remote = datasets.REMOTES["mnist"]
    bad = dict(remote.sha256, **{"t10k-images-idx3-ubyte.gz": "f" * 64})
    monkeypatch.setitem(datasets.REMOTES, "mnist", datasets.Remote(remote.mirrors, bad))
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("mnist", cache_dir=tmp_path / "cache")
    message = str(info.value)
    for name in FILE_NAMES:
        assert name in message
    assert "--data DIR" in message and "data_dir=" in message
    assert f"expected {'f' * 64}, got" in message
    assert isinstance(info.value.__cause__, DownloadError)
    # The good files stay cached, the bad one left nothing behind.
    left = sorted(p.name for p in (tmp_path / "cache" / "mnist").iterdir())
    assert "t10k-images-idx3-ubyte.gz" not in left and not any(
        n.startswith(".") for n in left
    )


def test_load_dataset_offline(tmp_path, refused_url, monkeypatch):
    mirror = refused_url.rsplit("/", 1)[0] + "/"
    monkeypatch.setitem(
        datasets.REMOTES,
        "mnist",
        datasets.Remote((mirror,), dict.fromkeys(FILE_NAMES, "0" * 64)),
    )
    monkeypatch.setattr(datasets, "SYSTEM_DIRS", {})
    with pytest.raises(
        DatasetNotFoundError,
        match=r"(?s)train-images-idx3-ubyte.gz.*--data DIR.*Reason: could not download",
    ):
        load_dataset("mnist", cache_dir=tmp_path)


def test_a_download_over_the_size_limit_is_refused(
    server, payload, tmp_path, monkeypatch
):
    import importlib

    module = importlib.import_module("cnnumpy.data.download")  # not the function
    _, base = server
    name, data = payload
    monkeypatch.setattr(module, "MAX_DOWNLOAD_BYTES", len(data) // 2)
    dest = tmp_path / "out" / "blob.bin"
    with pytest.raises(DownloadError, match="allowed") as info:
        download(base + name, dest, sha256(data))
    assert "over the" in info.value.failures[0][1]
    assert list(dest.parent.iterdir()) == []


# ------------------------------------------------------------- CIFAR-10's archive


@pytest.fixture
def cifar_server(server, monkeypatch):
    """A small CIFAR-10 archive on the server, set as CIFAR-10's URL with its MD5."""
    root, base = server
    files, arrays = batches(np.random.default_rng(2))
    data = archive_bytes(files)
    (root / cifar.ARCHIVE).write_bytes(data)
    monkeypatch.setattr(cifar, "URLS", (base + cifar.ARCHIVE,))
    monkeypatch.setattr(cifar, "MD5", hashlib.md5(data).hexdigest())
    return root, arrays


def test_cifar10_is_downloaded_checked_and_cached(cifar_server, tmp_path):
    root, arrays = cifar_server
    cache = tmp_path / "cache"
    calls = []
    train, test = load_dataset(
        "cifar10", cache_dir=cache, progress=lambda *a: calls.append(a)
    )
    np.testing.assert_array_equal(test.images, arrays["test_batch.bin"][1])
    assert train.images.shape == (20, 3, 32, 32)
    assert [p.name for p in (cache / "cifar10").iterdir()] == [cifar.ARCHIVE]
    assert calls[0][0] == 0 and calls[-1][0] == calls[-1][1]
    (root / cifar.ARCHIVE).unlink()  # cached: the server is not asked again
    again = load_test_set("cifar10", cache_dir=cache, download=False)
    np.testing.assert_array_equal(again.labels, test.labels)


def test_cifar10_published_md5_is_the_one_checked(cifar_server, tmp_path, monkeypatch):
    monkeypatch.setattr(cifar, "MD5", "c32a1d4ab5d03f1284b67883e8d87530")
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("cifar10", cache_dir=tmp_path)
    message = str(info.value)
    assert "MD5 mismatch: expected c32a1d4ab5d03f1284b67883e8d87530" in message
    assert "cifar-10-binary.tar.gz" in message and "--data DIR" in message
    assert isinstance(info.value.__cause__, DownloadError)
    assert list((tmp_path / "cifar10").iterdir()) == []  # no partial file


def test_cifar10_truncated_download_is_refused(cifar_server, tmp_path, monkeypatch):
    root, _ = cifar_server
    whole = (root / cifar.ARCHIVE).read_bytes()
    (root / cifar.ARCHIVE).write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DatasetNotFoundError, match="MD5 mismatch"):
        load_dataset("cifar10", cache_dir=tmp_path)
    assert list((tmp_path / "cifar10").iterdir()) == []
    # A truncated archive that matches its digest still fails to parse, typed.
    monkeypatch.setattr(cifar, "MD5", hashlib.md5(whole[: len(whole) // 2]).hexdigest())
    with pytest.raises(CIFARError, match="unreadable tar archive"):
        load_dataset("cifar10", cache_dir=tmp_path)


def test_cifar10_interrupted_download_leaves_nothing(cifar_server, tmp_path):
    def interrupt(done, total):
        if done > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        load_dataset("cifar10", cache_dir=tmp_path, progress=interrupt)
    assert list((tmp_path / "cifar10").iterdir()) == []


def test_cifar10_offline_or_downloads_off(tmp_path, refused_url, monkeypatch):
    monkeypatch.setattr(cifar, "URLS", (refused_url,))
    with pytest.raises(
        DatasetNotFoundError,
        match=r"(?s)cifar-10-binary.tar.gz.*--data DIR.*Reason: could not download",
    ):
        load_dataset("cifar10", cache_dir=tmp_path)
    with pytest.raises(DatasetNotFoundError, match=r"downloads are off"):
        load_test_set("cifar10", cache_dir=tmp_path, download=False)
