"""
Tracker: what HandTracker and MediaPipeTasksTracker have in common.

Callers that can run either pipeline (`hand-pose-ros detect --tracker`, the comparison and
evaluation tools, the tests) depend on this protocol instead of on one class, so the official
reference stays a drop-in for the core tracker without sharing its runtime machinery.
"""

from __future__ import annotations

from typing import Protocol

from hand_pose_ros.core.results import CameraIntrinsics, FrameResult
import numpy as np


class Tracker(Protocol):
    """Image in, hands out; one stream per instance, released by close()."""

    def process(
        self, image: np.ndarray, pixel_format: str = 'rgb',
        camera: CameraIntrinsics | None = None, depth: np.ndarray | None = None,
        timestamp: float | None = None,
    ) -> FrameResult:
        """Hands in one image (timestamp in seconds; camera adds metric 3D per hand)."""
        ...

    def close(self) -> None:
        """Release native resources (interpreters, graphs, GPU memory)."""
        ...
