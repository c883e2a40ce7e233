"""`Dataset`: images, labels and class names of one split, and its normalisation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from cnnumpy.validation import (
    check_bool,
    check_dtype,
    check_instance,
    check_reals,
    check_str,
)

__all__ = ["Dataset", "Stat", "normalization_stats", "normalize"]

# A normalization statistic: one for all pixels, or one per channel.
Stat = float | tuple[float, ...]


@dataclass(frozen=True, eq=False)
class Dataset:
    """Images and their labels: one split of a classification data set.

    The arrays are kept as given (labels converted to int64 if needed), not
    copied; `subset` and `normalized` return new data sets.

    Parameters
    ----------
    images : numpy.ndarray
        (N, C, H, W), uint8 pixels in 0..255 or floats; C is 1 for the MNIST
        family, 3 for CIFAR-10.
    labels : numpy.ndarray
        (N,) integer class indices in ``[0, len(class_names))``, stored as int64.
    class_names : tuple of str
        The name of each class, by index.
    name : str
        The data set's name, such as ``'mnist'``.

    Raises
    ------
    TypeError, ValueError
        If a field has the wrong type or shape, the lengths differ, or a label
        is out of range.

    Examples
    --------
    >>> images = np.zeros((3, 1, 2, 2), dtype=np.uint8)
    >>> data = Dataset(images, np.array([0, 1, 1]), ("cat", "dog"), "pets")
    >>> len(data), data.labels.dtype
    (3, dtype('int64'))
    >>> data.subset([2, 0]).labels
    array([1, 0])
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    name: str

    def __post_init__(self) -> None:
        images, labels = self.images, self.labels
        check_instance(images, "images", np.ndarray, "a numpy.ndarray")
        if images.ndim != 4:
            raise ValueError(
                f"`images` must be 4-D (N, C, H, W), got shape {images.shape}"
            )
        if images.dtype != np.uint8 and not np.issubdtype(images.dtype, np.floating):
            raise TypeError(f"`images` must be uint8 or floating, got {images.dtype}")
        labels = np.asarray(labels)
        if labels.size and not _is_int_dtype(labels.dtype):
            raise TypeError(f"`labels` must hold integers, got {labels.dtype}")
        if labels.ndim != 1:
            raise ValueError(f"`labels` must be 1-D (N,), got shape {labels.shape}")
        if len(labels) != len(images):
            raise ValueError(
                f"`labels` must have one label per image ({len(images)}), "
                f"got {len(labels)}"
            )
        names = self.class_names
        if not isinstance(names, (tuple, list)) or not all(
            isinstance(n, str) for n in names
        ):
            raise TypeError(f"`class_names` must be a tuple of str, got {names!r}")
        if not names:
            raise ValueError(f"`class_names` must be non-empty, got {names!r}")
        if labels.size and not 0 <= labels.min() <= labels.max() < len(names):
            raise ValueError(
                f"`labels` must be in [0, {len(names)}) for {len(names)} "
                f"`class_names`, got {labels.min()}..{labels.max()}"
            )
        check_str(self.name, "name")
        # frozen: the checked, converted fields are set through object.__setattr__.
        object.__setattr__(self, "labels", labels.astype(np.int64, copy=False))
        object.__setattr__(self, "class_names", tuple(names))

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        N, C, H, W = self.images.shape
        return (
            f"Dataset(name={self.name!r}, N={N}, image=({C}, {H}, {W}) "
            f"{self.images.dtype}, classes={len(self.class_names)})"
        )

    def subset(self, indices: object) -> Dataset:
        """The items at ``indices`` (ints in ``[0, N)``, in the given order) as a copy.

        Raises
        ------
        ValueError
            If ``indices`` is not 1-D integers in range.
        """
        idx = np.asarray(indices)
        if idx.ndim != 1 or not (idx.size == 0 or _is_int_dtype(idx.dtype)):
            raise ValueError(
                f"`indices` must be 1-D integers, got shape {idx.shape} of {idx.dtype}"
            )
        idx = idx.astype(np.intp)
        if idx.size and not 0 <= idx.min() <= idx.max() < len(self):
            raise ValueError(
                f"`indices` must be in [0, {len(self)}), got {idx.min()}..{idx.max()}"
            )
        return Dataset(self.images[idx], self.labels[idx], self.class_names, self.name)

    def normalized(
        self, mean: Stat, std: Stat, dtype: npt.DTypeLike = np.float32
    ) -> Dataset:
        """The data set with images ``(x - mean) / std`` in ``dtype``.

        ``x`` is the pixel in [0, 1]: uint8 images are divided by 255 first,
        float images are taken as already scaled. Labels are shared, not copied.

        Parameters
        ----------
        mean, std : float or sequence of C floats
            As returned by `normalization_stats`: one value for every pixel,
            or one per channel; ``std`` must be positive.
        dtype : float32 or float64
            The dtype of the result and of the arithmetic.

        Examples
        --------
        >>> data = Dataset(np.array([[[[0, 255]]]], dtype=np.uint8),
        ...                np.array([0]), ("0",), "tiny")
        >>> data.normalized(0.5, 0.5).images
        array([[[[-1.,  1.]]]], dtype=float32)
        """
        x = normalize(self.images, mean, std, dtype)
        return Dataset(x, self.labels, self.class_names, self.name)


def normalize(
    images: np.ndarray, mean: Stat, std: Stat, dtype: npt.DTypeLike = np.float32
) -> np.ndarray:
    """``(x - mean) / std`` in ``dtype``, ``x`` the pixels in [0, 1].

    uint8 images are divided by 255 first; float images are taken as already
    scaled. ``mean`` and ``std`` are numbers, or sequences of one value per
    channel of images (N, C, H, W). `Dataset.normalized` applies this to a
    data set's images.
    """
    dtype = check_dtype(dtype)
    mean = check_reals(mean, "mean")
    std = check_reals(std, "std", above=0)
    images = np.asarray(images)
    x = images.astype(dtype)
    if images.dtype == np.uint8:
        x /= 255
    x -= _broadcast(mean, "mean", images.shape, dtype)
    x /= _broadcast(std, "std", images.shape, dtype)
    return x


def _broadcast(
    stat: Stat, name: str, shape: tuple[int, ...], dtype: np.dtype
) -> np.ndarray:
    """``stat`` as a scalar, or per channel as (1, C, 1, 1), in ``dtype``."""
    if isinstance(stat, float):
        return dtype.type(stat)
    if len(shape) != 4 or shape[1] != len(stat):
        raise ValueError(
            f"`{name}` has {len(stat)} values, one per channel, but the images "
            f"have shape {shape} (expected (N, {len(stat)}, H, W))"
        )
    return np.asarray(stat, dtype=dtype).reshape(1, -1, 1, 1)  # (1, C, 1, 1)


def _is_int_dtype(dtype: np.dtype) -> bool:
    return np.issubdtype(dtype, np.integer)


def normalization_stats(
    dataset: Dataset, per_channel: bool = False
) -> tuple[Stat, Stat]:
    """Mean and (population) standard deviation of the pixels in [0, 1].

    uint8 images are divided by 255, float images taken as they are; the sums
    run in float64. Pass the result of the training split to
    `Dataset.normalized` for both splits.

    Parameters
    ----------
    dataset : Dataset
    per_channel : bool
        Whether to return one mean and one std per channel (tuples of C
        floats, as torchvision's ``Normalize`` takes for colour images)
        instead of one over all pixels (floats).

    Raises
    ------
    TypeError
        If ``dataset`` is not a `Dataset`.
    ValueError
        If it is empty.

    Examples
    --------
    >>> data = Dataset(np.array([[[[0, 255]]]], dtype=np.uint8),
    ...                np.array([0]), ("0",), "tiny")
    >>> normalization_stats(data)
    (0.5, 0.5)
    >>> normalization_stats(data, per_channel=True)
    ((0.5,), (0.5,))
    """
    check_instance(dataset, "dataset", Dataset, "a Dataset")
    per_channel = check_bool(per_channel, "per_channel")
    images = dataset.images
    if images.size == 0:
        raise ValueError(f"`dataset` {dataset.name!r} has no pixels")
    if per_channel:
        stats = [_stats(images[:, c]) for c in range(images.shape[1])]
        return tuple(m for m, _ in stats), tuple(s for _, s in stats)
    return _stats(images)


def _stats(images: np.ndarray) -> tuple[float, float]:
    if images.dtype == np.uint8:
        # A histogram of the 256 values: exact, with no float copy of the images.
        counts = np.bincount(images.ravel(), minlength=256)
        values = np.arange(256) / 255
        mean = counts @ values / images.size
        var = counts @ (values - mean) ** 2 / images.size
    else:
        mean = images.mean(dtype=np.float64)
        var = images.var(dtype=np.float64)
    return float(mean), float(np.sqrt(var))
