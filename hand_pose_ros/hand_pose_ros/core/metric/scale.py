"""
A hand-size factor as the median of per-frame measurements: the one scale lock.

A person's hand does not change size, but each frame's measurement of it (depth against
the PnP fit, later triangulation) is noisy and now and then wrong; the median over frames is
robust to the odd bad reading. A track locks it once enough frames are in, so its metric 3D
stops breathing with the measurement noise; an offline estimator keeps a sliding window.
"""

from __future__ import annotations

from collections import deque

import numpy as np


class MedianScale:
    """
    Per-frame hand-size ratios and their median.

    frames_needed: how many ratios make the value trustworthy (`ready`). With window None
    the value locks then (later ratios are ignored); with a window, the last `window`
    ratios are kept and the value keeps following them.
    """

    def __init__(self, frames_needed: int, window: int | None = None) -> None:
        self.frames_needed = frames_needed
        self.window = window
        self.ratios: deque[float] = deque(maxlen=window)

    @property
    def ready(self) -> bool:
        return len(self.ratios) >= self.frames_needed

    @property
    def locked(self) -> bool:
        return self.window is None and self.ready

    @property
    def value(self) -> float | None:
        """Median of the ratios so far (None before the first)."""
        return float(np.median(self.ratios)) if self.ratios else None

    def add(self, ratio: float | None) -> None:
        """Use one frame's ratio (None: that frame could not be measured)."""
        if ratio is not None and np.isfinite(ratio) and not self.locked:
            self.ratios.append(float(ratio))

    def reset(self) -> None:
        self.ratios.clear()
