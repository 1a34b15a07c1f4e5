"""
ROS messages out: the core's results and images as sensor_msgs and hand_pose_msgs.

Message packages are imported lazily, so the module loads without them. No NaN or inf is
ever published: hands without finite keypoints are left out (core/validity.py decides),
and absent 3D or gesture fields carry their documented defaults.
"""

from __future__ import annotations

import array
import dataclasses
import math
from typing import Any

import cv2
from hand_pose_ros.core.meaning.views import attach_views
from hand_pose_ros.core.results import CameraIntrinsics, FrameResult, HandResult
from hand_pose_ros.core.validity import camera_valid, hand_finite
import numpy as np


def ns_to_stamp(ns: int) -> Any:
    """Return integer nanoseconds as a builtin_interfaces/Time (the inverse of stamp_to_ns)."""
    from builtin_interfaces.msg import Time
    return Time(sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))


def header_msg(stamp_ns: int, frame_id: str) -> Any:
    """Return a std_msgs/Header (for a header that came from another message library)."""
    from std_msgs.msg import Header
    return Header(stamp=ns_to_stamp(stamp_ns), frame_id=str(frame_id))


# ---------------------------------------------------------------- images out

def _byte_array(data: np.ndarray) -> array.array:
    """
    uint8 data for a message's uint8[] field.

    rosidl's setter takes array.array('B') as is; given bytes it checks every element in
    Python when assertions are on (the default), which costs tens of ms per VGA image.
    """
    out = array.array('B')
    out.frombytes(np.ascontiguousarray(data, dtype=np.uint8).reshape(-1).data)
    return out


def rgb_to_image(rgb: np.ndarray, header: Any, encoding: str = 'rgb8') -> Any:
    """(H, W, 3) uint8 RGB -> sensor_msgs/Image (rgb8 or bgr8)."""
    from sensor_msgs.msg import Image
    data = rgb if encoding == 'rgb8' else cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    data = np.ascontiguousarray(data)
    msg = Image()
    msg.header = header
    msg.height, msg.width = int(data.shape[0]), int(data.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(data.shape[1] * 3)
    msg.data = _byte_array(data)
    return msg


def rgb_to_compressed(rgb: np.ndarray, header: Any, quality: int = 90) -> Any:
    """(H, W, 3) uint8 RGB -> sensor_msgs/CompressedImage (jpeg)."""
    from sensor_msgs.msg import CompressedImage
    ok, buf = cv2.imencode('.jpg', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError('JPEG encoding failed')
    msg = CompressedImage()
    msg.header = header
    msg.format = 'rgb8; jpeg compressed bgr8'
    msg.data = _byte_array(buf)
    return msg


def intrinsics_to_camera_info(
    intr: CameraIntrinsics, width: int, height: int, header: Any
) -> Any:
    """Convert CameraIntrinsics to a sensor_msgs/CameraInfo (P = K, no rectification)."""
    from sensor_msgs.msg import CameraInfo
    msg = CameraInfo()
    msg.header = header
    msg.width, msg.height = int(width), int(height)
    msg.distortion_model = intr.distortion_model or 'plumb_bob'
    d = [float(v) for v in np.asarray(intr.d).reshape(-1)]
    msg.d = d if d else [0.0] * 5
    msg.k = [float(v) for v in intr.matrix.reshape(-1)]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [intr.fx, 0.0, intr.cx, 0.0, 0.0, intr.fy, intr.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


# ---------------------------------------------------------------- results out

def rotation_to_quaternion(rot: np.ndarray) -> tuple[float, float, float, float]:
    """3x3 rotation matrix -> unit quaternion (x, y, z, w), w >= 0 (Shepperd's method)."""
    m = np.asarray(rot, dtype=np.float64)
    tr = m[0, 0] + m[1, 1] + m[2, 2]
    if tr > 0:
        s = 2.0 * math.sqrt(tr + 1.0)
        q = (
            (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s)
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = (0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s)
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = ((m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s)
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = ((m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s)
    arr = np.asarray(q)
    arr /= np.linalg.norm(arr)
    if arr[3] < 0:
        arr = -arr
    return float(arr[0]), float(arr[1]), float(arr[2]), float(arr[3])


def finite_or(value: float, default: float = 0.0) -> float:
    """float(value), or `default` when it is NaN/inf: no message field carries those."""
    v = float(value)
    return v if math.isfinite(v) else default


def _points(arr: np.ndarray) -> list[Any]:
    from geometry_msgs.msg import Point
    a = np.nan_to_num(np.asarray(arr, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    # tolist: the same Python floats as float() of each element, without a numpy scalar each
    return [Point(x=x, y=y, z=z) for x, y, z in a[:, :3].tolist()]


def hand_to_msg(hand: HandResult) -> Any:
    """Convert a HandResult to hand_pose_msgs/Hand (absent 3D/gesture: documented defaults)."""
    from hand_pose_msgs.msg import Hand
    if hand.joint_angles is None and hand.palm_normal is None:
        # Built outside a tracker (which fills the views): the same core function fills them.
        hand = dataclasses.replace(hand)
        attach_views(hand)
    msg = Hand()
    msg.id = int(hand.id)
    msg.handedness = str(hand.handedness)
    msg.handedness_score = float(hand.handedness_score)
    msg.score = float(hand.score)
    msg.keypoints = _points(hand.keypoints)
    msg.keypoints_hand = _points(hand.world)
    msg.wrist_pose.orientation.w = 1.0
    msg.hand_scale = float(hand.hand_scale)
    msg.scale_source = int(hand.scale_source)
    msg.stale = bool(hand.stale)
    msg.keypoint_confidence = [finite_or(hand.score)] * 21  # fused hands: set per keypoint
    msg.age = float(hand.age)
    inside = hand.keypoint_in_image
    msg.keypoint_in_image = ([True] * 21 if inside is None
                             else [bool(v) for v in np.asarray(inside).reshape(21)])
    if camera_valid(hand):
        cam = hand.camera
        msg.keypoints_camera = _points(cam.keypoints)
        msg.camera_valid = True
        msg.camera_method = int(cam.method)
        msg.reprojection_error = float(cam.reprojection_error)
        p = msg.wrist_pose.position
        p.x, p.y, p.z = (float(v) for v in cam.wrist_position)
        o = msg.wrist_pose.orientation
        o.x, o.y, o.z, o.w = rotation_to_quaternion(cam.wrist_rotation)
    g = hand.gesture
    if g is not None:
        msg.gesture = str(g.name)
        msg.gesture_score = finite_or(g.score)
        msg.gesture_raw = str(g.raw_name)
        msg.pinch_distance = finite_or(g.pinch_distance)
        msg.pinch_strength = finite_or(g.pinch_strength)
        msg.grip_aperture = finite_or(g.grip_aperture)
        msg.finger_curl = [finite_or(v) for v in np.asarray(g.finger_curl).reshape(5)]
    else:
        msg.gesture = 'none'
        msg.gesture_raw = 'none'
    # The retargeting views are the core's (core/meaning/views.py): the same numbers as
    # `detect --json` and Python users get.
    if hand.palm_normal is not None:
        n = msg.palm_normal
        n.x, n.y, n.z = (float(v) for v in hand.palm_normal)
    if hand.keypoints_mano is not None and hand.joint_angles is not None:
        msg.keypoints_mano = _points(hand.keypoints_mano)
        msg.joint_angles = [finite_or(v) for v in hand.joint_angles]
    return msg


def frame_result_to_msg(result: FrameResult, header: Any) -> Any:
    """
    Convert a FrameResult to a hand_pose_msgs/HandArray with the source image's header.

    Hands with non-finite 2D keypoints or scores are left out (see hand_finite); hands with
    non-finite 3D keep camera_valid false and the documented zero/identity 3D fields, so no
    NaN/inf is ever published.
    """
    from hand_pose_msgs.msg import HandArray
    msg = HandArray()
    msg.header = header
    msg.width, msg.height = int(result.width), int(result.height)
    msg.hands = [hand_to_msg(h) for h in result.all_hands if hand_finite(h)]
    return msg


def gesture_change_msgs(result: FrameResult, header: Any) -> list[Any]:
    """One hand_pose_msgs/HandGesture per debounced change the tracker confirmed."""
    from hand_pose_msgs.msg import HandGesture
    return [HandGesture(
        header=header, hand_id=int(change.hand_id), handedness=change.handedness,
        gesture=change.gesture, previous_gesture=change.previous_gesture,
        score=finite_or(change.score)) for change in result.gesture_changes]


def hand_array_keypoints(msg: Any) -> np.ndarray:
    """Return a HandArray's (N, 21, 3) image keypoints, to compare with the core's."""
    return np.array(
        [[[p.x, p.y, p.z] for p in h.keypoints] for h in msg.hands], dtype=np.float64
    ).reshape(len(msg.hands), 21, 3)
