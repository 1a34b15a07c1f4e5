"""
Wrist (and optional fingertip) TF frames for hands with camera-frame 3D.

Names: `<tf_prefix>left_wrist` (`_<id>` appended when two hands share a side); when one node
tracks several cameras, `<tf_prefix><camera>_left_wrist`, so cameras never share a frame.

tf2_ros is not on PyPI, so the broadcaster falls back to publishing tf2_msgs/TFMessage on
/tf itself with the QoS tf2_ros's TransformBroadcaster uses (reliable, volatile, keep last
100); listeners cannot tell the difference.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from hand_pose_ros.core.anatomy import FINGERTIPS, KEYPOINT_NAMES
from hand_pose_ros.core.results import FrameResult
from hand_pose_ros.core.validity import camera_valid
from hand_pose_ros.ros.msg_out import rotation_to_quaternion
import numpy as np

TF_QOS_DEPTH = 100


def camera_tf_prefix(tf_prefix: str, camera: str, several_cameras: bool) -> str:
    """
    Return the frame name prefix of one camera's hands.

    It is `<tf_prefix><camera>_` when one node tracks several cameras, else `<tf_prefix>`.

    Each camera broadcasts its hands relative to its own optical frame; with one shared
    prefix two cameras would both publish `left_wrist` with different parents, which tf2
    reports as a conflict and resolves by whichever came last. A camera that is the node
    namespace itself ('') adds nothing: no other camera can produce its names.
    """
    camera = camera.strip('/')
    return f'{tf_prefix}{camera}_' if several_cameras and camera else tf_prefix


def _frame_parts(result: FrameResult, prefix: str) -> dict[int, tuple[str, str]]:
    """Track id -> (`<prefix><side>`, suffix); suffix `_<id>` only when a side repeats."""
    valid = [h for h in result.all_hands if camera_valid(h)]
    sides = Counter(h.handedness for h in valid)
    return {
        h.id: (f'{prefix}{h.handedness}', f'_{h.id}' if sides[h.handedness] > 1 else '')
        for h in valid
    }


def wrist_frame_names(result: FrameResult, prefix: str) -> dict[int, str]:
    """Track id -> `<prefix>left_wrist`, or `<prefix>left_wrist_<id>` when two are left."""
    return {hid: f'{base}_wrist{sfx}' for hid, (base, sfx) in _frame_parts(result, prefix).items()}


def hand_transforms(
    result: FrameResult, header: Any, prefix: str = '', fingertips: bool = False
) -> list[Any]:
    """
    geometry_msgs/TransformStamped list: camera optical frame -> each hand's wrist frame.

    The wrist frame is the palm frame of core/anatomy.py (x to the middle MCP, z out of the
    palm), as core/metric/metric3d.py stored it in `CameraFrame3D.wrist_rotation`.

    Fingertip frames (optional, `<prefix><side>_<joint name>[_<id>]`) are children of the
    wrist frame with the wrist's orientation, so they only add the finger's offset.
    """
    from geometry_msgs.msg import TransformStamped
    parts = _frame_parts(result, prefix)
    out = []
    for hand in result.all_hands:
        if hand.id not in parts:
            continue
        base, sfx = parts[hand.id]
        wrist_name = f'{base}_wrist{sfx}'
        cam = hand.camera
        pos = np.asarray(cam.wrist_position, dtype=np.float64)
        rot = np.asarray(cam.wrist_rotation, dtype=np.float64)
        t = TransformStamped()
        t.header.stamp = header.stamp
        t.header.frame_id = header.frame_id
        t.child_frame_id = wrist_name
        tr = t.transform.translation
        tr.x, tr.y, tr.z = (float(v) for v in pos)
        r = t.transform.rotation
        r.x, r.y, r.z, r.w = rotation_to_quaternion(rot)
        out.append(t)
        if not fingertips:
            continue
        for j in FINGERTIPS:
            ft = TransformStamped()
            ft.header.stamp = header.stamp
            ft.header.frame_id = wrist_name
            ft.child_frame_id = f'{base}_{KEYPOINT_NAMES[j]}{sfx}'
            local = rot.T @ (np.asarray(cam.keypoints[j], dtype=np.float64) - pos)
            tr = ft.transform.translation
            tr.x, tr.y, tr.z = (float(v) for v in local)
            ft.transform.rotation.w = 1.0
            out.append(ft)
    return out


class TfBroadcaster:
    """tf2_ros.TransformBroadcaster when importable, else an equivalent /tf publisher."""

    def __init__(self, node: Any):
        self._native = None
        self._pub = None
        try:
            from tf2_ros import TransformBroadcaster  # type: ignore[import-not-found]
            self._native = TransformBroadcaster(node)
        except ImportError:
            from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
            from tf2_msgs.msg import TFMessage
            qos = QoSProfile(
                depth=TF_QOS_DEPTH, history=HistoryPolicy.KEEP_LAST,
                reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
            self._pub = node.create_publisher(TFMessage, '/tf', qos)

    @property
    def uses_tf2_ros(self) -> bool:
        return self._native is not None

    def send(self, transforms: list[Any]) -> None:
        if not transforms:
            return
        if self._native is not None:
            self._native.sendTransform(transforms)
            return
        from tf2_msgs.msg import TFMessage
        self._pub.publish(TFMessage(transforms=transforms))
