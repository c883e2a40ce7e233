"""`Communicator`: the processes that train one model, and what they exchange.

Everything goes through mpi4py's buffer methods (the upper-case ``Allreduce``,
``Allgatherv``, ``Bcast``) on NumPy arrays: no Python object is pickled, so
what travels is the bytes of the arrays and nothing else. Without MPI, the
`Communicator` of one process returns every input as it is, so code written
for N processes runs unchanged in one.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from cnnumpy.distributed.launch import launched_by_mpi
from cnnumpy.validation import check_bool, check_choice, check_int

__all__ = ["Communicator", "split_batch", "world"]

MPI_EXTRA = "pip install 'cnnumpy[mpi]'"


def split_batch(n: int, parts: int) -> list[int]:
    """Sizes of ``parts`` near-equal parts of ``n`` items, larger ones first.

    Parameters
    ----------
    n : int
        Items to share (>= 0).
    parts : int
        Number of parts (>= 1).

    Returns
    -------
    list of int
        ``parts`` sizes that add up to ``n`` and differ by at most one.

    Examples
    --------
    >>> split_batch(100, 3), split_batch(2, 3)
    ([34, 33, 33], [1, 1, 0])
    """
    n = check_int(n, "n", minimum=0)
    parts = check_int(parts, "parts", minimum=1)
    q, r = divmod(n, parts)
    return [q + 1 if i < r else q for i in range(parts)]


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class Communicator:
    """This process's place among the ranks, and the collectives they make.

    Parameters
    ----------
    mpi_comm : mpi4py.MPI.Comm, optional
        The ranks to work with; without it, this process alone (size 1) and
        mpi4py is not imported.

    Attributes
    ----------
    rank, size : int
        This process's index and the number of ranks.
    """

    def __init__(self, mpi_comm: Any = None) -> None:
        self._comm = mpi_comm
        self._group: Any = None  # the ranks of `cnnumpy.distributed.local`
        if mpi_comm is None:
            self.rank, self.size, self._local_size = 0, 1, 1
            return
        if not type(mpi_comm).__module__.startswith("mpi4py"):
            raise TypeError(
                f"`mpi_comm` must be an mpi4py.MPI.Comm or None, got "
                f"{type(mpi_comm).__name__}"
            )
        from mpi4py import MPI  # loaded already: it made mpi_comm

        self._mpi = MPI
        self.rank, self.size = mpi_comm.Get_rank(), mpi_comm.Get_size()
        self._local_size: int | None = None

    @classmethod
    def _local(cls, group: Any) -> Communicator:
        """The communicator of one rank of a `cnnumpy.distributed.local` group."""
        comm = cls()
        comm._group = group
        comm.rank, comm.size, comm._local_size = group.rank, group.size, group.size
        return comm

    @property
    def launcher(self) -> str | None:
        """What started the ranks: 'mpiexec', 'processes' (``--processes``) or None."""
        if self._group is not None:
            return "processes"
        return None if self._comm is None else "mpiexec"

    @property
    def local_size(self) -> int:
        """Ranks on this machine (those that share its memory).

        Collective the first time: every rank must ask.
        """
        if self._local_size is None:
            local = self._comm.Split_type(self._mpi.COMM_TYPE_SHARED)
            self._local_size = local.Get_size()
            local.Free()
        return self._local_size

    @property
    def is_root(self) -> bool:
        """Whether this is rank 0, the one that prints and writes files."""
        return self.rank == 0

    def __repr__(self) -> str:
        return f"Communicator(rank={self.rank}, size={self.size})"

    def default_threads(self) -> int:
        """The engine threads for this rank: its share of the machine's cores.

        Collective the first time (see `local_size`).
        """
        return max(1, _usable_cpus() // self.local_size)

    def part(self, n: int) -> slice:
        """This rank's slice of ``n`` items cut by `split_batch`.

        Examples
        --------
        >>> Communicator().part(100)
        slice(0, 100, None)
        """
        sizes = split_batch(n, self.size)
        start = sum(sizes[: self.rank])
        return slice(start, start + sizes[self.rank])

    def _check_buffer(self, array: object, name: str) -> np.ndarray:
        if not isinstance(array, np.ndarray):
            raise TypeError(
                f"`{name}` must be a numpy.ndarray, got {type(array).__name__}"
            )
        if not array.flags.c_contiguous or not array.flags.writeable:
            raise ValueError(f"`{name}` must be a C-contiguous, writeable array")
        return array

    def allreduce(self, array: np.ndarray, op: str = "sum") -> np.ndarray:
        """Replace ``array`` by its elementwise sum (or max, min) over the ranks.

        In place, one buffer ``Allreduce``; returns ``array``.
        """
        array = self._check_buffer(array, "array")
        check_choice(op, "op", ("sum", "max", "min"))
        if self._group is not None and self.size > 1:
            self._group.allreduce(array, op)
        elif self._comm is not None and self.size > 1:
            mpi_op = {"sum": self._mpi.SUM, "max": self._mpi.MAX, "min": self._mpi.MIN}
            self._comm.Allreduce(self._mpi.IN_PLACE, array, op=mpi_op[op])
        return array

    def barrier(self) -> None:
        """Wait until every rank has called `barrier` (a one-number ``Allreduce``)."""
        self.allreduce(np.zeros(1))

    def any(self, *flags: bool) -> tuple[bool, ...]:
        """Each flag or-ed over the ranks: true everywhere if true on one rank."""
        for i, flag in enumerate(flags):
            check_bool(flag, f"flags[{i}]")
        buffer = np.array(flags, dtype=np.int32)
        return tuple(bool(v) for v in self.allreduce(buffer, "max"))

    def same(self, *values: int) -> bool:
        """Whether every rank passed the same ints (one ``Allreduce`` of max).

        Examples
        --------
        >>> Communicator().same(60000, 100)
        True
        """
        for i, value in enumerate(values):
            check_int(value, f"values[{i}]", minimum=-(2**62), maximum=2**62)
        mine = np.array(values, dtype=np.int64)
        found = self.allreduce(np.concatenate([mine, -mine]), "max")
        return bool(np.array_equal(found[: len(mine)], -found[len(mine) :]))

    def allgather_rows(self, part: np.ndarray, n: int) -> np.ndarray:
        """The ``n`` rows of which each rank holds its `part` ``(n_rank, ...)``.

        Every rank gets the whole array, rows in rank order (``Allgatherv``).
        All ranks must pass arrays of one dtype with the same row shape.
        """
        if not isinstance(part, np.ndarray) or part.ndim < 1:
            raise TypeError(f"`part` must be a numpy.ndarray with rows, got {part!r}")
        mine = self.part(n)
        if len(part) != mine.stop - mine.start:
            raise ValueError(
                f"`part` must hold this rank's {mine.stop - mine.start} of {n} "
                f"rows, got {len(part)}"
            )
        if self.size == 1:
            return part
        row = int(np.prod(part.shape[1:], dtype=np.int64))
        out = np.empty((n, *part.shape[1:]), dtype=part.dtype)
        counts = [size * row for size in split_batch(n, self.size)]
        if self._group is not None:
            self._group.allgather(np.ascontiguousarray(part), out, counts)
        else:
            self._comm.Allgatherv(np.ascontiguousarray(part), [out, counts])
        return out

    def broadcast_text(self, text: str | None) -> str:
        """Rank 0's ``text`` on every rank (other ranks may pass None)."""
        if self.is_root and not isinstance(text, str):
            raise TypeError(f"`text` must be a str on rank 0, got {text!r}")
        if self.size == 1:
            return text  # type: ignore[return-value]
        bcast = (
            self._group.broadcast
            if self._group is not None
            else lambda a: self._comm.Bcast(a, root=0)
        )
        data = text.encode("utf-8") if self.is_root else b""  # type: ignore[union-attr]
        length = np.array([len(data)], dtype=np.int64)
        bcast(length)
        buffer = np.frombuffer(data, np.uint8).copy() if self.is_root else None
        if buffer is None:
            buffer = np.empty(int(length[0]), dtype=np.uint8)
        bcast(buffer)
        return buffer.tobytes().decode("utf-8")

    def abort(self, code: int = 1) -> None:
        """End every rank at once with exit status ``code`` (``MPI_Abort``).

        In one process without MPI, raises ``SystemExit(code)``.
        """
        code = check_int(code, "code", minimum=0, maximum=255)
        if self._group is not None:
            self._group.abort(code)
            self._group._exit(code)
        if self._comm is None:
            raise SystemExit(code)
        self._comm.Abort(code)


_installed: list[Communicator] = []  # this process's rank of a local group


def _install(comm: Communicator) -> None:
    """Make ``comm`` what `world` returns in this process (a local group's rank)."""
    _installed[:] = [comm]


def world() -> Communicator:
    """All the processes ``mpiexec`` (or ``--processes``) started, or this one alone.

    mpi4py is imported (and MPI started) only when an MPI launcher started
    this process (see `launched_by_mpi`).

    Raises
    ------
    ImportError
        Under ``mpiexec`` without mpi4py, saying how to install it.
    """
    if _installed:
        return _installed[0]
    if not launched_by_mpi():
        return Communicator()
    try:
        from mpi4py import MPI
    except ImportError:
        raise ImportError(
            f"started by mpiexec, but mpi4py is not installed: {MPI_EXTRA}"
        ) from None
    return Communicator(MPI.COMM_WORLD)
