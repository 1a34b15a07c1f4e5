"""
Which hands in different cameras are the same hand: geometry first, side labels last.

Per-view side labels are wrong often enough (a hand seen edge-on, mirrored readings, the
same hand reported twice) that matching by label alone fuses the wrong hands. Two views of
one hand satisfy the epipolar constraint keypoint by keypoint, so the cost of a pair is the
median symmetric epipolar distance of its 21 keypoints in hand sizes (a pair whose palm
would triangulate behind a camera is no pair). Pairs are merged cheapest first into groups
of at most one hand per camera; a group of three or more views must also reproject
consistently (its palm triangulated from all its views lands on every view's palm). The
label only breaks near-ties (`label_penalty`).
"""

from __future__ import annotations

from dataclasses import dataclass

from hand_pose_ros.core.anatomy import FINGER_MCPS, HandLandmark
from hand_pose_ros.core.fusion.calibration import CameraCalibration, Rig
from hand_pose_ros.core.fusion.results import ViewHand
from hand_pose_ros.core.fusion.triangulation import dlt, reprojection_px
import numpy as np

PALM = (HandLandmark.WRIST, *FINGER_MCPS)


@dataclass
class AssociationOptions:
    gate: float = 0.5  # median epipolar / reprojection distance, fraction of hand size
    label_penalty: float = 0.05  # added to the cost of a pair whose side labels differ


def _skew(v: np.ndarray) -> np.ndarray:
    return np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])


def essential(a: CameraCalibration, b: CameraCalibration) -> np.ndarray:
    """E with x_b^T E x_a = 0 for normalized homogeneous points of one world point."""
    rot = b.rotation @ a.rotation.T
    return _skew(b.translation - rot @ a.translation) @ rot


def _line_distance(lines: np.ndarray, points: np.ndarray) -> np.ndarray:
    num = np.abs(np.sum(lines * points, axis=1))
    return num / np.maximum(np.linalg.norm(lines[:, :2], axis=1), 1e-12)


def pair_cost(a: ViewHand, b: ViewHand, xa: np.ndarray, xb: np.ndarray,
              cam_a: CameraCalibration, cam_b: CameraCalibration,
              label_penalty: float = 0.0) -> float:
    """Median symmetric epipolar distance in hand sizes; inf when the palm lies behind."""
    e = essential(cam_a, cam_b)
    ha = np.hstack([xa, np.ones((len(xa), 1))])
    hb = np.hstack([xb, np.ones((len(xb), 1))])
    d_b = _line_distance(ha @ e.T, hb) * cam_b.focal / b.size
    d_a = _line_distance(hb @ e, ha) * cam_a.focal / a.size
    cost = float(np.median(0.5 * (d_a + d_b)))
    palm = list(PALM)
    poses = np.stack([cam_a.pose, cam_b.pose])
    pts = dlt(poses, np.stack([xa[palm], xb[palm]]), np.ones((2, len(palm))))
    depth = np.stack([cam_a.to_camera(pts)[:, 2], cam_b.to_camera(pts)[:, 2]])
    if not np.all(np.isfinite(depth)) or np.any(depth <= 0.0):
        return float('inf')
    if a.handedness and b.handedness and a.handedness != b.handedness:
        cost += label_penalty
    return cost if np.isfinite(cost) else float('inf')


def group_consistency(group: list[int], hands: list[ViewHand], normalized: list[np.ndarray],
                      rig: Rig) -> float:
    """Worst view's median palm reprojection error (hand sizes) of a group's palm DLT."""
    palm = list(PALM)
    cams = [rig[hands[i].camera] for i in group]
    poses = np.stack([c.pose for c in cams])
    x = np.stack([normalized[i][palm] for i in group])
    w = np.stack([np.full(len(palm), hands[i].score) for i in group])
    pts = dlt(poses, x, w)
    err = reprojection_px(poses, x, np.array([c.focal for c in cams]), pts)
    sizes = np.array([hands[i].size for i in group])
    err = np.where(np.isfinite(err), err, np.inf)
    return float(np.max(np.median(err, axis=1) / sizes))


def associate(hands: list[ViewHand], rig: Rig, normalized: list[np.ndarray],
              options: AssociationOptions | None = None) -> list[list[int]]:
    """
    Group hand indices by physical hand (at most one hand per camera in a group).

    normalized: each hand's undistorted normalized keypoints (21, 2). Hands no pair accepts
    come back as groups of one.
    """
    options = options or AssociationOptions()
    pairs = []
    for i in range(len(hands)):
        for j in range(i + 1, len(hands)):
            a, b = hands[i], hands[j]
            if a.camera == b.camera:
                continue
            cost = pair_cost(a, b, normalized[i], normalized[j], rig[a.camera], rig[b.camera],
                             options.label_penalty)
            if cost <= options.gate:
                pairs.append((cost, i, j))
    pairs.sort()
    group_of = list(range(len(hands)))
    groups: dict[int, list[int]] = {i: [i] for i in range(len(hands))}
    for _, i, j in pairs:
        gi, gj = group_of[i], group_of[j]
        if gi == gj:
            continue
        cams_i = {hands[k].camera for k in groups[gi]}
        if any(hands[k].camera in cams_i for k in groups[gj]):
            continue
        merged = groups[gi] + groups[gj]
        if len(merged) > 2 and group_consistency(merged, hands, normalized, rig) > options.gate:
            continue
        groups[gi] = merged
        for k in groups.pop(gj):
            group_of[k] = gi
    return [sorted(g) for g in groups.values()]
