"""The optional dependencies, imported only where a feature needs them.

The core needs NumPy alone. Pictures need matplotlib (the ``plot`` extra, part
of ``cli``); the command line's progress bars tqdm and its image reading
Pillow (``cli``). Each is imported inside the function that uses it, through
here, so that a missing one raises an ImportError that says what to install.
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
