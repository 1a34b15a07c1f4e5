"""
Camera intrinsics checks and the pinhole/distortion maths the metric 3D solver relies on.

All solving happens on undistorted, normalized image coordinates (x/z, y/z), so the solver
itself never sees a distortion model; distortion enters only here, in both directions, through
OpenCV (the same models sensor_msgs/CameraInfo names: plumb_bob and rational_polynomial through
cv2's pinhole functions, equidistant through cv2.fisheye).
"""

from __future__ import annotations

import math

import cv2
from hand_pose_ros.core.results import CameraIntrinsics
import numpy as np

# Coefficient counts OpenCV accepts for each CameraInfo distortion model.
_DISTORTION_LENGTHS = {
    'plumb_bob': (0, 4, 5),
    'rational_polynomial': (0, 4, 5, 8),
    'equidistant': (0, 4),  # k1..k4 of theta_d = theta (1 + k1 theta^2 + ... + k4 theta^8)
}
# Plausibility bounds of plausible_for_image(): generous, so that no real camera is refused,
# yet far from the values a broken driver or a hostile publisher sends (fx=1e300, k1=1e6).
# Focal length relative to the image's longer side: 0.05 is a ~180 degree fisheye across the
# image diagonal and beyond; 100 is a field of view of about 0.6 degrees.
MIN_FOCAL_PER_SIDE = 0.05
MAX_FOCAL_PER_SIDE = 100.0
MAX_PIXEL_ASPECT = 4.0  # fx / fy or fy / fx
# The principal point may lie off the image (a cropped ROI) but within this many image sizes.
MAX_PRINCIPAL_OFFSET = 1.0
# Radial (and fisheye) coefficients of real calibrations stay well below this, even the
# rational model's numerator/denominator pairs; tangential ones are ~1e-3.
MAX_RADIAL_COEFFICIENT = 1000.0
MAX_TANGENTIAL_COEFFICIENT = 1.0


def validate_intrinsics(intrinsics: CameraIntrinsics) -> None:
    """
    Raise ValueError when the intrinsics cannot describe a camera.

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


def plausible_for_image(intrinsics: CameraIntrinsics, width: int, height: int) -> None:
    """
    Raise ValueError when valid-looking intrinsics cannot belong to a width x height image.

    validate_intrinsics() only rules out what cannot be computed with; a CameraInfo with
    fx=1e300, cx=1e9 or k1=1e6 passes it and yields finite but meaningless 3D. Such values
    (a broken driver, a CameraInfo of another camera or resolution, a hostile publisher) must
    give no 3D rather than wrong 3D, so the bounds here are generous but finite.
    """
    validate_intrinsics(intrinsics)
    side = float(max(width, height))
    for name, f in (('fx', intrinsics.fx), ('fy', intrinsics.fy)):
        if not MIN_FOCAL_PER_SIDE * side <= f <= MAX_FOCAL_PER_SIDE * side:
            raise ValueError(
                f'{name}={f:g} is implausible for a {width}x{height} image (expected '
                f'{MIN_FOCAL_PER_SIDE * side:g} to {MAX_FOCAL_PER_SIDE * side:g} px)')
    if not 1.0 / MAX_PIXEL_ASPECT <= intrinsics.fx / intrinsics.fy <= MAX_PIXEL_ASPECT:
        raise ValueError(f'fx/fy = {intrinsics.fx / intrinsics.fy:g} is implausible')
    m = MAX_PRINCIPAL_OFFSET
    if not (-m * width <= intrinsics.cx <= (1 + m) * width
            and -m * height <= intrinsics.cy <= (1 + m) * height):
        raise ValueError(
            f'principal point ({intrinsics.cx:g}, {intrinsics.cy:g}) is far outside the '
            f'{width}x{height} image')
    d = np.asarray(intrinsics.d, dtype=np.float64).ravel()
    if intrinsics.distortion_model == 'equidistant' or d.size < 4:
        radial, tangential = d, np.zeros(0)
    else:
        radial, tangential = np.concatenate([d[:2], d[4:]]), d[2:4]
    if np.any(np.abs(radial) > MAX_RADIAL_COEFFICIENT) or np.any(
            np.abs(tangential) > MAX_TANGENTIAL_COEFFICIENT):
        raise ValueError(f'distortion coefficients are implausible: {d.tolist()}')


def distortion_coefficients(intrinsics: CameraIntrinsics) -> np.ndarray | None:
    """Return OpenCV's D vector, or None when there is no (or only zero) distortion."""
    d = np.asarray(intrinsics.d, dtype=np.float64).ravel()
    if d.size == 0 or not np.any(d):
        return None
    return d


def normalize_points(pixels: np.ndarray, intrinsics: CameraIntrinsics) -> np.ndarray:
    """Image pixels (N, 2) -> undistorted normalized coordinates (N, 2), i.e. x/z, y/z."""
    # Contiguous: cv2.fisheye reads a strided view (e.g. keypoints[:, :2]) as if it were not.
    pts = np.ascontiguousarray(np.asarray(pixels, dtype=np.float64).reshape(-1, 1, 2))
    d = distortion_coefficients(intrinsics)
    if d is None:
        centre = np.array([intrinsics.cx, intrinsics.cy])
        focal = np.array([intrinsics.fx, intrinsics.fy])
        return (pts.reshape(-1, 2) - centre) / focal
    # Iterative undistortion: the default 5 iterations are not enough for strong
    # rational_polynomial lenses, 30 with a tight epsilon are (and cost microseconds).
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 30, 1e-12)
    if intrinsics.distortion_model == 'equidistant':
        out = cv2.fisheye.undistortPoints(
            pts, intrinsics.matrix, d.reshape(4, 1), criteria=criteria)
        return out.reshape(-1, 2)
    out = cv2.undistortPointsIter(pts, intrinsics.matrix, d, None, None, criteria)
    return out.reshape(-1, 2)


def project_points(points: np.ndarray, intrinsics: CameraIntrinsics) -> np.ndarray:
    """Camera-frame points (N, 3) metres -> image pixels (N, 2), with distortion."""
    pts = np.ascontiguousarray(np.asarray(points, dtype=np.float64).reshape(-1, 3))
    d = distortion_coefficients(intrinsics)
    zero = np.zeros(3)
    if d is not None and intrinsics.distortion_model == 'equidistant':
        px, _ = cv2.fisheye.projectPoints(pts.reshape(-1, 1, 3), zero, zero, intrinsics.matrix,
                                          d.reshape(4, 1))
        return px.reshape(-1, 2)
    px, _ = cv2.projectPoints(pts, zero, zero, intrinsics.matrix, d)
    return px.reshape(-1, 2)
