"""
Retargeting-ready views of one hand: MANO wrist-frame keypoints and named joint angles.

Why this module: the de-facto consumer of hand keypoints on robot hands is dex-retargeting,
whose MediaPipe example does not take world landmarks as they are. It moves the wrist to the
origin, rotates the hand into a wrist frame estimated from the wrist, index MCP and middle
MCP, and then applies a fixed per-side rotation into the MANO convention its robot configs
were tuned with. Doing exactly that here lets a consumer feed `keypoints_mano` to
`SeqRetargeting.retarget` without re-deriving the frame (and without getting the side-specific
matrix wrong). The joint angles are for consumers that map human joints to robot joints one
by one (simple hands, grippers, logging) instead of optimising fingertip vectors.

Everything is computed from `HandResult.world` (metres, hand-centric, axes parallel to the
camera optical frame), so it is independent of where the hand is in the image.
"""

from __future__ import annotations

import math

from hand_pose_ros.core.anatomy import FINGER_CHAINS, handedness_sign, HandLandmark, palm_frame
import numpy as np

WRIST, INDEX_MCP, MIDDLE_MCP, PINKY_MCP = (
    HandLandmark.WRIST, HandLandmark.INDEX_FINGER_MCP, HandLandmark.MIDDLE_FINGER_MCP,
    HandLandmark.PINKY_MCP)

# Rotations from the wrist frame below to the MANO convention, per anatomical side: the
# values dex-retargeting's MediaPipe example and `dex_retargeting.constants` use. Rows map
# wrist-frame axes (x: middle MCP -> wrist, y: palm-plane normal, z: toward the index side)
# to MANO axes; both are proper rotations (det +1).
OPERATOR2MANO_RIGHT = np.array([[0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
OPERATOR2MANO_LEFT = np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])

# Names of the angles `joint_angles` returns, in order (hand_pose_msgs/Hand JOINT_ANGLE_NAMES).
# Radians. flexion > 0 bends toward the palm; abduction > 0 moves toward the thumb side.
JOINT_ANGLE_NAMES: tuple[str, ...] = (
    'thumb_cmc_flexion', 'thumb_cmc_abduction', 'thumb_mcp_flexion', 'thumb_ip_flexion',
    'index_mcp_flexion', 'index_mcp_abduction', 'index_pip_flexion', 'index_dip_flexion',
    'middle_mcp_flexion', 'middle_mcp_abduction', 'middle_pip_flexion', 'middle_dip_flexion',
    'ring_mcp_flexion', 'ring_mcp_abduction', 'ring_pip_flexion', 'ring_dip_flexion',
    'pinky_mcp_flexion', 'pinky_mcp_abduction', 'pinky_pip_flexion', 'pinky_dip_flexion',
)
NUM_JOINT_ANGLES = len(JOINT_ANGLE_NAMES)

_EPS = 1e-12


def operator2mano(handedness: str) -> np.ndarray:
    """Return the side's wrist-frame -> MANO rotation (anatomical 'left' / 'right')."""
    return OPERATOR2MANO_RIGHT if handedness_sign(handedness) > 0 else OPERATOR2MANO_LEFT


def wrist_frame(world: np.ndarray) -> np.ndarray:
    """
    (3, 3) wrist frame, columns = axes in the keypoints' frame, as dex-retargeting defines it.

    x: from the middle-finger MCP toward the wrist, made orthogonal to the normal of the plane
    through wrist, index MCP and middle MCP (least-squares normal: smallest singular vector);
    z = x cross normal, its sign chosen to point from the middle toward the index MCP (the
    normal flips with it, so the frame stays right-handed); y = the normal.
    """
    pts = np.asarray(world, dtype=np.float64)[[WRIST, INDEX_MCP, MIDDLE_MCP]]
    x = pts[0] - pts[2]
    normal = np.linalg.svd(pts - pts.mean(axis=0))[2][2]
    x = x - (x @ normal) * normal
    x = x / max(float(np.linalg.norm(x)), _EPS)
    z = np.cross(x, normal)
    if z @ (pts[1] - pts[2]) < 0:
        normal, z = -normal, -z
    return np.stack([x, normal, z], axis=1)


def mano_keypoints(world: np.ndarray, handedness: str) -> np.ndarray:
    """
    (21, 3) keypoints in the MANO wrist frame dex-retargeting expects (metres, wrist at 0).

    Feed them as the example does: vector configs take `kp[task] - kp[origin]` for the
    config's `target_link_human_indices`, position configs take `kp[indices]`.
    """
    world = np.asarray(world, dtype=np.float64).reshape(21, 3)
    rel = world - world[WRIST]
    return rel @ wrist_frame(rel) @ operator2mano(handedness)


def _units(v: np.ndarray) -> np.ndarray:
    """Row-wise unit vectors."""
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), _EPS)


def _rowdot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum('ij,ij->i', a, b)


def _bend(b1: np.ndarray, b2: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """
    Signed angles from bones b1 to bones b2 about `axis` (one per row).

    b2 is projected onto the plane normal to the axis first.
    """
    e1 = _units(b1 - _rowdot(b1, axis)[:, None] * axis)
    e2 = np.cross(axis, e1)
    return np.arctan2(_rowdot(b2, e2), _rowdot(b2, e1))


def _unsigned(b1: np.ndarray, b2: np.ndarray) -> float:
    c = float(_units(b1[None])[0] @ _units(b2[None])[0])
    return math.acos(min(max(c, -1.0), 1.0))


def joint_angles(world: np.ndarray, handedness: str) -> np.ndarray:
    """
    (20,) joint angles in radians, in JOINT_ANGLE_NAMES order.

    Fingers (index..pinky), per finger in a frame of its own metacarpal a (wrist -> MCP), the
    palm normal n (out of the palm, toward where fingers curl) made orthogonal to a, and the
    flexion axis k = a x n:
      - mcp_flexion: angle of the proximal phalanx about k, from a toward n;
      - mcp_abduction: elevation of the proximal phalanx out of the (a, n) plane, positive
        toward the thumb side (sign from the index-pinky direction, so no handedness needed);
      - pip / dip_flexion: signed angle between successive phalanges about k (negative =
        hyperextension).
    Thumb, in the palm frame (middle metacarpal m, palm normal n, radial axis r toward the
    index side):
      - cmc_flexion: elevation of the thumb metacarpal (CMC -> MCP) out of the palm plane
        toward the palm side (opposition);
      - cmc_abduction: angle of that metacarpal within the palm plane away from m, positive
        toward r (~0.6-0.9 rad on a relaxed hand);
      - mcp / ip_flexion: unsigned angles between successive thumb bones: the thumb bends
        about an axis that rolls with opposition, so no fixed palm axis signs it reliably.
    """
    w = np.asarray(world, dtype=np.float64).reshape(21, 3)
    palm = palm_frame(w, handedness)
    n_palm = palm.normal
    radial_hint = w[INDEX_MCP] - w[PINKY_MCP]
    chains = np.asarray(FINGER_CHAINS[1:], dtype=np.intp)  # (4, 4): MCP, PIP, DIP, tip
    a = _units(w[chains[:, 0]] - w[WRIST])  # metacarpals
    n = _units(n_palm - (a @ n_palm)[:, None] * a)
    k = np.cross(a, n)
    radial = k * np.where(k @ radial_hint >= 0, 1.0, -1.0)[:, None]
    b1, b2, b3 = (w[chains[:, j + 1]] - w[chains[:, j]] for j in range(3))
    fingers = np.stack([
        _bend(a, b1, k),
        np.arcsin(np.clip(_rowdot(_units(b1), radial), -1.0, 1.0)),
        _bend(b1, b2, k),
        _bend(b2, b3, k),
    ], axis=1)
    cmc, t_mcp, t_ip, t_tip = FINGER_CHAINS[0]
    # The palm frame: x wrist -> middle MCP, z the palm normal made perpendicular to x.
    m, n = palm.rotation[:, 0], palm.rotation[:, 2]
    r = palm.rotation[:, 1]
    r = r if r @ radial_hint >= 0 else -r
    meta = w[t_mcp] - w[cmc]
    in_plane = meta - (meta @ n) * n
    thumb = (
        math.atan2(float(meta @ n), math.sqrt(float(in_plane @ in_plane))),
        math.atan2(float(in_plane @ r), float(in_plane @ m)),
        _unsigned(meta, w[t_ip] - w[t_mcp]),
        _unsigned(w[t_ip] - w[t_mcp], w[t_tip] - w[t_ip]),
    )
    return np.concatenate([np.asarray(thumb), fingers.reshape(-1)])
