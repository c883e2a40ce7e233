"""Optional dependencies, imported inside the functions that need them.

The core needs NumPy alone. Pictures need matplotlib (the ``plot`` extra, part
of ``cli``), imported through :func:`matplotlib_classes` so that a missing one
raises an ImportError saying what to install. The command line's progress bars
(tqdm) and image reading (Pillow) are imported the same way where they are
used, in ``cnnumpy.cli`` and ``cnnumpy.data.images``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["matplotlib_classes"]

# Cells of a picture's grid get their number written in only up to this many.
MAX_LABELS = 400


def matplotlib_classes() -> tuple[Any, Any, Any]:
    """matplotlib's ``Figure``, ``FigureCanvasAgg`` and ``Rectangle``.

    Figures are drawn on the Agg canvas directly, without pyplot: no window,
    no global backend switched behind the caller's back.

    Raises
    ------
    ImportError
        If matplotlib is not installed, saying how to install it.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.patches import Rectangle
    except ImportError as err:
        raise ImportError(
            "plotting needs matplotlib: pip install 'cnnumpy[plot]'"
        ) from err
    return Figure, FigureCanvasAgg, Rectangle
