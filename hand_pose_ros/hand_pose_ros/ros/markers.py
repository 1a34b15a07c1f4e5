"""
RViz markers for hands with camera-frame 3D: skeleton, joints and a text label.

Each tracked hand gets its own namespace `hand_<track id>` with fixed ids (0 skeleton,
1 joints, 2 label), so RViz updates markers in place and a user can hide one hand. When a
hand disappears its three markers are DELETEd explicitly (plus a short lifetime as a safety
net if a DELETE is lost). Hands without valid, finite camera-frame 3D get no marker, so no
NaN can ever reach RViz.
"""

from __future__ import annotations

import colorsys
from typing import Any

from hand_pose_ros.core.anatomy import HAND_CONNECTIONS, HandLandmark
from hand_pose_ros.core.results import FrameResult, HandResult
from hand_pose_ros.core.validity import camera_valid
import numpy as np

SKELETON_ID, JOINTS_ID, LABEL_ID = 0, 1, 2
MARKER_IDS = (SKELETON_ID, JOINTS_ID, LABEL_ID)
LIFETIME_S = 1.0
LINE_WIDTH_M = 0.004
JOINT_DIAMETER_M = 0.010
TEXT_HEIGHT_M = 0.02


def hand_namespace(hand_id: int) -> str:
    return f'hand_{int(hand_id)}'


def hand_colour(hand: HandResult) -> tuple[float, float, float]:
    """Stable per-hand colour: hue band by side (left blue-ish, right orange-ish), shade by id."""
    base = 0.58 if hand.handedness == 'left' else 0.08
    hue = (base + 0.07 * (int(hand.id) % 3)) % 1.0
    return colorsys.hsv_to_rgb(hue, 0.85, 1.0)


def hand_label(hand: HandResult) -> str:
    gesture = hand.gesture.name if hand.gesture is not None else 'none'
    text = f'{hand.handedness} #{hand.id}'
    return text if gesture == 'none' else f'{text} {gesture}'


def _marker(header: Any, ns: str, mid: int, mtype: int, rgb: tuple[float, float, float]) -> Any:
    from visualization_msgs.msg import Marker
    m = Marker()
    m.header = header
    m.ns, m.id, m.type, m.action = ns, mid, mtype, Marker.ADD
    m.pose.orientation.w = 1.0
    m.color.r, m.color.g, m.color.b, m.color.a = float(rgb[0]), float(rgb[1]), float(rgb[2]), 1.0
    m.lifetime.sec = int(LIFETIME_S)
    m.lifetime.nanosec = int((LIFETIME_S % 1) * 1e9)
    m.frame_locked = False
    return m


def hand_markers_for(hand: HandResult, header: Any) -> list[Any]:
    """Build the three markers of one hand (caller checked camera_valid)."""
    from geometry_msgs.msg import Point
    from visualization_msgs.msg import Marker
    kp = np.asarray(hand.camera.keypoints, dtype=np.float64)
    pts = [Point(x=x, y=y, z=z) for x, y, z in kp[:, :3].tolist()]  # floats as float() gives
    ns, rgb = hand_namespace(hand.id), hand_colour(hand)

    skeleton = _marker(header, ns, SKELETON_ID, Marker.LINE_LIST, rgb)
    skeleton.scale.x = LINE_WIDTH_M
    skeleton.points = [pts[i] for pair in HAND_CONNECTIONS for i in pair]

    joints = _marker(header, ns, JOINTS_ID, Marker.SPHERE_LIST, rgb)
    joints.scale.x = joints.scale.y = joints.scale.z = JOINT_DIAMETER_M
    joints.points = pts

    label = _marker(header, ns, LABEL_ID, Marker.TEXT_VIEW_FACING, (1.0, 1.0, 1.0))
    label.scale.z = TEXT_HEIGHT_M
    label.text = hand_label(hand)
    # Just above the wrist on screen (optical frame: -y is up).
    wrist = kp[HandLandmark.WRIST]
    label.pose.position.x = float(wrist[0])
    label.pose.position.y = float(wrist[1]) - 0.03
    label.pose.position.z = float(wrist[2])
    return [skeleton, joints, label]


class MarkerTracker:
    """Builds each frame's MarkerArray and remembers namespaces to DELETE when hands vanish."""

    def __init__(self) -> None:
        self._shown: set[str] = set()

    def update(self, result: FrameResult, header: Any) -> Any:
        from visualization_msgs.msg import Marker, MarkerArray
        arr = MarkerArray()
        shown: set[str] = set()
        for hand in result.all_hands:
            if not camera_valid(hand):
                continue
            arr.markers.extend(hand_markers_for(hand, header))
            shown.add(hand_namespace(hand.id))
        for ns in sorted(self._shown - shown):
            for mid in MARKER_IDS:
                m = Marker()
                m.header = header
                m.ns, m.id, m.action = ns, mid, Marker.DELETE
                arr.markers.append(m)
        self._shown = shown
        return arr
