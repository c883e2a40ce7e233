"""What a run was made on: the CPU, NumPy's BLAS and its kernel, PyTorch's backend.

Every benchmark prints :func:`machine_lines` at its top, so a figure never
stands without the machine that made it, and :func:`record_run` files a run's
output into a results file under a header that names that machine (newest run
first; the file keeps every run of every machine).
"""

from __future__ import annotations

import contextlib
import datetime
import io
import os
import platform
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

# The SIMD extensions that decide which kernels BLAS and oneDNN pick.
SIMD_FLAGS = (
    "sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl",
    "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16", "amx_tile",
    "amx_bf16", "amx_int8", "asimd", "sve", "sve2",
)  # fmt: skip


# The widest vector unit, for a run's heading (first match wins).
_LEVELS = (
    ("amx_tile", "AVX-512 + AMX"), ("avx512f", "AVX-512"), ("avx2", "AVX2"),
    ("sve", "SVE"), ("asimd", "NEON"),
)  # fmt: skip


def _cpuinfo() -> list[dict[str, str]]:
    """/proc/cpuinfo as one dict per logical CPU (empty where there is none)."""
    cpus: list[dict[str, str]] = [{}]
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if not line.strip():
                cpus.append({})
            elif ":" in line:
                key, value = line.split(":", 1)
                cpus[-1].setdefault(key.strip(), value.strip())
    return [c for c in cpus if c]


def _caches() -> str:
    """CPU 0's cache sizes from sysfs, e.g. 'L1d 48K, L2 2048K, L3 107520K'."""
    parts = []
    root = Path("/sys/devices/system/cpu/cpu0/cache")
    for index in sorted(root.glob("index*")):
        with contextlib.suppress(OSError):
            level = (index / "level").read_text().strip()
            kind = (index / "type").read_text().strip()
            size = (index / "size").read_text().strip()
            if kind != "Instruction":
                parts.append(f"L{level}{'d' if kind == 'Data' else ''} {size}")
    return ", ".join(parts) or "unknown"


def cpu_info() -> dict[str, str]:
    """Model, vendor, cores, SIMD flags, caches and memory of this machine."""
    cpus = _cpuinfo()
    first = cpus[0] if cpus else {}
    model = first.get("model name") or platform.processor() or "unknown"
    vendor = first.get("vendor_id") or first.get("CPU implementer") or "unknown"
    flags = set((first.get("flags") or first.get("Features") or "").split())
    physical = {(c.get("physical id"), c.get("core id")) for c in cpus}
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    cores = f"{os.cpu_count()} logical CPUs"
    if usable is not None:
        cores += f", {usable} usable"
    if cpus and None not in {p for pair in physical for p in pair}:
        cores += f", {len(physical)} physical cores"
    mem = "unknown"
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 2**20:.1f} GiB"
    return {
        "model": model,
        "vendor": vendor,
        "arch": platform.machine(),
        "cores": cores,
        "virtual": "yes" if "hypervisor" in flags else "no",
        "simd": " ".join(f for f in SIMD_FLAGS if f in flags) or "none known",
        "caches": _caches(),
        "memory": mem,
    }


def numpy_blas() -> str:
    """NumPy's BLAS, its version and the kernel it chose (OpenBLAS's core name)."""
    from threadpoolctl import threadpool_info

    infos = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    if not infos:
        return "none found by threadpoolctl"
    return "; ".join(
        f"{i.get('internal_api')} {i.get('version') or ''}".strip()
        + f", kernel {i.get('architecture') or 'unknown'}"
        + f", {i.get('threading_layer') or 'unknown'} threads"
        for i in infos
    )


_ONEDNN_PROBE = """
import torch
x = torch.zeros(8, 16, 16, 16, requires_grad=True)
w = torch.zeros(16, 16, 3, 3)
torch.nn.functional.conv2d(x, w, padding=1).sum().backward()
"""


def onednn_info() -> tuple[str, str]:
    """oneDNN's ISA and its 3x3 float32 convolution kernel, from its verbose log.

    Run in a subprocess: oneDNN reads ``ONEDNN_VERBOSE`` once, when it starts.
    """
    env = dict(os.environ, ONEDNN_VERBOSE="1")
    try:
        out = subprocess.run(
            [sys.executable, "-c", _ONEDNN_PROBE],
            capture_output=True, text=True, env=env, timeout=120,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown", "unknown"
    isa, kernel = "unknown", "not oneDNN"
    for line in out.splitlines():
        fields = line.split(",")
        if ",info,cpu,isa:" in line:
            isa = line.split("isa:", 1)[1]
        elif ",exec,cpu,convolution," in line and kernel == "not oneDNN":
            kernel = fields[fields.index("convolution") + 1]
    return isa, kernel


def torch_backend() -> str:
    """PyTorch's CPU capability, BLAS and oneDNN (version, ISA, conv kernel)."""
    import torch

    show = torch.__config__.show()
    found = re.search(r"BLAS_INFO=([^,\s]+)", show)
    blas = found.group(1) if found else "unknown"
    onednn = next(
        (line.split("MKL-DNN", 1)[1].split("(")[0].strip()
         for line in show.splitlines() if "MKL-DNN" in line or "oneDNN" in line),
        "none",
    )  # fmt: skip
    isa, kernel = onednn_info() if torch.backends.mkldnn.is_available() else ("", "")
    return (
        f"PyTorch {torch.__version__}: CPU capability "
        f"{torch.backends.cpu.get_cpu_capability()}, BLAS {blas}, oneDNN {onednn} "
        f"(ISA: {isa}; 3x3 float32 convolution: {kernel})"
    )


def source_version() -> str:
    """cnnumpy's version and the commit of this checkout (with '+dirty')."""
    import cnnumpy

    here = Path(__file__).resolve().parent
    commit = "no git"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        run = subprocess.run(
            ["git", "-C", str(here), "describe", "--always", "--dirty=+dirty"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        commit = run.stdout.strip() or commit
    return f"cnnumpy {cnnumpy.__version__} (commit {commit})"


def machine_lines(command: str) -> list[str]:
    """The machine header of a run: markdown bullets, one fact each."""
    cpu = cpu_info()
    return [
        f"- CPU: {cpu['model']} ({cpu['vendor']}, {cpu['arch']}), {cpu['cores']}, "
        f"virtual machine: {cpu['virtual']}",
        f"- SIMD: {cpu['simd']}",
        f"- caches: {cpu['caches']}; memory: {cpu['memory']}",
        f"- NumPy {np.__version__}: BLAS {numpy_blas()}",
        f"- {torch_backend()}",
        f"- {source_version()}; Python {platform.python_version()}; "
        f"{platform.system()} {platform.release()}",
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- command: `{command}`",
    ]


def run_title() -> str:
    """The heading of a run's section: date, CPU model and SIMD level."""
    cpu = cpu_info()
    flags = cpu["simd"].split()
    level = next((name for flag, name in _LEVELS if flag in flags), "no AVX2 or NEON")
    date = f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d}"
    return f"## Run {date}: {cpu['model']}, {cpu['cores']}, {level}"


def record_run(path: str | os.PathLike, output: str) -> None:
    """Put a run's output into a results file as the newest run.

    The section (a heading naming the date and CPU, then ``output``, which
    starts with the machine header) goes before the file's first ``## ``
    heading, so runs stay newest first; a file without one gets it at the end.
    The file is replaced atomically.
    """
    path = Path(path)
    text = path.read_text() if path.exists() else ""
    section = f"{run_title()}\n\n{output.strip()}\n\n"
    lines = text.splitlines(keepends=True)
    at = next((i for i, ln in enumerate(lines) if ln.startswith("## ")), len(lines))
    if at == len(lines) and text and not text.endswith("\n\n"):
        section = ("\n" if text.endswith("\n") else "\n\n") + section
    new = "".join(lines[:at]) + section + "".join(lines[at:])
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(new)
    tmp.replace(path)


class Tee(io.TextIOBase):
    """A stdout that also keeps what was written, for :func:`record_run`."""

    def __init__(self, stream: io.TextIOBase) -> None:
        self.stream = stream
        self.kept = io.StringIO()

    def write(self, text: str) -> int:
        self.kept.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


@contextlib.contextmanager
def recorded_run(
    script: str, argv: list[str] | None, record: str | None
) -> Iterator[None]:
    """Print the machine header, run the block, then file its output into ``record``.

    What the block prints goes to stdout and, with ``record``, into that
    results file as its newest run (`record_run`), headed by the command.
    """
    tee = Tee(sys.stdout)
    sys.stdout = tee
    try:
        command = f"python benchmarks/{script} " + " ".join(argv or sys.argv[1:])
        print("\n".join(machine_lines(command.strip())))
        yield
    finally:
        sys.stdout = tee.stream
    if record:
        record_run(record, tee.kept.getvalue())
