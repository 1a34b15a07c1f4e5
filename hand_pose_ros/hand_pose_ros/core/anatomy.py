r"""
Hand anatomy: the 21 landmark indices, their names, fingers, bones and the palm frame.

Every module that indexes a (21, k) landmark array (image keypoints, hand-centric `world`,
camera-frame keypoints) takes its indices from here, and the 3D palm orientation (the wrist
frame of TF and HandArray, the palm normal of the gesture features) comes from `palm_frame`
alone, so they cannot drift apart. Only numpy is imported: core/results.py and the ROS layer
both depend on this module.

Joint order is MediaPipe's (the landmark model's output order)::

              8   12  16  20     tips
              |   |   |   |
              7   11  15  19     DIP joints
              |   |   |   |
      4       6   10  14  18     PIP joints (thumb: 4 tip, 3 IP)
      |       |   |   |   |
      3       5 - 9 - 13 - 17    finger MCP joints: the knuckle row
       \      |             |
        2     |             |    thumb MCP
         \    |            /
          1   |          /       thumb CMC
           \  |        /
              0                  wrist
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
import math

import numpy as np

NUM_KEYPOINTS = 21
# MediaPipe's handedness label for the same hand seen the other way round: its selfie
# (mirrored) label and the anatomical one are opposite.
OTHER_HAND = {'Left': 'Right', 'Right': 'Left'}


class HandLandmark(IntEnum):
    """
    The 21 hand landmarks in MediaPipe order (names as mediapipe's HandLandmark).

    An IntEnum so a member indexes numpy arrays and messages directly (`world[WRIST]`) while
    still printing as a joint name in logs and test failures.
    """

    WRIST = 0
    THUMB_CMC = 1
    THUMB_MCP = 2
    THUMB_IP = 3
    THUMB_TIP = 4
    INDEX_FINGER_MCP = 5
    INDEX_FINGER_PIP = 6
    INDEX_FINGER_DIP = 7
    INDEX_FINGER_TIP = 8
    MIDDLE_FINGER_MCP = 9
    MIDDLE_FINGER_PIP = 10
    MIDDLE_FINGER_DIP = 11
    MIDDLE_FINGER_TIP = 12
    RING_FINGER_MCP = 13
    RING_FINGER_PIP = 14
    RING_FINGER_DIP = 15
    RING_FINGER_TIP = 16
    PINKY_MCP = 17
    PINKY_PIP = 18
    PINKY_DIP = 19
    PINKY_TIP = 20

    @property
    def keypoint_name(self) -> str:
        """Return the TF.js name (hand_pose_msgs/Hand KEYPOINT_NAMES, TF frame suffixes)."""
        return KEYPOINT_NAMES[self]


def _tfjs_name(member: HandLandmark) -> str:
    # TF.js spells the pinky like the other fingers (pinky_finger_tip); MediaPipe does not.
    name = member.name.lower()
    return 'pinky_finger' + name[len('pinky'):] if name.startswith('pinky_') else name


# mediapipe.solutions.hands.HandLandmark names, lower case ('wrist' .. 'pinky_tip').
MEDIAPIPE_NAMES: tuple[str, ...] = tuple(m.name.lower() for m in HandLandmark)
# TF.js names ('wrist' .. 'pinky_finger_tip'): hand_pose_msgs/Hand KEYPOINT_NAMES and its
# per-joint constants, and the fingertip TF frame names, use these.
KEYPOINT_NAMES: tuple[str, ...] = tuple(_tfjs_name(m) for m in HandLandmark)

# Finger indices (hand_pose_msgs/Hand FINGER_*, HandFeatures.finger_curl order).
THUMB, INDEX, MIDDLE, RING, PINKY = range(5)
FINGER_NAMES: tuple[str, ...] = ('thumb', 'index', 'middle', 'ring', 'pinky')

# Joint chain of each finger, base to tip, thumb .. pinky. Together they hold every joint
# but the wrist exactly once.
FINGER_CHAINS: tuple[tuple[HandLandmark, ...], ...] = tuple(
    tuple(HandLandmark(base + k) for k in range(4)) for base in (1, 5, 9, 13, 17))
FINGERTIPS: tuple[HandLandmark, ...] = tuple(chain[-1] for chain in FINGER_CHAINS)
# Each finger's MCP joint, thumb .. pinky (the thumb's is the second joint of its chain).
MCP_JOINTS: tuple[HandLandmark, ...] = (
    HandLandmark.THUMB_MCP, HandLandmark.INDEX_FINGER_MCP, HandLandmark.MIDDLE_FINGER_MCP,
    HandLandmark.RING_FINGER_MCP, HandLandmark.PINKY_MCP)
# The knuckle row (index .. pinky MCP): with the wrist it spans the palm.
FINGER_MCPS: tuple[HandLandmark, ...] = MCP_JOINTS[1:]
# The rigid part of the hand: wrist, thumb CMC and the four finger MCPs. Finger poses do not
# move them relative to each other, so fits and depth reads weight or sample them.
PALM_JOINTS: tuple[HandLandmark, ...] = (
    HandLandmark.WRIST, HandLandmark.THUMB_CMC) + FINGER_MCPS
# Joints that move towards the palm when the fingers flex: the thumb tip and every finger's
# PIP, DIP and tip (ascending index order).
FLEXING_JOINTS: tuple[HandLandmark, ...] = (HandLandmark.THUMB_TIP,) + tuple(
    joint for chain in FINGER_CHAINS[1:] for joint in chain[1:])

# Bones as (parent, child) joint pairs, for drawing and markers: MediaPipe's HAND_CONNECTIONS
# (each finger chain from the wrist or the knuckle row, the knuckle row, wrist to pinky MCP).
HAND_CONNECTIONS: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (3, 4),
    (0, 5), (5, 6), (6, 7), (7, 8),
    (5, 9), (9, 10), (10, 11), (11, 12),
    (9, 13), (13, 14), (14, 15), (15, 16),
    (13, 17), (0, 17), (17, 18), (18, 19), (19, 20),
)

_NORMAL_EPS = 1e-9
_FRAME_EPS = 1e-12


def handedness_sign(handedness: str) -> float:
    """
    +1 for a right hand, -1 for a left one (anatomical; any case, surrounding spaces ok).

    Left and right hands are mirror images, so every palm-normal cross product flips sign
    with the side; this is the one place that maps the label to that sign.
    """
    side = str(handedness).strip().lower()
    if side not in ('left', 'right'):
        raise ValueError(f"handedness must be 'left' or 'right', got {handedness!r}")
    return 1.0 if side == 'right' else -1.0


def palm_size(points: np.ndarray) -> float:
    """Mean wrist-to-MCP distance (index..pinky): a size that finger poses do not change."""
    points = np.asarray(points, dtype=np.float64)
    return float(np.mean(np.linalg.norm(
        points[list(FINGER_MCPS)] - points[HandLandmark.WRIST], axis=1)))


@dataclass(frozen=True)
class PalmFrame:
    r"""
    The palm's pose in the frame of the points it was computed from.

    `rotation` columns are the frame's axes, the same convention for both hands
    (right-handed, REP 103)::

            middle MCP                       x: wrist -> middle-finger MCP
                 o                           z: palm normal, pointing out of the palm
          index  |   ring                       (the side the palm faces)
            o    |    o    pinky             y: z cross x
             \   |   /    o
              \  x  /   /                  For a right hand seen palm-on (palm towards
        thumb  \ ^ /  /                     the viewer, fingers up) z points at the viewer
          o     \|/ /                       and y points to the viewer's left (the pinky
           \     o wrist                    side). For a left hand seen palm-on z also
            ---> y (pinky side for a right   points at the viewer and y to the thumb side.
                   hand seen palm-on)

    `normal` is the unit normal of the wrist / index MCP / pinky MCP triangle, out of the
    palm. `rotation[:, 2]` is the same vector made perpendicular to x (the middle MCP need
    not lie in that triangle's plane); the two agree to a few degrees on real hands.
    """

    origin: np.ndarray  # (3,) the wrist
    rotation: np.ndarray  # (3, 3) columns = x, y, z axes; identity when degenerate
    normal: np.ndarray  # (3,) unit (zero when degenerate), out of the palm


def palm_side(points: np.ndarray, normal: np.ndarray, handedness: str | None) -> float:
    """
    +1 when `normal` (index x pinky MCP vectors from the wrist) points out of the palm, else -1.

    With `handedness` the mirror sign decides. Without it the side the fingers flex towards
    (always the palm side) is used; for a perfectly flat hand that is undecided and the
    right-hand sign is assumed.
    """
    if handedness is not None:
        return handedness_sign(handedness)
    centre = points[list(PALM_JOINTS)].mean(axis=0)
    flex = float(np.sum((points[list(FLEXING_JOINTS)] - centre) @ normal))
    return -1.0 if flex < 0.0 else 1.0


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # np.cross costs ~15 us on 3-vectors; these are the same products and differences, so
    # the result is bit-identical at ~0.5 us (the palm frame is built per hand per frame).
    a0, a1, a2 = a.tolist()
    b0, b1, b2 = b.tolist()
    return np.array([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0])


def _norm(v: np.ndarray) -> float:
    # What np.linalg.norm computes for a vector, without its overhead.
    return math.sqrt(float(v.dot(v)))


def palm_frame(points: np.ndarray, handedness: str | None = None) -> PalmFrame:
    """
    Compute the palm frame (origin at the wrist, axes in `PalmFrame`) of (21, 3) points.

    Works in any frame whose axes are a rotation of the hand's (hand-centric `world`, camera
    optical frame): the result is expressed in the points' frame.

    A left hand is the mirror image of a right hand, so the palm normal cannot come from the
    MCP cross product alone: (index MCP - wrist) x (pinky MCP - wrist) points out of the palm
    for a right hand and into it for a left one. `handedness` ('left'/'right', anatomical)
    picks the sign; None falls back to `palm_side`'s flexion test.
    """
    p = np.asarray(points, dtype=np.float64)
    wrist = p[HandLandmark.WRIST]
    cross = _cross(p[HandLandmark.INDEX_FINGER_MCP] - wrist, p[HandLandmark.PINKY_MCP] - wrist)
    side = palm_side(p, cross, handedness)
    out = side * cross
    normal = out / max(_norm(out), _NORMAL_EPS)
    x = p[HandLandmark.MIDDLE_FINGER_MCP] - wrist
    x /= max(_norm(x), _FRAME_EPS)
    z = out - np.dot(out, x) * x
    length = _norm(z)
    if length < _FRAME_EPS:
        rotation = np.eye(3)
    else:
        z /= length
        rotation = np.stack([x, _cross(z, x), z], axis=1)
    return PalmFrame(origin=wrist.copy(), rotation=rotation, normal=normal)
