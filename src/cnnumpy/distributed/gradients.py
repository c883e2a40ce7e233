"""Gradients summed over the ranks, and the check that the ranks' weights agree."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from cnnumpy.distributed.comm import Communicator
from cnnumpy.nn.parameter import Parameter
from cnnumpy.validation import check_instance, check_real

__all__ = [
    "GradientAllreduce",
    "RanksDisagreeError",
    "check_weights_agree",
    "root_only",
    "weights_checksum",
]


class RanksDisagreeError(RuntimeError):
    """The ranks' weights differ: they no longer train one model."""


def _check_comm(comm: object) -> Communicator:
    return check_instance(
        comm, "comm", Communicator, "a cnnumpy.distributed.Communicator"
    )


def _check_params(params: Iterable[Parameter]) -> list[Parameter]:
    params = list(params)
    for i, p in enumerate(params):
        if not isinstance(p, Parameter):
            raise TypeError(
                f"`params` must hold nn.Parameter, got {type(p).__name__} at {i}"
            )
    if not params:
        raise ValueError("`params` must hold at least one parameter, got none")
    return params


class GradientAllreduce:
    """Turn each rank's gradient of its part into the whole batch's gradient.

    Each rank computed the gradient of the mean loss over its part of a batch.
    Weighting it by the part's share of the batch (``weight`` = part size /
    batch size) and summing over the ranks gives the gradient of the mean
    over the whole batch, as one process would get it, not a mean of means.
    All gradients travel in one contiguous buffer of the parameters' dtype,
    in one ``Allreduce``; a parameter without a gradient counts as zero.

    Parameters
    ----------
    params : iterable of nn.Parameter
        The parameters, in the same order on every rank.
    comm : Communicator

    Examples
    --------
    >>> from cnnumpy import nn
    >>> layer = nn.Linear(2, 1, dtype=np.float64)
    >>> layer.weight.grad = np.ones((1, 2))
    >>> extras = GradientAllreduce(layer.parameters(), Communicator())(0.5, 3.0)
    >>> layer.weight.grad.tolist(), layer.bias.grad.tolist(), extras.tolist()
    ([[0.5, 0.5]], [0.0], [3.0])
    """

    def __init__(self, params: Iterable[Parameter], comm: Communicator) -> None:
        self.params = _check_params(params)
        self.comm = _check_comm(comm)
        self.dtype = np.result_type(*(p.dtype for p in self.params))
        sizes = [p.data.size for p in self.params]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int).tolist()
        self.buffer = np.empty(self.offsets[-1], dtype=self.dtype)

    @property
    def nbytes(self) -> int:
        """Bytes of gradients each rank sends per step."""
        return int(self.offsets[-1] * self.dtype.itemsize)

    def __call__(self, weight: float, *extras: float) -> np.ndarray:
        """Sum ``weight`` times each gradient over the ranks, in place.

        ``extras`` (a loss sum, a count) travel at the end of the same buffer
        and come back summed, in the parameters' dtype.
        """
        weight = check_real(weight, "weight", minimum=0)
        for i, value in enumerate(extras):
            check_real(value, f"extras[{i}]")
        n = self.offsets[-1]
        buffer = self.buffer
        if len(buffer) != n + len(extras):
            buffer = self.buffer = np.empty(n + len(extras), dtype=self.dtype)
        for p, start, stop in zip(self.params, self.offsets, self.offsets[1:]):
            if p.grad is None:
                buffer[start:stop] = 0
            else:
                np.multiply(p.grad.reshape(-1), weight, out=buffer[start:stop])
        buffer[n:] = extras
        self.comm.allreduce(buffer)
        for p, start, stop in zip(self.params, self.offsets, self.offsets[1:]):
            summed = buffer[start:stop].reshape(p.shape)
            if p.grad is None:
                p.grad = summed.astype(p.dtype, copy=True)
            else:
                p.grad[...] = summed
        return buffer[n:].copy()


def weights_checksum(params: Iterable[Parameter]) -> int:
    """A 64-bit sum of the parameters' bits: equal weights, equal sums.

    Bits rather than values, so it tells apart weights that differ in the last
    bit, and costs one pass over them.
    """
    total, offset = np.uint64(0), 1
    for p in _check_params(params):
        data = np.ascontiguousarray(p.data)
        bits = data.view(np.uint32 if data.itemsize == 4 else np.uint64).reshape(-1)
        # Each element's bits times its position: the order counts too.
        place = np.arange(offset, offset + len(bits), dtype=np.uint64)
        offset += len(bits)
        with np.errstate(over="ignore"):
            total += (bits.astype(np.uint64) * place).sum(dtype=np.uint64)
    return int(total)


def check_weights_agree(
    params: Iterable[Parameter], comm: Communicator, when: str = "now"
) -> None:
    """Raise on every rank if the ranks' weights differ (checksums allreduced).

    Raises
    ------
    RanksDisagreeError
        When a rank's weights differ from another's: the ranks no longer
        train one model (a rank skipped a step, or computes differently).
    """
    comm = _check_comm(comm)
    if not isinstance(when, str):
        raise TypeError(f"`when` must be a str, got {type(when).__name__}")
    checksum = weights_checksum(params)
    if not comm.same(checksum & 0xFFFFFFFF, checksum >> 32):  # halves fit int64
        raise RanksDisagreeError(
            f"the {comm.size} ranks' weights differ {when} (checksum of rank "
            f"{comm.rank}: {checksum:#018x}): the ranks no longer train one model"
        )


def root_only(items: Sequence[Any] | Iterable[Any], comm: Communicator) -> list[Any]:
    """``items`` (callbacks, say) on rank 0, nothing on the others.

    Examples
    --------
    >>> root_only(["progress bar"], Communicator())
    ['progress bar']
    """
    return list(items) if _check_comm(comm).is_root else []
