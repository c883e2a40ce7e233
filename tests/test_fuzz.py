"""Seeded mutations of a real checkpoint, IDX files, images and CIFAR-10 archives,
read under a memory cap.

Each mutation (bit flips, truncations, header fields changed, members swapped,
dropped or duplicated, bytes inserted) is written to a file; one subprocess,
its address space capped with ``resource.setrlimit(RLIMIT_AS)``, reads them all
with the public readers. Every one must either load or fail with the project's
typed error (`CheckpointError`, `IDXError`, `CIFARError`, ValueError for
images): never a
MemoryError, never another exception, never a crash.
"""

from __future__ import annotations

import io
import json
import random
import struct
import subprocess
import sys
import tarfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from cifar_files import archive_bytes, batches
from cnnumpy.data import write_idx
from cnnumpy.training import save_checkpoint
from test_checkpoint_hostile import checkpoint_tree

resource = pytest.importorskip("resource")  # POSIX only

SEED = 14
MUTATIONS = {"checkpoint": 600, "idx": 600, "image": 300, "cifar": 300}
# Python, NumPy and the project need about 250 MB of address space; a reader
# that trusted a declared size of gigabytes would hit the cap.
ADDRESS_SPACE = 768 * 2**20

READER = """
import json, resource, sys, traceback
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from pathlib import Path
from cnnumpy.data import IDXError, load_images, read_idx
from cnnumpy.data.cifar import CIFARError, read_cifar10
from cnnumpy.training import CheckpointError, load_checkpoint, load_trained
from cnnumpy.training.config import resume_config

def idx(path):
    read_idx(path)

def checkpoint(path):
    load_checkpoint(path)
    load_trained(path)
    resume_config(path)

def image(path):
    load_images([path])

def cifar(path):
    read_cifar10(Path(path))

readers = {
    "idx": (idx, IDXError),
    "checkpoint": (checkpoint, CheckpointError),
    "image": (image, ValueError),
    "cifar": (cifar, CIFARError),
}
for line in sys.stdin:
    kind, path = json.loads(line)
    read, typed = readers[kind]
    try:
        read(path)
        outcome = "ok"
    except typed:
        outcome = "typed"
    except BaseException as err:
        tail = traceback.format_exc().splitlines()[-3:]
        outcome = f"{type(err).__name__}: {err!s:.200} | {' / '.join(tail)}"
    print(json.dumps([path, outcome]), flush=True)
"""


def _flip_bits(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(out))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


def _truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(len(data))]


def _insert(data: bytes, rng: random.Random) -> bytes:
    i = rng.randrange(len(data))
    return data[:i] + rng.randbytes(rng.randint(1, 64)) + data[i:]


def _big_uint32(rng: random.Random) -> bytes:
    return struct.pack(">I", rng.choice([0, 1, 2**16, 2**24, 2**31 - 1, 2**32 - 1]))


def _idx_header(data: bytes, rng: random.Random) -> bytes:
    """An IDX header field (type code, ndim, a size) set to a hostile value."""
    out = bytearray(data)
    field = rng.choice(["type", "ndim", "size"])
    if field == "type":
        out[2] = rng.randrange(256)
    elif field == "ndim":
        out[3] = rng.randrange(256)
    else:
        ndim = max(out[3], 1)
        at = 4 + 4 * rng.randrange(min(ndim, (len(out) - 4) // 4))
        out[at : at + 4] = _big_uint32(rng)
    return bytes(out)


def _members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {name: z.read(name) for name in z.namelist()}


def _zip(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # Duplicated members are one of the mutations: zipfile warns, and writes.
        warnings.filterwarnings("ignore", "Duplicate name", UserWarning)
        with zipfile.ZipFile(buffer, "w") as z:
            for name, value in members:
                z.writestr(name, value)
    return buffer.getvalue()


def _swap_members(data: bytes, rng: random.Random) -> bytes:
    members = list(_members(data).items())
    i, j = rng.sample(range(len(members)), 2)
    (a, x), (b, y) = members[i], members[j]
    members[i], members[j] = (a, y), (b, x)
    return _zip(members)


def _drop_or_duplicate_member(data: bytes, rng: random.Random) -> bytes:
    members = list(_members(data).items())
    i = rng.randrange(len(members))
    if rng.random() < 0.5:
        del members[i]
    else:
        members.append(members[i])
    return _zip(members)


def _npy_header(data: bytes, rng: random.Random) -> bytes:
    """A member's .npy header with its shape or dtype changed."""
    members = list(_members(data).items())
    i = rng.randrange(len(members))
    name, value = members[i]
    header_len = struct.unpack("<H", value[8:10])[0]
    header = value[10 : 10 + header_len].decode("latin1")
    choice = rng.choice(["shape", "dtype", "order"])
    if choice == "shape":
        shape = rng.choice(["(100000, 100000)", "(2147483647,)", "(0,)", "(-1,)", "()"])
        start, stop = header.index("'shape': ") + 9, header.index(")") + 1
        header = header[:start] + shape + header[stop:]
    elif choice == "dtype":
        dtype = rng.choice(["'|O'", "'<c16'", "'<U10'", "'<f2'", "[('a', '<f8')]"])
        start = header.index("'descr': ") + 9
        header = header[:start] + dtype + header[header.index(",", start) :]
    else:
        header = header.replace("False", "True")
    header = header.ljust(header_len - 1)[: header_len - 1] + "\n"
    members[i] = (name, value[:10] + header.encode("latin1") + value[10 + header_len :])
    return _zip(members)


def _meta_edit(data: bytes, rng: random.Random) -> bytes:
    """The JSON entry with a value replaced by a hostile one."""
    members = _members(data)
    meta = json.loads(np.load(io.BytesIO(members["__meta__.npy"])).tobytes())
    nodes = [meta]
    paths: list[tuple[dict | list, str | int]] = []
    while nodes:
        node = nodes.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            paths.append((node, key))
            if isinstance(value, (dict, list)):
                nodes.append(value)
    parent, key = rng.choice(paths)
    parent[key] = rng.choice(
        [None, -1, 2**63, 1e308, "x" * 100, [], {}, True, 10**9, [[[[]]]], 0.5]
    )
    buffer = io.BytesIO()
    text = json.dumps(meta).encode()
    np.save(buffer, np.frombuffer(text, np.uint8))
    members["__meta__.npy"] = buffer.getvalue()
    return _zip(list(members.items()))


def _image_header(data: bytes, rng: random.Random) -> bytes:
    """Four bytes of the header (sizes, offsets, counts) set to a hostile value."""
    out = bytearray(data)
    at = rng.randrange(min(len(out), 64))
    out[at : at + 4] = rng.choice(
        [b"\xff\xff\xff\xff", b"\0\0\0\0", b"\x7f\xff\xff\xff"]
    )
    return bytes(out)


def _tar_header(data: bytes, rng: random.Random) -> bytes:
    """A tar header's size or type set to a hostile value, its checksum made valid."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        offsets = [m.offset for m in tar.getmembers()]
    out = bytearray(data)
    at = rng.choice(offsets)
    block = out[at : at + 512]
    if rng.random() < 0.6:
        size = rng.choice([0, 1, 3072, 3074, 8**11 - 1, 2**40, 2**62])
        block[124:136] = (
            b"%011o\0" % size if size < 8**11 else b"\x80" + size.to_bytes(11, "big")
        )
    else:
        block[156:157] = rng.choice([b"1", b"2", b"3", b"5", b"6", b"L", b"x", b"g"])
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    out[at : at + 512] = block
    return bytes(out)


COMMON = [_flip_bits, _truncate, _insert]
MUTATORS = {
    "checkpoint": [
        *COMMON,
        _swap_members,
        _drop_or_duplicate_member,
        _npy_header,
        _meta_edit,
    ],
    "idx": [*COMMON, _idx_header],
    "image": [*COMMON, _image_header],
    "cifar": [*COMMON, _tar_header, _tar_header],
}


def _sources(folder: Path) -> dict[str, list[Path]]:
    rng = np.random.default_rng(SEED)
    checkpoint = save_checkpoint(folder / "good.npz", checkpoint_tree())
    files = []
    for name, array in [
        ("labels-idx1-ubyte.gz", rng.integers(0, 10, 50).astype(np.uint8)),
        ("images-idx3-ubyte.gz", rng.integers(0, 256, (5, 28, 28)).astype(np.uint8)),
        ("images-idx3-ubyte", rng.integers(0, 256, (5, 28, 28)).astype(np.uint8)),
        ("floats-idx2", rng.standard_normal((4, 6)).astype(np.float32)),
    ]:
        write_idx(folder / name, array)
        files.append(folder / name)
    from PIL import Image

    digit = np.zeros((28, 28), np.uint8)
    digit[5:22, 10:16] = 255
    images = []
    for name, picture in [
        ("digit.png", Image.fromarray(digit)),
        ("deep.png", Image.fromarray(digit.astype(np.uint16) * 257)),
        ("digit.ico", Image.fromarray(digit).convert("RGBA")),
        ("digit.tiff", Image.fromarray(digit)),
        ("float.tiff", Image.fromarray(digit.astype(np.float32) / 255)),
        ("digit.tga", Image.fromarray(digit)),
        ("digit.bmp", Image.fromarray(digit)),
        ("digit.gif", Image.fromarray(digit)),
        ("digit.jpg", Image.fromarray(digit)),
    ]:
        picture.save(folder / name)
        images.append(folder / name)
    archives = []
    cifar_files, _ = batches(rng, n=2)
    for name, compress in [("cifar.tar.gz", True), ("cifar.tar", False)]:
        (folder / name).write_bytes(archive_bytes(cifar_files, compress))
        archives.append(folder / name)
    return {
        "checkpoint": [checkpoint],
        "idx": files,
        "image": images,
        "cifar": archives,
    }


def _mutate(source: Path, kind: str, rng: random.Random) -> bytes:
    data = source.read_bytes()
    compressed = data[:2] == b"\x1f\x8b"
    if kind in ("idx", "cifar") and compressed and rng.random() < 0.5:
        # Mutate the IDX or tar inside the gzip too, and compress it again.
        import gzip

        inner = rng.choice(MUTATORS[kind])(gzip.decompress(data), rng)
        return gzip.compress(inner, mtime=0)
    mutators = COMMON if kind == "cifar" and compressed else MUTATORS[kind]
    return rng.choice(mutators)(data, rng)


def test_mutated_files_load_or_fail_with_the_typed_error(tmp_path):
    rng = random.Random(SEED)
    sources = _sources(tmp_path)
    cases = []
    for kind, count in MUTATIONS.items():
        for i in range(count):
            source = sources[kind][i % len(sources[kind])]
            path = tmp_path / f"{kind}-{i:03d}{''.join(source.suffixes)}"
            path.write_bytes(_mutate(source, kind, rng))
            cases.append([kind, str(path)])
    proc = subprocess.run(
        [sys.executable, "-c", READER, str(ADDRESS_SPACE)],
        input="".join(json.dumps(c) + "\n" for c in cases),
        capture_output=True,
        text=True,
        timeout=300,
    )
    outcomes = dict(json.loads(line) for line in proc.stdout.splitlines())
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    missing = [path for _, path in cases if path not in outcomes]
    assert not missing, f"the reader stopped at {missing[:1]}: {proc.stderr[-2000:]}"
    bad = {p: o for p, o in outcomes.items() if o not in ("ok", "typed")}
    assert not bad, f"{len(bad)} mutations escaped the typed errors: {bad}"
    typed = sum(o == "typed" for o in outcomes.values())
    assert typed > len(cases) // 2  # the mutations do hit the checks
