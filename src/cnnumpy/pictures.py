"""The canvas and the file of every picture cnnumpy draws: an Agg figure
(matplotlib, imported when drawing, through `cnnumpy.extras`), written
atomically."""

from __future__ import annotations

import math
import os
import secrets
from pathlib import Path

from cnnumpy.extras import matplotlib_classes
from cnnumpy.validation import check_path

__all__ = ["figure", "grid_shape", "save"]


def _image_path(path: object, canvas_class: type) -> Path:
    """``path`` as a Path whose suffix names a format matplotlib can write."""
    path = Path(check_path(path, "path"))
    formats = canvas_class.get_supported_filetypes()
    if path.suffix[1:].lower() not in formats:
        raise ValueError(
            f"`path` must end in an image suffix ({', '.join(sorted(formats))}), "
            f"got {str(path)!r}"
        )
    return path


def figure(path: object, figsize: tuple[float, float]):
    """A constrained-layout figure on an Agg canvas, and ``path`` checked."""
    Figure, FigureCanvasAgg, _ = matplotlib_classes()
    path = _image_path(path, FigureCanvasAgg)
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, path


def save(fig, path: Path) -> None:
    """Write ``fig`` to ``path`` atomically: a temporary file, then a rename.

    The temporary file sits in the same folder (so the rename is atomic) and ends
    in ``.tmp`` plus the suffix of ``path`` (so matplotlib keeps the format). It is
    removed if drawing fails; an older ``path`` then stays untouched.
    """
    token = f"{os.getpid()}.{secrets.token_hex(4)}"  # the pid: see training.lock
    tmp = path.with_name(f".{path.stem}.{token}.tmp{path.suffix}")
    # O_EXCL: never write over someone else's file; mode 0o666 under the umask,
    # so the final image gets the permissions a plain open() would give it.
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        fig.savefig(tmp, format=path.suffix[1:].lower(), dpi=100)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def grid_shape(n: int) -> tuple[int, int]:
    """Rows and columns of a near-square grid of ``n >= 1`` panels."""
    cols = math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols
