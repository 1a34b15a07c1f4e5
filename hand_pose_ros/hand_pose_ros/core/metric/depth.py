"""
Robust hand depth from a registered depth image.

A single depth pixel at a joint is unreliable (holes at skin edges, flying pixels, background
seen between fingers), so the hand's depth is read from many pixels: every valid pixel inside the
palm polygon, with the background and outliers rejected around a robust centre.
"""

from __future__ import annotations

from dataclasses import dataclass
import logging

import cv2
from hand_pose_ros.core.anatomy import PALM_JOINTS
import numpy as np

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class DepthSample:
    """The palm's depth as read from the image."""

    depth: float  # metres, robust centre of the palm pixels
    spread: float  # metres, robust standard deviation (1.4826 MAD) of the kept pixels
    num_pixels: int  # kept pixels
    num_polygon: int  # pixels inside the palm polygon
    pixels: np.ndarray  # (num_pixels, 2) x, y of the kept pixels


def depth_to_metres(depth: np.ndarray) -> np.ndarray:
    """
    16UC1 millimetres or 32FC1 metres -> float32 metres with NaN where invalid.

    These are the two encodings ROS depth cameras publish (REP 118); 0 and NaN mean no return.
    """
    depth = np.asarray(depth)
    if depth.ndim == 3 and depth.shape[2] == 1:
        depth = depth[:, :, 0]
    if depth.ndim != 2:
        raise ValueError(f'depth image must be single-channel 2D, got shape {depth.shape}')
    if depth.dtype == np.uint16:
        metres = depth.astype(np.float32) * np.float32(0.001)
    elif depth.dtype in (np.float32, np.float64):
        metres = depth.astype(np.float32, copy=True)
    else:
        raise ValueError(
            f'depth image must be uint16 millimetres (16UC1) or float32 metres (32FC1), '
            f'got {depth.dtype}')
    metres[~np.isfinite(metres) | (metres <= 0.0)] = np.nan
    return metres


def palm_depth(
    depth_m: np.ndarray,
    keypoints_2d: np.ndarray,
    min_pixels: int = 20,
    min_fraction: float = 0.1,
    max_depth: float = 10.0,
) -> DepthSample | None:
    """
    Robust depth of the palm, or None when too few valid pixels support it.

    Background is behind the hand, so the first centre is taken low in the distribution (the
    30th percentile) and then refined by iterated median / MAD gating, which drops background
    and flying pixels while keeping the whole palm surface, even when it is tilted.
    """
    h, w = depth_m.shape
    # The palm polygon: the rigid joints (wrist, thumb CMC, four finger MCPs), which stay
    # inside the silhouette whatever the fingers do.
    polygon = np.asarray(keypoints_2d, dtype=np.float64)[list(PALM_JOINTS), :2]
    # Rasterise in a mask covering only the polygon's (clipped) bounding box: a full-image
    # mask per hand per frame costs milliseconds at HD resolutions.
    x0 = int(np.clip(np.floor(polygon[:, 0].min()) - 1, 0, w))
    y0 = int(np.clip(np.floor(polygon[:, 1].min()) - 1, 0, h))
    x1 = int(np.clip(np.ceil(polygon[:, 0].max()) + 2, 0, w))
    y1 = int(np.clip(np.ceil(polygon[:, 1].max()) + 2, 0, h))
    hull = cv2.convexHull(np.round((polygon - [x0, y0]) * 16.0).astype(np.int32))
    mask = np.zeros((max(y1 - y0, 0), max(x1 - x0, 0)), dtype=np.uint8)
    if mask.size:
        cv2.fillConvexPoly(mask, hull, 1, lineType=cv2.LINE_8, shift=4)
    ys, xs = np.nonzero(mask)
    ys, xs = ys + y0, xs + x0
    num_polygon = int(ys.size)
    values = depth_m[ys, xs].astype(np.float64)
    usable = np.isfinite(values) & (values < max_depth)
    values, xs, ys = values[usable], xs[usable], ys[usable]
    if values.size < max(min_pixels, int(min_fraction * num_polygon)):
        LOG.debug('palm depth: %d valid of %d polygon pixels, not enough', values.size,
                  num_polygon)
        return None
    centre = float(np.percentile(values, 30.0))
    kept = values
    for _ in range(5):
        spread = 1.4826 * float(np.median(np.abs(kept - centre)))
        # A palm is a few cm deep even when tilted: never gate tighter than 1.5 cm.
        gate = max(3.0 * spread, 0.015)
        keep = np.abs(values - centre) <= gate
        kept = values[keep]
        if kept.size == 0:
            return None
        new_centre = float(np.median(kept))
        if abs(new_centre - centre) < 1e-5:
            centre = new_centre
            break
        centre = new_centre
    if kept.size < min_pixels:
        return None
    spread = 1.4826 * float(np.median(np.abs(kept - centre)))
    return DepthSample(depth=centre, spread=spread, num_pixels=int(kept.size),
                       num_polygon=num_polygon,
                       pixels=np.column_stack([xs[keep], ys[keep]]).astype(np.float64))


def palm_model_depth(points_cam: np.ndarray, rays: np.ndarray) -> float | None:
    """
    Return the depth a camera would read for a camera-frame hand model at the same pixels.

    `rays` (N, 3) are the normalized rays (x/z, y/z, 1) of the pixels `palm_depth` kept; the
    model's palm is the least-squares plane through its palm joints. Comparing like with like
    (median over the same pixels) keeps a tilted palm from biasing the scale.

    This plane is deliberately not `anatomy.palm_frame`'s normal: it stands for the palm
    surface the depth pixels sample, so it is fitted to all six rigid joints, and which side
    it faces does not matter (only the depth along each ray is used).
    """
    palm = np.asarray(points_cam, dtype=np.float64)[list(PALM_JOINTS)]
    centre = palm.mean(axis=0)
    normal = np.linalg.svd(palm - centre)[2][2]
    denom = rays @ normal
    ok = np.abs(denom) > 1e-6
    if not np.any(ok):
        return None
    z = (normal @ centre) / denom[ok]
    z = z[z > 0.0]
    return float(np.median(z)) if z.size else None


def joint_depths(depth_m: np.ndarray, keypoints_2d: np.ndarray, radius: int = 2,
                 min_valid: int = 3) -> np.ndarray:
    """
    Depth at each keypoint (N,) metres: median of the valid pixels in a small window.

    NaN where the window holds fewer than `min_valid` valid pixels or lies outside the image.
    The median of a window, not the one pixel, because joints sit where holes and edges are.
    """
    h, w = depth_m.shape
    out = np.full(len(keypoints_2d), np.nan)
    for i, (u, v) in enumerate(np.asarray(keypoints_2d, dtype=np.float64)[:, :2]):
        if not (np.isfinite(u) and np.isfinite(v)):
            continue
        x, y = int(round(u)), int(round(v))
        if not (0 <= x < w and 0 <= y < h):
            continue
        window = depth_m[max(y - radius, 0):y + radius + 1, max(x - radius, 0):x + radius + 1]
        values = window[np.isfinite(window)]
        if values.size >= min_valid:
            out[i] = float(np.median(values))
    return out


def hand_depth_missing(keypoints_2d: np.ndarray, depth_m: np.ndarray) -> bool:
    """
    Return True when the depth image has no valid reading (finite, > 0) in the hand's 2D box.

    Then the camera-frame 3D can only come from PnP with the model's hand size; callers
    report it, because a depth camera that sees nothing on the hands (too close, IR
    absorbing gloves, a stale or mis-registered depth stream) otherwise goes unnoticed.
    """
    kp = np.asarray(keypoints_2d, dtype=np.float64)[:, :2]
    h, w = depth_m.shape[:2]
    if kp.size == 0 or not np.all(np.isfinite(kp)):
        return False
    x0, y0 = np.clip(np.floor(kp.min(axis=0)).astype(int), 0, [w, h])
    x1, y1 = np.clip(np.ceil(kp.max(axis=0)).astype(int) + 1, 0, [w, h])
    box = depth_m[y0:y1, x0:x1]
    if box.size == 0:
        return False  # the hand is outside the image: nothing to expect
    return not bool(np.any(np.isfinite(box) & (box > 0)))
