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
from itertools import product

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


def in_front(xa: np.ndarray, xb: np.ndarray, cam_a: CameraCalibration,
             cam_b: CameraCalibration) -> bool:
    """
    Tell whether the rays of matching points meet in front of both cameras.

    The epipolar line also holds points behind a camera; the closest points of each pair of
    rays (closed form, no SVD) must lie at positive depth in both views.
    """
    da = np.hstack([xa, np.ones((len(xa), 1))]) @ cam_a.rotation  # rows: R^T [x y 1]
    db = np.hstack([xb, np.ones((len(xb), 1))]) @ cam_b.rotation
    w0 = cam_a.centre - cam_b.centre
    a, b, c = (da * da).sum(1), (da * db).sum(1), (db * db).sum(1)
    d, e = da @ w0, db @ w0
    denom = a * c - b * b
    with np.errstate(divide='ignore', invalid='ignore'):
        s = (b * e - c * d) / denom  # depth along camera a's ray (its z is 1)
        t = (a * e - b * d) / denom
    return bool(np.all(s > 0.0) and np.all(t > 0.0))


def epipolar_costs(xa: np.ndarray, xb: np.ndarray, size_a: np.ndarray, size_b: np.ndarray,
                   cam_a: CameraCalibration, cam_b: CameraCalibration) -> np.ndarray:
    """
    (Na, Nb) median symmetric epipolar distances, in hand sizes, of every pair of hands.

    xa (Na, K, 2), xb (Nb, K, 2): undistorted normalized keypoints of two cameras' hands.
    """
    e = essential(cam_a, cam_b)
    ha = np.concatenate([xa, np.ones(xa.shape[:2] + (1,))], axis=-1)
    hb = np.concatenate([xb, np.ones(xb.shape[:2] + (1,))], axis=-1)
    lines_b = ha @ e.T  # (Na, K, 3): epipolar lines in b of a's points
    lines_a = hb @ e  # (Nb, K, 3)
    num = np.abs(np.einsum('ikc,jkc->ijk', lines_b, hb))
    d_b = num / np.maximum(np.linalg.norm(lines_b[:, None, :, :2], axis=-1), 1e-12)
    d_a = num / np.maximum(np.linalg.norm(lines_a[None, :, :, :2], axis=-1), 1e-12)
    d = 0.5 * (d_a * cam_a.focal / size_a[:, None, None] + d_b * cam_b.focal
               / size_b[None, :, None])
    cost = np.median(d, axis=-1)
    return np.where(np.isfinite(cost), cost, np.inf)


def pair_cost(a: ViewHand, b: ViewHand, xa: np.ndarray, xb: np.ndarray,
              cam_a: CameraCalibration, cam_b: CameraCalibration,
              label_penalty: float = 0.0) -> float:
    """One pair's cost as associate() sees it (inf when the palm would lie behind)."""
    cost = float(epipolar_costs(xa[None], xb[None], np.array([a.size]), np.array([b.size]),
                                cam_a, cam_b)[0, 0])
    if a.handedness and b.handedness and a.handedness != b.handedness:
        cost += label_penalty
    palm = list(PALM)
    return cost if in_front(xa[palm], xb[palm], cam_a, cam_b) else float('inf')


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
    by_camera: dict[str, list[int]] = {}
    for i, hand in enumerate(hands):
        by_camera.setdefault(hand.camera, []).append(i)
    names = list(by_camera)
    for ca, cb in ((a, b) for k, a in enumerate(names) for b in names[k + 1:]):
        ia, ib = by_camera[ca], by_camera[cb]
        costs = epipolar_costs(np.stack([normalized[i] for i in ia]),
                               np.stack([normalized[j] for j in ib]),
                               np.array([hands[i].size for i in ia]),
                               np.array([hands[j].size for j in ib]), rig[ca], rig[cb])
        for (p, i), (q, j) in product(enumerate(ia), enumerate(ib)):
            a, b = hands[i], hands[j]
            cost = float(costs[p, q])
            if a.handedness and b.handedness and a.handedness != b.handedness:
                cost += options.label_penalty
            if cost <= options.gate and in_front(normalized[i][list(PALM)],
                                                 normalized[j][list(PALM)],
                                                 rig[ca], rig[cb]):
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
