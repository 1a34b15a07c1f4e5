"""
Landmark model outputs -> image-pixel landmarks and world landmarks.

MediaPipe's TensorsToLandmarks, LandmarkLetterboxRemoval, LandmarkProjection and
WorldLandmarkProjection, in pixels.
"""

from __future__ import annotations

import math

from hand_pose_ros.core.models.catalog import LANDMARK_INPUT_SIZE
from hand_pose_ros.core.results import Roi
import numpy as np

# The model's z is in crop pixels but flatter than x/y; MediaPipe rescales it by 1/0.4.
NORMALIZE_Z = 0.4


def project_landmarks(
    raw: np.ndarray, roi: Roi, padding: np.ndarray | None = None,
    size: int = LANDMARK_INPUT_SIZE,
) -> np.ndarray:
    """
    (21, 3) crop-pixel landmarks -> (21, 3) image pixels (z scaled like x).

    `padding` is the letterbox (left, top, right, bottom) of the crop as fractions; zero for
    the square hand ROIs.
    """
    pts = np.asarray(raw, dtype=np.float64).reshape(-1, 3) / size
    pts[:, 2] /= NORMALIZE_Z
    if padding is not None and np.any(padding):
        left, top, right, bottom = padding
        pts[:, 0] = (pts[:, 0] - left) / (1.0 - left - right)
        pts[:, 1] = (pts[:, 1] - top) / (1.0 - top - bottom)
        pts[:, 2] /= 1.0 - left - right
    c, s = math.cos(roi.rotation), math.sin(roi.rotation)
    x, y = pts[:, 0] - 0.5, pts[:, 1] - 0.5
    out = np.empty_like(pts)
    out[:, 0] = (c * x - s * y) * roi.width + roi.cx
    out[:, 1] = (s * x + c * y) * roi.height + roi.cy
    out[:, 2] = pts[:, 2] * roi.width
    return out


def rotate_world(world: np.ndarray, rotation: float) -> np.ndarray:
    """World landmarks come out aligned with the crop; rotate x, y back by the ROI rotation."""
    pts = np.asarray(world, dtype=np.float64).reshape(-1, 3)
    c, s = math.cos(rotation), math.sin(rotation)
    out = pts.copy()
    out[:, 0] = c * pts[:, 0] - s * pts[:, 1]
    out[:, 1] = s * pts[:, 0] + c * pts[:, 1]
    return out
