"""
The hand in the camera frame, in metres: PnP of the metric hand model, optionally with depth.

The landmark model gives 21 metric points in a hand-centric frame (an average-sized hand) and
21 image points. Their camera-frame pose is a Perspective-n-Point problem; its translation is
only as good as the model's *size*, because a hand twice as big twice as far looks the same.

What is done here, and why:

1. Size prior. The network's per-frame metric size is noisy: on foreshortened palms it
   shrinks the palm by up to 40 %, and PnP turns that straight into a hand that is 40 % too
   close. The palm is rigid and a person's hand does not change size, so the model points are
   rescaled to a canonical palm (mean wrist-to-finger-MCP distance CANONICAL_PALM_SIZE_M,
   an average adult hand) times the per-user `hand_scale`. Shape and orientation still come
   from the network.
2. Fit. Undistorted normalized coordinates (CameraInfo K and D, plumb_bob,
   rational_polynomial or equidistant fisheye), SQPnP for a global start, then a weighted
   Levenberg-Marquardt refinement in which the rigid palm joints count more than the
   fingers; joints whose residual stands out are dropped (a few at most) and the fit is
   refined again.
3. Depth. With a registered depth image the palm's depth is read robustly (median of the
   palm polygon, background and outliers gated away, see core/metric/depth.py); the ratio between
   measured and modelled depth at the joints that have readings fixes the scale: the whole
   fitted hand is scaled about the camera centre, which keeps its reprojection. Then every
   joint whose own depth reading agrees with the scaled model is moved onto its image ray at
   the measured depth, which corrects what the model's orientation got wrong in depth. The
   same ratio, collected over frames, is the user's hand-size factor (HandScaleEstimator).
"""

from __future__ import annotations

from dataclasses import dataclass
import logging

import cv2
from hand_pose_ros.core.anatomy import (
    HandLandmark,
    NUM_KEYPOINTS,
    palm_frame,
    PALM_JOINTS,
    palm_size,
)
from hand_pose_ros.core.metric.camera import normalize_points, project_points, validate_intrinsics
from hand_pose_ros.core.metric.depth import (
    depth_to_metres,
    joint_depths,
    palm_depth,
    palm_model_depth,
)
from hand_pose_ros.core.metric.scale import MedianScale
from hand_pose_ros.core.results import CameraFrame3D, CameraIntrinsics, Method3D
import numpy as np

LOG = logging.getLogger(__name__)

# Mean wrist-to-finger-MCP joint-centre distance of an average adult hand, metres. Palm length
# (wrist crease to the base of the middle finger) is about 10.5 cm in adult anthropometric
# surveys (ANSUR II); MCP joint centres lie about 2 cm proximal to that crease, and the index
# and pinky MCPs are closer to the wrist than the middle one. The landmark model's own median
# over the project's still images is 8.2 cm (lite) and 8.7 cm (full).
CANONICAL_PALM_SIZE_M = 0.085
# Joints with a depth reading needed to take the depth scale from joints, not the palm plane.
MIN_JOINT_READINGS = 8


@dataclass
class Metric3DOptions:
    """Tuning of the camera-frame solve; the defaults are general, not fitted to a data set."""

    normalize_palm_size: bool = True  # rescale the model hand to the canonical palm size
    canonical_palm_size: float = CANONICAL_PALM_SIZE_M
    palm_weight: float = 2.0  # weight of the palm joints against the finger joints in the fit
    max_outliers: int = 4  # joints that may be dropped for large residuals
    outlier_factor: float = 3.0  # residual > factor x median residual ...
    outlier_min_px: float = 4.0  # ... and above this many pixels marks an outlier
    # Validity: RMS reprojection error relative to the hand's 2D size (bounding-box diagonal).
    max_relative_reprojection_error: float = 0.15
    min_depth: float = 0.05  # metres; nearer fits are not a hand in front of a camera
    max_depth: float = 10.0
    # A depth camera sees the skin, which is about half a palm thickness nearer than the
    # joint centres the model predicts.
    surface_offset: float = 0.01
    # Depth readings further than this from the palm's are background, not hand (metres).
    hand_depth_range: float = 0.15
    # A joint's own depth reading replaces the model's when they agree within this (metres):
    # wide enough for a model tilted by 30 degrees (a 9 cm palm moves its wrist ~4.5 cm),
    # narrow enough to reject the background and most occluding fingers.
    joint_depth_gate: float = 0.08
    # Depth whose implied hand size is this far from the model's is not trusted.
    min_depth_scale: float = 0.4
    max_depth_scale: float = 2.5


@dataclass
class PnPFit:
    """A rigid fit of the model hand: camera-frame points and how well they reproject."""

    rotation: np.ndarray  # (3, 3) model frame -> camera frame
    translation: np.ndarray  # (3,)
    keypoints: np.ndarray  # (21, 3) camera frame, metres
    reprojection_error: float  # RMS over all 21 joints, pixels
    inliers: np.ndarray  # (21,) bool, joints kept by the robust fit


def wrist_frame(points: np.ndarray, handedness: str | None = None) -> np.ndarray:
    """
    Wrist orientation (3, 3), columns = the wrist frame's x, y, z axes in the points' frame.

    The palm frame's rotation (core/anatomy.py `palm_frame`, where the axes are drawn): x
    towards the middle MCP, z out of the palm, y = z cross x, for both hands. `handedness`
    ('left'/'right', anatomical) picks the mirror sign; None infers it from finger flexion.
    """
    return palm_frame(points, handedness).rotation


_IDENTITY_K = np.eye(3)


def _rotation(rvec: np.ndarray) -> np.ndarray:
    return cv2.Rodrigues(np.asarray(rvec, dtype=np.float64).reshape(3, 1))[0]


def _weighted_projection(params: np.ndarray, shape: np.ndarray, normalized: np.ndarray,
                         weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted residuals (2N,) in normalized coordinates and their Jacobian (2N, 6)."""
    proj, jac = cv2.projectPoints(shape, params[:3], params[3:], _IDENTITY_K, None)
    w = np.repeat(weights, 2)
    return (proj.reshape(-1) - normalized.reshape(-1)) * w, jac[:, :6] * w[:, None]


def _refine_lm(params: np.ndarray, shape: np.ndarray, normalized: np.ndarray,
               weights: np.ndarray, iterations: int = 30) -> np.ndarray:
    """
    Weighted Levenberg-Marquardt on (rotation vector, translation).

    OpenCV's solvePnPRefineLM has no per-point weights, which the palm/finger weighting and
    the outlier rejection need; cv2.projectPoints gives the analytic Jacobian, so each step
    costs one projection.
    """
    lam = 1e-3
    r, jac = _weighted_projection(params, shape, normalized, weights)
    cost = float(r @ r)
    for _ in range(iterations):
        jtj = jac.T @ jac
        g = jac.T @ r
        improved = converged = False
        while lam < 1e8:
            delta = np.linalg.solve(jtj + lam * np.diag(np.diag(jtj) + 1e-12), -g)
            candidate = params + delta
            r_new, jac_new = _weighted_projection(candidate, shape, normalized, weights)
            cost_new = float(r_new @ r_new)
            if cost_new < cost:
                params, r, jac, lam, improved = candidate, r_new, jac_new, lam * 0.3, True
                converged = cost - cost_new < 1e-8 * max(cost, 1e-30)
                cost = cost_new
                break
            lam *= 10.0
        if not improved or converged:
            break
    return params


def _sqpnp(shape: np.ndarray, normalized: np.ndarray) -> np.ndarray | None:
    try:
        ok, rvec, tvec = cv2.solvePnP(
            shape.reshape(-1, 1, 3), normalized.reshape(-1, 1, 2), np.eye(3), None,
            flags=cv2.SOLVEPNP_SQPNP)
    except cv2.error as exc:  # degenerate configurations trip SQPnP's assertions
        LOG.debug('SQPnP failed: %s', exc)
        return None
    if not ok:
        return None
    return np.concatenate([rvec.ravel(), tvec.ravel()])


def fit_pnp(
    keypoints_2d: np.ndarray,
    shape: np.ndarray,
    intrinsics: CameraIntrinsics,
    options: Metric3DOptions | None = None,
) -> PnPFit | None:
    """Robust weighted PnP of a metric hand `shape` (21, 3) onto image keypoints (21, 2)."""
    options = options or Metric3DOptions()
    normalized = normalize_points(keypoints_2d, intrinsics)
    focal = 0.5 * (intrinsics.fx + intrinsics.fy)
    weights = np.ones(NUM_KEYPOINTS)
    weights[list(PALM_JOINTS)] = options.palm_weight
    inliers = np.ones(NUM_KEYPOINTS, dtype=bool)
    params = _sqpnp(shape, normalized)
    if params is None:
        return None
    params = _refine_lm(params, shape, normalized, weights)
    for _ in range(2):
        cam = shape @ _rotation(params[:3]).T + params[3:]
        if np.any(cam[:, 2] <= 0.0):
            break
        err = np.linalg.norm(cam[:, :2] / cam[:, 2:3] - normalized, axis=1) * focal
        limit = max(options.outlier_factor * float(np.median(err[inliers])),
                    options.outlier_min_px)
        candidates = [i for i in np.argsort(-err) if inliers[i] and err[i] > limit]
        budget = options.max_outliers - int((~inliers).sum())
        if not candidates or budget <= 0:
            break
        inliers[candidates[:budget]] = False
        w = weights * inliers
        params = _refine_lm(params, shape, normalized, w)
    rotation = _rotation(params[:3])
    translation = params[3:].copy()
    keypoints = shape @ rotation.T + translation
    if not np.all(np.isfinite(keypoints)):
        return None
    return PnPFit(rotation=rotation, translation=translation, keypoints=keypoints,
                  reprojection_error=reprojection_rms(keypoints, keypoints_2d, intrinsics),
                  inliers=inliers)


def reprojection_rms(points_cam: np.ndarray, keypoints_2d: np.ndarray,
                     intrinsics: CameraIntrinsics) -> float:
    """RMS distance in pixels between projected camera-frame points and image keypoints."""
    if np.any(points_cam[:, 2] <= 0.0):
        return float('inf')
    projected = project_points(points_cam, intrinsics)
    diff = projected - np.asarray(keypoints_2d, dtype=np.float64)[:, :2]
    return float(np.sqrt(np.mean(np.sum(diff * diff, axis=1))))


def model_shape(world: np.ndarray, hand_scale: float = 1.0,
                options: Metric3DOptions | None = None) -> np.ndarray:
    """Return the metric hand the fit uses: the network's shape at the canonical (or own) size."""
    options = options or Metric3DOptions()
    world = np.asarray(world, dtype=np.float64).reshape(NUM_KEYPOINTS, 3)
    scale = float(hand_scale)
    if options.normalize_palm_size:
        size = palm_size(world)
        if size > 1e-6:
            scale *= options.canonical_palm_size / size
    return world * scale


def depth_scale(fit: PnPFit, keypoints_2d: np.ndarray, depth_m: np.ndarray,
                intrinsics: CameraIntrinsics, options: Metric3DOptions | None = None
                ) -> float | None:
    """
    Factor that brings the fitted hand to the measured depth, or None without usable depth.

    Scaling about the camera centre keeps the reprojection, so one factor fixes the distance.
    The palm polygon's robust depth says where the hand is and rejects the background; the
    factor itself is the median over joints of measured / modelled depth wherever a joint has
    a reading near the palm's, because the palm polygon's pixels may show fingers curled in
    front of the palm (a fist seen from the front) and a joint reading compares like with
    like. With fewer than MIN_JOINT_READINGS such joints, the polygon's median is compared
    with the model's palm plane over the same pixels.
    """
    options = options or Metric3DOptions()
    sample = palm_depth(depth_m, keypoints_2d)
    if sample is None:
        return None
    measured = joint_depths(depth_m, keypoints_2d)
    near = np.isfinite(measured) & (np.abs(measured - sample.depth) < options.hand_depth_range)
    if near.sum() >= MIN_JOINT_READINGS:
        ratios = (measured[near] + options.surface_offset) / fit.keypoints[near, 2]
        scale = float(np.median(ratios))
    else:
        rays = np.hstack([normalize_points(sample.pixels, intrinsics),
                          np.ones((len(sample.pixels), 1))])
        model = palm_model_depth(fit.keypoints, rays)
        if model is None or model <= 1e-6:
            return None
        scale = (sample.depth + options.surface_offset) / model
    if not options.min_depth_scale <= scale <= options.max_depth_scale:
        LOG.debug('depth %.3f m implies hand scale %.2f, ignored', sample.depth, scale)
        return None
    return scale


def snap_to_depth(keypoints: np.ndarray, keypoints_2d: np.ndarray, depth_m: np.ndarray,
                  intrinsics: CameraIntrinsics, options: Metric3DOptions) -> np.ndarray:
    """
    Move each joint the depth image sees onto its image ray at the measured depth.

    After the scale fix the palm is at the right distance, but the model's orientation can
    still put the wrist or a finger a few centimetres off in depth. Where the depth image has
    a reading at a joint that agrees with the scaled model (within `joint_depth_gate`, which
    rejects the background and a finger seen in front of the joint), the measurement wins and
    the joint lands exactly on its 2D detection; elsewhere the model stays.
    """
    measured = joint_depths(depth_m, keypoints_2d) + options.surface_offset
    agree = np.isfinite(measured) & (np.abs(measured - keypoints[:, 2])
                                     <= options.joint_depth_gate)
    if not np.any(agree):
        return keypoints
    rays = np.hstack([normalize_points(keypoints_2d, intrinsics), np.ones((len(keypoints), 1))])
    out = keypoints.copy()
    out[agree] = rays[agree] * measured[agree, None]
    return out


def solve_camera_frame(
    keypoints_2d: np.ndarray,
    world: np.ndarray,
    intrinsics: CameraIntrinsics,
    depth: np.ndarray | None = None,
    hand_scale: float = 1.0,
    image_size: tuple[int, int] | None = None,
    handedness: str | None = None,
    options: Metric3DOptions | None = None,
) -> CameraFrame3D:
    """
    One hand in the camera optical frame (metres).

    keypoints_2d: (21, 2) image pixels (extra columns, e.g. the model's z, are ignored).
    world: (21, 3) the model's metric hand-centric landmarks.
    depth: optional depth image registered to the colour image, uint16 millimetres or
    float32 metres, 0/NaN invalid; it must have the colour image's size.
    image_size: (width, height); when given, a hand partly out of view is not valid.
    handedness: 'left'/'right' (anatomical), for the wrist frame's palm normal sign.
    """
    options = options or Metric3DOptions()
    validate_intrinsics(intrinsics)
    keypoints_2d = np.asarray(keypoints_2d, dtype=np.float64)[:, :2]
    if keypoints_2d.shape != (NUM_KEYPOINTS, 2):
        raise ValueError(f'keypoints_2d must be (21, 2), got {keypoints_2d.shape}')
    if not hand_scale > 0.0:
        raise ValueError(f'hand_scale must be positive, got {hand_scale}')
    depth_m = None
    if depth is not None:
        depth_m = depth_to_metres(depth)
        if image_size is not None and depth_m.shape != (image_size[1], image_size[0]):
            raise ValueError(
                f'depth image is {depth_m.shape[1]}x{depth_m.shape[0]} but the colour image '
                f'is {image_size[0]}x{image_size[1]}: depth must be registered to colour')
        _check_depth_covers(depth_m, intrinsics)
    world = np.asarray(world, dtype=np.float64)
    if world.shape != (NUM_KEYPOINTS, 3):
        raise ValueError(f'world must be (21, 3), got {world.shape}')
    # A degenerate model hand (non-finite or collapsed) cannot be fitted: not valid, no crash.
    if (not np.all(np.isfinite(keypoints_2d)) or not np.all(np.isfinite(world))
            or not palm_size(world) > 1e-6):
        return _invalid()
    fit = fit_pnp(keypoints_2d, model_shape(world, hand_scale, options), intrinsics, options)
    if fit is None:
        return _invalid()
    keypoints = fit.keypoints
    method = Method3D.PNP
    scale_factor = float(hand_scale)
    if depth_m is not None:
        scale = depth_scale(fit, keypoints_2d, depth_m, intrinsics, options)
        if scale is not None:
            keypoints = snap_to_depth(keypoints * scale, keypoints_2d, depth_m, intrinsics,
                                      options)
            method = Method3D.DEPTH
            scale_factor *= scale
        else:
            LOG.debug('no usable depth on the palm, keeping the PnP scale')
    valid = _is_valid(keypoints, keypoints_2d, fit.reprojection_error, image_size, options)
    frame = palm_frame(keypoints, handedness)
    return CameraFrame3D(
        keypoints=keypoints,
        wrist_position=frame.origin,
        wrist_rotation=frame.rotation,
        valid=valid,
        method=method,
        reprojection_error=fit.reprojection_error,
        scale_factor=scale_factor,
    )


def _check_depth_covers(depth_m: np.ndarray, intrinsics: CameraIntrinsics) -> None:
    """Reject a depth image that cannot contain the principal point: not this camera's image."""
    h, w = depth_m.shape
    if not (0.0 <= intrinsics.cx <= w and 0.0 <= intrinsics.cy <= h):
        raise ValueError(
            f'depth image is {w}x{h} but the principal point is at ({intrinsics.cx}, '
            f'{intrinsics.cy}): depth must be registered to the colour image')


def _is_valid(keypoints: np.ndarray, keypoints_2d: np.ndarray, rms: float,
              image_size: tuple[int, int] | None, options: Metric3DOptions) -> bool:
    extent = float(np.linalg.norm(keypoints_2d.max(axis=0) - keypoints_2d.min(axis=0)))
    if not np.isfinite(rms) or rms > options.max_relative_reprojection_error * max(extent, 1.0):
        return False
    depths = keypoints[:, 2]
    wrist_depth = depths[HandLandmark.WRIST]
    if np.any(depths <= 0.0) or not options.min_depth <= wrist_depth <= options.max_depth:
        return False
    if image_size is not None:
        width, height = image_size
        inside = ((keypoints_2d[:, 0] >= 0.0) & (keypoints_2d[:, 0] < width)
                  & (keypoints_2d[:, 1] >= 0.0) & (keypoints_2d[:, 1] < height))
        if not np.all(inside):
            return False
    return True


def _invalid() -> CameraFrame3D:
    return CameraFrame3D(
        keypoints=np.zeros((NUM_KEYPOINTS, 3)), wrist_position=np.zeros(3),
        wrist_rotation=np.eye(3), valid=False, method=Method3D.NONE,
        reprojection_error=0.0)


def measure_hand_scale(keypoints_2d: np.ndarray, world: np.ndarray,
                       intrinsics: CameraIntrinsics, depth_m: np.ndarray,
                       options: Metric3DOptions | None = None) -> float | None:
    """One frame's hand-size factor (measured / canonical hand), or None without depth."""
    options = options or Metric3DOptions()
    keypoints_2d = np.asarray(keypoints_2d, dtype=np.float64)[:, :2]
    fit = fit_pnp(keypoints_2d, model_shape(world, 1.0, options), intrinsics, options)
    if fit is None:
        return None
    return depth_scale(fit, keypoints_2d, depth_m, intrinsics, options)


class HandScaleEstimator:
    """
    The user's hand-size factor, from frames that have depth.

    Each frame's depth gives the ratio between the measured and the modelled hand distance,
    which is the ratio between the user's hand and the model's; their median over a sliding
    window (metric/scale.py) is robust to the odd bad depth reading. Pass `scale` as
    `hand_scale` afterwards.
    """

    def __init__(self, min_frames: int = 5, max_frames: int = 100,
                 options: Metric3DOptions | None = None) -> None:
        self.options = options or Metric3DOptions()
        self._scale = MedianScale(min_frames, window=max_frames)

    def add(self, keypoints_2d: np.ndarray, world: np.ndarray, intrinsics: CameraIntrinsics,
            depth: np.ndarray) -> float | None:
        """Use one frame; returns its hand-size ratio, or None when it could not be used."""
        validate_intrinsics(intrinsics)
        ratio = measure_hand_scale(keypoints_2d, world, intrinsics, depth_to_metres(depth),
                                   self.options)
        self._scale.add(ratio)
        return ratio

    @property
    def num_frames(self) -> int:
        return len(self._scale.ratios)

    @property
    def ready(self) -> bool:
        return self._scale.ready

    @property
    def scale(self) -> float:
        """Return the estimated hand_scale, 1.0 until `ready`."""
        value = self._scale.value
        return value if self.ready and value is not None else 1.0

    def reset(self) -> None:
        self._scale.reset()
