"""CIFAR-10's binary version: the layout read right, hostile archives refused."""

from __future__ import annotations

import gzip
import os
import tarfile

import numpy as np
import pytest

from cifar_files import (
    BATCHES,
    archive_bytes,
    batches,
    records,
    tar_bytes,
    write_archive,
    write_folder,
)
from cnnumpy.data import (
    CIFARError,
    DatasetNotFoundError,
    cifar,
    load_dataset,
    load_test_set,
)
from cnnumpy.data.cifar import FOLDER, MAX_ARCHIVE_BYTES, MAX_BATCH_BYTES


@pytest.fixture
def files(rng):
    return batches(rng)


def expected(arrays, names):
    labels = np.concatenate([arrays[n][0] for n in names])
    images = np.concatenate([arrays[n][1] for n in names])
    return images, labels


def test_records_are_label_then_red_green_blue_planes():
    image = np.zeros((1, 3, 32, 32), np.uint8)
    image[0, 0, 0, 1] = 10  # red, row 0, column 1
    image[0, 1, 2, 0] = 20  # green, row 2, column 0
    image[0, 2, 31, 31] = 30  # blue, last pixel
    data = records(np.array([7]), image)
    assert len(data) == 3073 and data[0] == 7
    assert data[1 + 1] == 10 and data[1 + 1024 + 2 * 32] == 20 and data[-1] == 30


def test_archive_loads_both_splits_with_cifar_class_names(tmp_path, files):
    files, arrays = files
    write_archive(tmp_path, files)
    train, test = load_dataset("cifar10", data_dir=tmp_path)
    images, labels = expected(arrays, BATCHES[:5])
    assert train.images.shape == (20, 3, 32, 32) and train.images.dtype == np.uint8
    np.testing.assert_array_equal(train.images, images)
    np.testing.assert_array_equal(train.labels, labels)
    np.testing.assert_array_equal(test.images, arrays["test_batch.bin"][1])
    assert train.labels.dtype == np.int64 and train.images.flags.writeable
    assert train.class_names[0] == "airplane" and train.class_names[9] == "truck"
    assert (train.name, test.name) == ("cifar10", "cifar10")


def test_extracted_folder_parent_folder_and_plain_tar_give_the_same(tmp_path, files):
    files, arrays = files
    write_archive(tmp_path / "archived", files)
    write_folder(tmp_path / "parent" / FOLDER, files)
    write_folder(tmp_path / "batches", files)
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / cifar.ARCHIVE).write_bytes(archive_bytes(files, False))
    reference = load_dataset("cifar10", data_dir=tmp_path / "archived")
    for where in ("parent", "parent" + "/" + FOLDER, "batches", "plain"):
        train, test = load_dataset("cifar10", data_dir=tmp_path / where)
        np.testing.assert_array_equal(train.images, reference[0].images)
        np.testing.assert_array_equal(test.labels, reference[1].labels)


def test_test_set_alone_and_meta_file_optional(tmp_path, files):
    files, arrays = files
    only_test = {"test_batch.bin": files["test_batch.bin"]}
    write_folder(tmp_path / "f", only_test)
    test = load_test_set("cifar10", data_dir=tmp_path / "f")
    np.testing.assert_array_equal(test.images, arrays["test_batch.bin"][1])
    write_archive(tmp_path / "a", only_test)
    assert len(load_test_set("cifar10", data_dir=tmp_path / "a")) == 4
    with pytest.raises(DatasetNotFoundError, match="lacks the CIFAR-10 batch data"):
        load_dataset("cifar10", data_dir=tmp_path / "f")
    with pytest.raises(CIFARError, match=f"lacks {FOLDER}/data_batch_1.bin"):
        load_dataset("cifar10", data_dir=tmp_path / "a")


def test_folder_without_cifar_says_what_it_looked_for(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"data_batch_1.bin.*cifar-10-bin"):
        load_dataset("cifar10", data_dir=tmp_path)
    with pytest.raises(NotADirectoryError):
        load_dataset("cifar10", data_dir=__file__)


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("data_batch_2.bin", b"\0" * 3072, "not a whole number of records of 3073"),
        ("test_batch.bin", b"", "0 bytes, not a whole number"),
        ("data_batch_3.bin", b"\x0a" + bytes(3072), "labels must be below 10, got 10"),
        ("test_batch.bin", bytes(3073) * 5, "different numbers of records"),
        ("batches.meta.txt", b"cat\ndog\n", "names the classes"),
        ("batches.meta.txt", b"\xff", "not ASCII text"),
    ],
)
@pytest.mark.parametrize("archived", [False, True])
def test_malformed_batches_are_refused_naming_the_file(
    tmp_path, files, name, data, message, archived
):
    files, _ = files
    files[name] = data
    write = write_archive if archived else write_folder
    write(tmp_path, files)
    with pytest.raises(CIFARError, match=message) as info:
        load_dataset("cifar10", data_dir=tmp_path)
    assert name in str(info.value)


def test_file_larger_than_a_batch_is_refused_before_reading(tmp_path, files):
    files, _ = files
    write_folder(tmp_path, files)
    with open(tmp_path / "data_batch_4.bin", "r+b") as f:
        f.truncate(MAX_BATCH_BYTES + 3073)  # sparse: no disk used
    with pytest.raises(CIFARError, match="more than the 30,730,000 allowed"):
        load_dataset("cifar10", data_dir=tmp_path)


# ------------------------------------------------------------ hostile archives


def member(name, size=0, kind=tarfile.REGTYPE, linkname=""):
    info = tarfile.TarInfo(name)
    info.size, info.type, info.linkname = size, kind, linkname
    return info


def write_tar(tmp_path, entries, compress=True):
    data = tar_bytes(entries)
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / cifar.ARCHIVE).write_bytes(gzip.compress(data) if compress else data)
    return folder


def good_entries(files, skip=()):
    return [(f"{FOLDER}/{n}", d) for n, d in files.items() if n not in skip]


def test_traversal_names_are_matched_never_used_as_paths(tmp_path, files):
    files, _ = files
    before = sorted(os.listdir(tmp_path))
    evil = [
        ("../evil.bin", b"x"),
        (f"/tmp/{FOLDER}/test_batch.bin", files["test_batch.bin"]),
        (f"{FOLDER}/../../evil.bin", b"x"),
        (f"../{FOLDER}/data_batch_1.bin", files["data_batch_1.bin"]),
    ]
    folder = write_tar(tmp_path, evil + good_entries(files, ("data_batch_1.bin",)))
    with pytest.raises(CIFARError, match=f"lacks {FOLDER}/data_batch_1.bin"):
        load_dataset("cifar10", data_dir=folder)
    # With the real member present too, the others are ignored.
    (folder / cifar.ARCHIVE).write_bytes(tar_bytes(evil + good_entries(files)))
    train, _ = load_dataset("cifar10", data_dir=folder)
    assert len(train) == 20
    assert sorted(os.listdir(tmp_path)) == sorted([*before, "data"])
    assert sorted(os.listdir(folder)) == [cifar.ARCHIVE]
    assert not (tmp_path.parent / "evil.bin").exists()


@pytest.mark.parametrize(
    "entry",
    [
        member(
            f"{FOLDER}/test_batch.bin", kind=tarfile.SYMTYPE, linkname="/etc/passwd"
        ),
        member(f"{FOLDER}/test_batch.bin", kind=tarfile.LNKTYPE, linkname="x"),
        member(f"{FOLDER}/test_batch.bin", kind=tarfile.DIRTYPE),
        member(f"{FOLDER}/test_batch.bin", kind=tarfile.FIFOTYPE),
    ],
    ids=["symlink", "hardlink", "folder", "fifo"],
)
def test_links_and_special_members_are_refused(tmp_path, files, entry):
    files, _ = files
    folder = write_tar(tmp_path, [entry, *good_entries(files, ("test_batch.bin",))])
    with pytest.raises(CIFARError, match="is not a regular file"):
        load_dataset("cifar10", data_dir=folder)


def test_duplicate_member_is_refused(tmp_path, files):
    files, _ = files
    entries = good_entries(files)
    folder = write_tar(tmp_path, [*entries, entries[0]])
    with pytest.raises(CIFARError, match="appears twice"):
        load_dataset("cifar10", data_dir=folder)


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize(
    ("name", "size", "message"),
    [
        (f"{FOLDER}/data_batch_1.bin", MAX_BATCH_BYTES + 3073, "more than the"),
        (f"{FOLDER}/batches.meta.txt", 10**6, "more than the 4,096 allowed"),
        ("readme.html", 2**40, "past the .* bytes of tar data allowed"),
        (f"{FOLDER}/test_batch.bin", 2**62, "declares"),
    ],
)
def test_huge_declared_sizes_are_refused_before_reading(
    tmp_path, files, name, size, message, compress
):
    # The header alone: the archive on disk stays a few kB.
    files, _ = files
    entries = [member(name, size), *good_entries(files)]
    folder = write_tar(tmp_path, entries, compress)
    assert (folder / cifar.ARCHIVE).stat().st_size < 200_000
    with pytest.raises(CIFARError, match=message):
        load_dataset("cifar10", data_dir=folder)


def test_huge_extended_header_is_read_only_up_to_the_limit(tmp_path, files):
    # A pax header whose declared size tarfile would read in one go.
    files, _ = files
    pax = member("././@PaxHeader", 2**40, tarfile.XHDTYPE)
    folder = write_tar(tmp_path, [pax, *good_entries(files)])
    with pytest.raises(CIFARError):
        load_dataset("cifar10", data_dir=folder)


def test_too_many_members_are_refused(tmp_path, files):
    files, _ = files
    junk = [(f"junk/{i}", b"") for i in range(cifar.MAX_MEMBERS)]
    folder = write_tar(tmp_path, [*junk, *good_entries(files)])
    with pytest.raises(CIFARError, match="more than 64 archive members"):
        load_dataset("cifar10", data_dir=folder)


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95])
def test_truncated_archive_is_a_typed_error(tmp_path, files, compress, keep):
    files, _ = files
    data = archive_bytes(files, compress)
    (tmp_path / cifar.ARCHIVE).write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CIFARError, match=r"unreadable tar archive|lacks|truncated"):
        load_dataset("cifar10", data_dir=tmp_path)


def test_not_an_archive_is_a_typed_error(tmp_path):
    (tmp_path / cifar.ARCHIVE).write_bytes(b"\x1f\x8bnot gzip at all" * 100)
    with pytest.raises(CIFARError, match="unreadable tar archive"):
        load_dataset("cifar10", data_dir=tmp_path)
    (tmp_path / cifar.ARCHIVE).write_bytes(b"plain garbage" * 100)
    with pytest.raises(CIFARError, match="unreadable tar archive"):
        load_dataset("cifar10", data_dir=tmp_path)


def test_tar_stream_is_read_only_up_to_the_limit(tmp_path, monkeypatch, files):
    files, _ = files
    write_archive(tmp_path, files)
    monkeypatch.setattr(cifar, "MAX_ARCHIVE_BYTES", 20_000)
    with pytest.raises(CIFARError, match="20,000 bytes of tar data allowed"):
        load_dataset("cifar10", data_dir=tmp_path)
    assert MAX_ARCHIVE_BYTES > 6 * MAX_BATCH_BYTES  # the real archive fits


def test_idx_lookup_in_a_cifar_folder_says_to_pass_the_name(tmp_path, files):
    files, _ = files
    write_folder(tmp_path, files)
    with pytest.raises(DatasetNotFoundError, match="it holds CIFAR-10: pass --dataset"):
        load_dataset("mnist", data_dir=tmp_path)


def test_read_cifar10_checks_its_arguments(tmp_path):
    with pytest.raises(TypeError, match="`source` must be a path"):
        cifar.read_cifar10(3)
    with pytest.raises(ValueError, match="`splits` must be one of 'train', 'test'"):
        cifar.read_cifar10(tmp_path, ("val",))
