"""
SYNTHETIC depth images for hands with camera-frame ground truth (evaluation and tests).

The shared data set has no depth camera recordings, so depth fusion is tested on depth images
*made up here* from ground-truth 3D joints (RHD `keypoints_3d_cam_m`). Nothing in them was
measured by a sensor:

- the hand is the palm (a triangle fan over the wrist, thumb CMC and finger MCPs, each pixel
  on its triangle's plane), every bone drawn as a thick stroke (about 9 mm radius, a finger's
  half width) whose depth runs linearly between its two joints, and a 12 cm forearm stub
  (2.5 cm radius) leaving the wrist away from the middle-finger MCP; the nearest surface
  wins (z-buffer), so the hand occludes itself as in a real image;
- that surface is moved towards the camera by a skin offset (1 cm: the camera sees the skin,
  about half a palm thickness in front of the joint centres the ground truth gives);
- the background is a far wall (1.2 m to 1.6 m, tilted);
- noise like a structured-light / active-stereo sensor: Gaussian with the depth-dependent
  sigma of Nguyen et al. 2012 (1.2 mm + 1.9 mm x (z - 0.4 m)^2), millimetre quantization,
  a 1-pixel invalid band and flying pixels (foreground/background mixtures) along the
  silhouette edge, and random holes.

It lives in the package, not in test/, because eval_metric3d renders the same depth images the
tests check, and installed code must not reach into the test folder.
"""

from __future__ import annotations

import cv2
from hand_pose_ros.core.results import HAND_CONNECTIONS
import numpy as np

PALM_OUTLINE = (0, 1, 5, 9, 13, 17)
BONE_RADIUS_M = 0.009
FOREARM_RADIUS_M = 0.025
SKIN_OFFSET_M = 0.01


def project(points: np.ndarray, fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """Undistorted pinhole projection of camera-frame points (N, 3) -> pixels (N, 2)."""
    points = np.asarray(points, dtype=np.float64)
    return np.stack([fx * points[:, 0] / points[:, 2] + cx,
                     fy * points[:, 1] / points[:, 2] + cy], axis=1)


def _render_hand(joints_cam: np.ndarray, size: tuple[int, int], fx: float, fy: float,
                 cx: float, cy: float) -> np.ndarray:
    """
    Z-buffer (h, w) of the joint-centre surface: NaN off the hand.

    The palm is the triangle fan of the palm outline, each pixel on the plane of its
    triangle; fingers and the forearm are strokes whose depth runs linearly between their
    end joints. The nearest surface wins, as in a real image.
    """
    width, height = size
    points = np.vstack([joints_cam, forearm(joints_cam)])
    uv = project(points, fx, fy, cx, cy)
    zbuf = np.full((height, width), np.inf)

    def draw(mask: np.ndarray, depth_of) -> None:
        ys, xs = np.nonzero(mask)
        if xs.size:
            z = depth_of(xs.astype(np.float64), ys.astype(np.float64))
            zbuf[ys, xs] = np.minimum(zbuf[ys, xs], z)

    outline = list(PALM_OUTLINE)
    for i in range(1, len(outline) - 1):
        tri = [outline[0], outline[i], outline[i + 1]]
        mask = np.zeros((height, width), np.uint8)
        cv2.fillConvexPoly(mask, np.round(uv[tri] * 16).astype(np.int32), 1, shift=4)
        a, b, c = points[tri]
        normal = np.cross(b - a, c - a)
        if abs(normal[2]) < 1e-12:
            continue
        offset = normal @ a

        def plane(x, y, normal=normal, offset=offset):
            rays = np.stack([(x - cx) / fx, (y - cy) / fy, np.ones_like(x)], axis=1)
            denom = rays @ normal
            return offset / np.where(np.abs(denom) < 1e-12, 1e-12, denom)

        draw(mask.astype(bool), plane)
    bones = [(a, b, BONE_RADIUS_M) for a, b in HAND_CONNECTIONS]
    bones += [(21 + i, 22 + i, FOREARM_RADIUS_M) for i in range(len(points) - 22)]
    for a, b, bone_radius in bones:
        z = 0.5 * (points[a, 2] + points[b, 2])
        radius = max(1, int(round(fx * bone_radius / z)))
        mask = np.zeros((height, width), np.uint8)
        pa = tuple(int(round(v)) for v in uv[a])
        pb = tuple(int(round(v)) for v in uv[b])
        cv2.line(mask, pa, pb, 1, thickness=2 * radius + 1)
        cv2.circle(mask, pb, radius, 1, thickness=-1)
        seg = uv[b] - uv[a]

        def along(x, y, a=a, b=b, seg=seg):
            t = ((x - uv[a, 0]) * seg[0] + (y - uv[a, 1]) * seg[1]) / max(seg @ seg, 1e-9)
            t = np.clip(t, 0.0, 1.0)
            return (1.0 - t) * points[a, 2] + t * points[b, 2]

        draw(mask.astype(bool), along)
    zbuf[~np.isfinite(zbuf)] = np.nan
    return zbuf


def forearm(joints_cam: np.ndarray, length: float = 0.12, steps: int = 6) -> np.ndarray:
    """
    Points (steps, 3) along a forearm stub leaving the wrist away from the middle MCP.

    Real depth images always show the forearm behind the wrist; without it the wrist joint
    would sit on the silhouette edge, which no real camera produces.
    """
    direction = joints_cam[0] - joints_cam[9]
    direction /= np.linalg.norm(direction)
    return joints_cam[0] + np.linspace(0.0, length, steps)[:, None] * direction


def render_depth(
    joints_cam: np.ndarray,
    size: tuple[int, int],
    fx: float,
    fy: float,
    cx: float,
    cy: float,
    seed: int = 0,
    hole_fraction: float = 0.15,
    noise: bool = True,
) -> np.ndarray:
    """Render a SYNTHETIC float32 depth image (metres, NaN = invalid) of one hand before a wall."""
    rng = np.random.default_rng(seed)
    width, height = size
    joints_cam = np.asarray(joints_cam, dtype=np.float64)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    # Background: a tilted wall well behind the hand.
    depth = 1.2 + 0.4 * (xs / max(width - 1, 1)) + 0.1 * (ys / max(height - 1, 1))
    hand = _render_hand(joints_cam, size, fx, fy, cx, cy) - SKIN_OFFSET_M
    depth = np.where(np.isfinite(hand), hand, depth)
    mask = np.isfinite(hand)
    if not noise:
        return depth.astype(np.float32)
    sigma = 0.0012 + 0.0019 * (depth - 0.4) ** 2
    depth = depth + rng.normal(0.0, 1.0, depth.shape) * sigma
    edge = mask.astype(np.uint8) - cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8))
    edge |= cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) - mask.astype(np.uint8)
    edge_idx = np.flatnonzero(edge)
    # Flying pixels: half of the edge band mixes foreground and background depth.
    flying = rng.random(edge_idx.size) < 0.5
    flat = depth.ravel()
    flat[edge_idx[flying]] = flat[edge_idx[flying]] + rng.uniform(
        0.0, 0.5, int(flying.sum()))
    flat[edge_idx[~flying]] = np.nan
    holes = rng.random(flat.size) < hole_fraction
    flat[holes] = np.nan
    depth = flat.reshape(height, width)
    return (np.round(depth * 1000.0) / 1000.0).astype(np.float32)


def to_16uc1(depth_m: np.ndarray) -> np.ndarray:
    """float32 metres (NaN invalid) -> uint16 millimetres (0 invalid), as a 16UC1 image."""
    mm = np.where(np.isfinite(depth_m), np.round(depth_m * 1000.0), 0.0)
    return np.clip(mm, 0, 65535).astype(np.uint16)
