"""Whether an MPI launcher started this process, read from its environment alone.

``mpiexec`` sets variables in every process it starts, before any MPI library
is loaded; reading them lets ``cnnumpy train`` run as today, without importing
mpi4py, when nobody launched it under MPI.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from cnnumpy.validation import check_int

__all__ = ["RANK_VARIABLES", "SIZE_VARIABLES", "environment_rank", "launched_by_mpi"]

# MPICH's and Intel MPI's Hydra (and Slurm's PMI), Open MPI, PMIx, MVAPICH.
RANK_VARIABLES = (
    "PMI_RANK",
    "OMPI_COMM_WORLD_RANK",
    "PMIX_RANK",
    "MV2_COMM_WORLD_RANK",
)
SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


def _environ(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    if environ is None:
        return os.environ
    if not isinstance(environ, Mapping):
        raise TypeError(
            f"`environ` must be a mapping of str to str or None, got "
            f"{type(environ).__name__}"
        )
    return environ


def launched_by_mpi(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``mpiexec`` (or ``mpirun``, ``srun``) started this process.

    Parameters
    ----------
    environ : mapping, optional
        The environment to read (default: ``os.environ``).

    Examples
    --------
    >>> launched_by_mpi({"PMI_RANK": "1", "PMI_SIZE": "2"}), launched_by_mpi({})
    (True, False)
    """
    env = _environ(environ)
    return any(name in env for name in RANK_VARIABLES + SIZE_VARIABLES)


def environment_rank(environ: Mapping[str, str] | None = None) -> int:
    """This process's rank as the launcher announced it (0 when not launched).

    Known before MPI starts, so a process can tell whether it is rank 0 (the
    one that prints) before importing mpi4py.

    Examples
    --------
    >>> environment_rank({"OMPI_COMM_WORLD_RANK": "3"}), environment_rank({})
    (3, 0)
    """
    env = _environ(environ)
    for name in RANK_VARIABLES:
        if name in env:
            try:
                rank = int(env[name])
            except ValueError:
                raise ValueError(
                    f"environment variable {name} must be an int, got {env[name]!r}"
                ) from None
            return check_int(rank, name, minimum=0)
    return 0
