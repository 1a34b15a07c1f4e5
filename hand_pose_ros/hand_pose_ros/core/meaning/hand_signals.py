"""
Continuous per-hand signals for teleoperation, from the metric hand-centric keypoints.

Everything here is computed from `HandResult.world` (metres, hand-centric, axes parallel to
the camera optical frame: x right, y down, z forward), so it does not change with the hand's
distance to the camera or its position in the image. Angles and ratios are used wherever a
quantity should also not change with hand size.
"""

from __future__ import annotations

from dataclasses import dataclass
import math

from hand_pose_ros.core.anatomy import (
    FINGER_CHAINS,
    FINGERTIPS,
    HandLandmark,
    INDEX,
    MCP_JOINTS,
    MIDDLE,
    NUM_KEYPOINTS,
    palm_frame,
    palm_size,
    PINKY,
    RING,
    THUMB,
)
import numpy as np

# Flexion (MCP + PIP + DIP, degrees) that counts as a fully curled finger. Anatomical maxima
# sum to ~260 deg, but MediaPipe's world landmarks of a tight fist reach ~200 deg and its
# cylinder grasps ~140-160 deg, so 220 maps a real fist to ~0.9-1 and a flat hand to <0.4.
FULL_FINGER_FLEXION_DEG = 220.0
# Thumb MCP + IP flexion that counts as fully curled (anatomical ~60 + 80).
FULL_THUMB_FLEXION_DEG = 140.0
# pinch_strength is 1 at or below PINCH_CLOSED and 0 at or above PINCH_OPEN, where both are
# thumb-tip to index-tip distances in units of palm_size (~8.5 cm for an adult hand): the
# tip keypoints of touching finger pads sit 1-2 cm apart, a relaxed open hand ~10 cm.
PINCH_CLOSED = 0.2
PINCH_OPEN = 1.0

# Image 'up' in the hand-centric (camera-aligned) frame.
IMAGE_UP = np.array([0.0, -1.0, 0.0])

_EPS = 1e-9


@dataclass
class HandFeatures:
    """
    Geometric description of one hand, the input of every gesture rule.

    Lengths are metres; `*_ratio` values are divided by `palm_size` so rules written with
    them do not depend on hand size.
    """

    world: np.ndarray  # (21, 3) metres, hand-centric, camera-aligned axes
    handedness: str  # 'left' or 'right'
    up: np.ndarray  # (3,) unit 'up' direction the direction rules use (default image up)
    palm_size: float  # metres, mean wrist-to-finger-MCP distance
    finger_curl: np.ndarray  # (5,) thumb..pinky, 0 straight .. 1 fully curled
    finger_direction: np.ndarray  # (5, 3) unit vectors, each finger's MCP to its tip
    pinch_distance: float  # metres, thumb tip to index tip
    pinch_ratio: float  # pinch_distance / palm_size
    pinch_strength: float  # [0, 1]
    grip_aperture: float  # metres, largest fingertip-to-thumb-tip distance
    thumb_out_ratio: float  # thumb tip to index PIP / palm_size: thumb away from the fist
    thumb_tip_to_index_dip_ratio: float  # thumb tip to index DIP / palm_size
    palm_normal: np.ndarray  # (3,) unit, out of the palm

    def angle_to_up(self, finger: int) -> float:
        """Angle in degrees between a finger's MCP-to-tip direction and `up`."""
        return _degrees_from_cos(float(self.finger_direction[finger] @ self.up))


# The helpers below run ~40 times per hand per frame, so they avoid numpy calls on scalars
# (np.clip, np.linalg.norm cost microseconds each) with bit-identical plain-float versions:
# norm is sqrt(v.dot(v)) exactly as np.linalg.norm computes it for a vector.


def _clip(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def _norm(v: np.ndarray) -> float:
    return math.sqrt(float(v.dot(v)))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(_norm(v), _EPS)


def _degrees_from_cos(cos: float) -> float:
    # np.arccos, not math.acos: the two differ in the last bit for ~10% of inputs.
    return float(np.degrees(np.arccos(_clip(cos, -1.0, 1.0))))


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    return _degrees_from_cos(float(_unit(a) @ _unit(b)))


def palm_normal(world: np.ndarray, handedness: str) -> np.ndarray:
    """
    Return the unit normal pointing out of the palm (the side the fingers curl toward).

    The palm frame's `normal` (core/anatomy.py): the normal of the wrist / index MCP /
    pinky MCP triangle, signed by `handedness` because left and right hands are mirror images.
    """
    return palm_frame(world, handedness).normal


def _mcp_flexion_deg(world: np.ndarray, mcp: int, pip: int) -> float:
    """
    MCP flexion with the sideways (abduction) part removed.

    Spreading the fingers rotates the proximal phalanx within the palm plane; projecting out
    the palm's lateral axis keeps a spread flat hand at ~0 deg. Unsigned, so it needs no
    handedness (a wrong left/right label must not change the curl).
    """
    metacarpal = _unit(world[mcp] - world[HandLandmark.WRIST])
    lateral = world[HandLandmark.INDEX_FINGER_MCP] - world[HandLandmark.PINKY_MCP]
    lateral = _unit(lateral - (lateral @ metacarpal) * metacarpal)
    proximal = world[pip] - world[mcp]
    proximal = proximal - (proximal @ lateral) * lateral
    return _angle_deg(metacarpal, proximal)


def finger_curl(world: np.ndarray) -> np.ndarray:
    """Per-finger curl in [0, 1] from joint angles (rotation and scale invariant)."""
    curl = np.zeros(5)
    t_cmc, t_mcp, t_ip, t_tip = FINGER_CHAINS[THUMB]
    thumb = (_angle_deg(world[t_mcp] - world[t_cmc], world[t_ip] - world[t_mcp])
             + _angle_deg(world[t_ip] - world[t_mcp], world[t_tip] - world[t_ip]))
    curl[THUMB] = thumb / FULL_THUMB_FLEXION_DEG
    for f in (INDEX, MIDDLE, RING, PINKY):
        mcp, pip, dip, tip = FINGER_CHAINS[f]
        flexion = (_mcp_flexion_deg(world, mcp, pip)
                   + _angle_deg(world[pip] - world[mcp], world[dip] - world[pip])
                   + _angle_deg(world[dip] - world[pip], world[tip] - world[dip]))
        curl[f] = flexion / FULL_FINGER_FLEXION_DEG
    return np.clip(curl, 0.0, 1.0)


def pinch_strength(pinch_ratio: float) -> float:
    """Linear map of the relative thumb-index tip distance to [0, 1] (1 = touching)."""
    return float(_clip((PINCH_OPEN - pinch_ratio) / (PINCH_OPEN - PINCH_CLOSED), 0.0, 1.0))


def hand_signals(world: np.ndarray, handedness: str = 'right',
                 up: np.ndarray | None = None) -> HandFeatures:
    """
    All continuous signals of one hand from its (21, 3) metric hand-centric keypoints.

    `handedness` only sets the sign of the palm normal; `up` (default image up, -y) is the
    direction used by direction-dependent gestures such as thumb_up.
    """
    world = np.asarray(world, dtype=np.float64).reshape(NUM_KEYPOINTS, 3)
    size = max(palm_size(world), _EPS)
    tips = world[list(FINGERTIPS)]
    bases = world[list(MCP_JOINTS)]
    directions = np.stack([_unit(t - b) for t, b in zip(tips, bases)])
    thumb_tip = world[HandLandmark.THUMB_TIP]
    pinch = _norm(thumb_tip - world[HandLandmark.INDEX_FINGER_TIP])
    index_dip = world[HandLandmark.INDEX_FINGER_DIP]
    return HandFeatures(
        world=world,
        handedness=handedness,
        up=_unit(np.asarray(IMAGE_UP if up is None else up, dtype=np.float64)),
        palm_size=size,
        finger_curl=finger_curl(world),
        finger_direction=directions,
        pinch_distance=pinch,
        pinch_ratio=pinch / size,
        pinch_strength=pinch_strength(pinch / size),
        grip_aperture=float(np.max(np.linalg.norm(tips[1:] - thumb_tip, axis=1))),
        thumb_out_ratio=_norm(thumb_tip - world[HandLandmark.INDEX_FINGER_PIP]) / size,
        thumb_tip_to_index_dip_ratio=_norm(thumb_tip - index_dip) / size,
        palm_normal=palm_normal(world, handedness),
    )
