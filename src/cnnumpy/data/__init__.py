"""Data: IDX files, the MNIST family and CIFAR-10, batching and image loading.

The core needs NumPy alone; Pillow is imported only to read PNG or JPEG files.
"""

from cnnumpy.data import transforms
from cnnumpy.data.cifar import CIFARError
from cnnumpy.data.dataset import Dataset, normalization_stats
from cnnumpy.data.datasets import (
    DATASETS,
    DatasetNotFoundError,
    default_cache_dir,
    load_dataset,
    load_test_set,
)
from cnnumpy.data.download import DownloadError, download
from cnnumpy.data.idx import IDXError, read_idx, write_idx
from cnnumpy.data.images import load_images
from cnnumpy.data.loader import DataLoader

__all__ = [
    "DATASETS",
    "CIFARError",
    "DataLoader",
    "Dataset",
    "DatasetNotFoundError",
    "DownloadError",
    "IDXError",
    "default_cache_dir",
    "download",
    "load_dataset",
    "load_images",
    "load_test_set",
    "normalization_stats",
    "read_idx",
    "transforms",
    "write_idx",
]
