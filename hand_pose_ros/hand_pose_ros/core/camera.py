"""Camera intrinsics checks and the pinhole/distortion maths the metric 3D solver relies on.

All solving happens on undistorted, normalized image coordinates (x/z, y/z), so the solver
itself never sees a distortion model; distortion enters only here, in both directions, through
OpenCV (the same models sensor_msgs/CameraInfo names).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from hand_pose_ros.core.types import CameraIntrinsics

# Coefficient counts OpenCV accepts for each CameraInfo distortion model.
_DISTORTION_LENGTHS = {
    'plumb_bob': (0, 4, 5),
    'rational_polynomial': (0, 4, 5, 8),
}


def validate_intrinsics(intrinsics: CameraIntrinsics) -> None:
    """Raise ValueError when the intrinsics cannot describe a camera.

    An unset CameraInfo has K all zero; using it would put every hand at infinity or NaN, so
    this fails loudly instead of producing silent garbage.
    """
    values = (intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy)
    if not all(math.isfinite(float(v)) for v in values):
        raise ValueError(f'camera intrinsics contain NaN/inf: fx, fy, cx, cy = {values}')
    if intrinsics.fx <= 0.0 or intrinsics.fy <= 0.0:
        raise ValueError(
            f'camera focal lengths must be positive, got fx={intrinsics.fx}, fy={intrinsics.fy} '
            '(an all-zero K means the CameraInfo was never calibrated)')
    model = intrinsics.distortion_model
    if model not in _DISTORTION_LENGTHS:
        raise ValueError(
            f'unsupported distortion model {model!r}; expected one of '
            f'{sorted(_DISTORTION_LENGTHS)}')
    d = np.asarray(intrinsics.d, dtype=np.float64).ravel()
    if d.size not in _DISTORTION_LENGTHS[model]:
        raise ValueError(
            f'{model} takes {_DISTORTION_LENGTHS[model]} distortion coefficients, got {d.size}')
    if not np.all(np.isfinite(d)):
        raise ValueError(f'distortion coefficients contain NaN/inf: {d.tolist()}')


def distortion_coefficients(intrinsics: CameraIntrinsics) -> np.ndarray | None:
    """OpenCV's D vector, or None when there is no (or only zero) distortion."""
    d = np.asarray(intrinsics.d, dtype=np.float64).ravel()
    if d.size == 0 or not np.any(d):
        return None
    return d


def normalize_points(pixels: np.ndarray, intrinsics: CameraIntrinsics) -> np.ndarray:
    """Image pixels (N, 2) -> undistorted normalized coordinates (N, 2), i.e. x/z, y/z."""
    pts = np.asarray(pixels, dtype=np.float64).reshape(-1, 1, 2)
    d = distortion_coefficients(intrinsics)
    if d is None:
        centre = np.array([intrinsics.cx, intrinsics.cy])
        focal = np.array([intrinsics.fx, intrinsics.fy])
        return (pts.reshape(-1, 2) - centre) / focal
    # Iterative undistortion: the default 5 iterations are not enough for strong
    # rational_polynomial lenses, 30 with a tight epsilon are (and cost microseconds).
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 30, 1e-12)
    out = cv2.undistortPointsIter(pts, intrinsics.matrix, d, None, None, criteria)
    return out.reshape(-1, 2)


def project_points(points: np.ndarray, intrinsics: CameraIntrinsics) -> np.ndarray:
    """Camera-frame points (N, 3) metres -> image pixels (N, 2), with distortion."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    d = distortion_coefficients(intrinsics)
    zero = np.zeros(3)
    px, _ = cv2.projectPoints(pts, zero, zero, intrinsics.matrix, d)
    return px.reshape(-1, 2)
