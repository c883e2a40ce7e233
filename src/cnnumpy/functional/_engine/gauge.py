"""The gauges: whether handing parts to worker threads has paid off lately.

The machine may be shared. When another process holds a core, a worker starts
late, the caller waits for it, and the parts would have been done sooner one
after the other in the caller. And a small op (a LeNet-5 activation or
pooling at batch 100) can take less time than waking a worker costs on some
machines: its parts never overlap. So every
hand-off reports its wall time and the CPU time its parts took (per-thread
CPU clocks), to the gauge of its op and size (:class:`Gauges`); while handing
off does not pay for that op, its parts run in the caller, and the workers
are tried again after a pause. The parts are the same either way, and so are
the results, bit for bit.
"""

from __future__ import annotations

import sys

__all__ = ["GAUGED", "Gauge", "Gauges"]

# A gauge (see Gauge) judges hand-offs WINDOW at a time (each kind of
# hand-off comes once or twice per LeNet-5 training step, so a window spans
# 16 to 32 steps), so that one late worker does not decide.
# A window pays if its wall time is below PAYS times its parts' CPU time.
# Two parts that overlap fully take half their CPU time. Run in turn they
# would take their CPU time less what two busy threads slow each other down:
# next to nothing for LeNet's thin products, more for compute-bound ones.
# So the break-even lies somewhat below the CPU time, lower the more
# compute-bound the parts; PAYS sits nearer the compute-bound end, so that
# handing off goes on only while the second thread clearly saves time.
# After a window that does not pay, the next HOLD hand-offs of that kind run
# in the caller; HOLD doubles with each such window in a row, up to MAX_HOLD
# (tens of seconds of training), and starts again at HOLD after a window that
# pays.
# Chosen by A/B runs; see benchmarks/results-lenet.md#engine-constants
WINDOW = 32
PAYS = 0.75
HOLD = 256
MAX_HOLD = 4096
# The gauge needs a per-thread CPU clock finer than a part. Windows counts a
# thread's CPU time in scheduler ticks (about 15 ms), so there it stays off
# and parts are always handed off.
GAUGED = sys.platform != "win32"


class Gauge:
    """Whether handing parts to the workers has paid off lately.

    Each hand-off reports its wall time (from handing out the parts to having
    every result) and the CPU time its parts took, in all threads. On free
    cores the parts overlap and the wall time is well below the CPU time; when
    another process holds a core, a worker runs late and the wall time grows
    past it. See WINDOW, PAYS, HOLD and MAX_HOLD.
    """

    def __init__(self) -> None:
        self.runs = 0  # hand-offs in the current window
        self.wall = 0.0
        self.cpu = 0.0
        self.hold = 0  # hand-offs still to run in the caller
        self.next_hold = HOLD

    def hand_off(self) -> bool:
        """Whether the next run should hand parts out (False: run them here)."""
        if self.hold:
            self.hold -= 1
            return False
        return True

    def record(self, wall: float, cpu: float) -> None:
        """Add a hand-off's wall and CPU seconds; judge the window when full."""
        self.runs += 1
        self.wall += wall
        self.cpu += cpu
        if self.runs < WINDOW:
            return
        if self.wall > PAYS * self.cpu:
            self.hold = self.next_hold
            self.next_hold = min(2 * self.next_hold, MAX_HOLD)
        else:
            self.next_hold = HOLD
        self.runs, self.wall, self.cpu = 0, 0.0, 0.0


class Gauges:
    """A :class:`Gauge` per kind of hand-off: an op (its code) and its size.

    One gauge for everything would let the large products, whose parts
    overlap well, pay for the small element-wise ops, whose parts do not;
    each kind is judged on its own, so the second thread is used where it
    pays on this machine and nowhere else. ``hold`` starts each new gauge
    held for that many hand-offs (tests); ``refused`` counts the hand-offs
    the gauges ran in the caller.
    """

    def __init__(self, hold: int = 0) -> None:
        self.gauges: dict[object, Gauge] = {}
        self.start_hold = hold
        self.refused = 0

    def _of(self, key: object) -> Gauge:
        g = self.gauges.get(key)
        if g is None:
            g = self.gauges[key] = Gauge()
            g.hold = self.start_hold
        return g

    def hand_off(self, key: object) -> bool:
        """Whether the next hand-off of this kind should hand parts out."""
        if self._of(key).hand_off():
            return True
        self.refused += 1
        return False

    def record(self, key: object, wall: float, cpu: float) -> None:
        """Tell the gauge of this kind a hand-off's wall and CPU seconds."""
        self._of(key).record(wall, cpu)
