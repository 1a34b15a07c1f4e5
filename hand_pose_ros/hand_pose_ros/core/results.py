"""
Result and geometry dataclasses shared by the whole core.

Kept free of behaviour so every module (pipeline, metric 3D, gestures, ROS conversion) can
depend on them without depending on each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from hand_pose_ros.core import anatomy
import numpy as np

# Re-exported for the modules and users that import them from here; defined in anatomy.py.
NUM_KEYPOINTS = anatomy.NUM_KEYPOINTS
KEYPOINT_NAMES = anatomy.KEYPOINT_NAMES
HAND_CONNECTIONS = anatomy.HAND_CONNECTIONS


class ScaleSource(IntEnum):
    """Where a hand's metric scale came from; values match hand_pose_msgs/Hand SCALE_*."""

    MODEL = 0  # the canonical average hand (hand_scale 1)
    USER = 1  # the hand_scale setting
    DEPTH = 2  # measured with a depth image (per track, locked once confident)
    TRIANGULATION = 3  # fused hands: measured by triangulation on the fused track


class Method3D(IntEnum):
    """How camera-frame 3D was obtained; values match hand_pose_msgs/Hand METHOD_*."""

    NONE = 0
    PNP = 1
    DEPTH = 2
    TRIANGULATED = 3  # fused from two or more calibrated cameras
    SINGLE_VIEW = 4  # fused: one camera's PnP at the fused track's scale


@dataclass(frozen=True)
class Roi:
    """
    A rotated rectangle in image pixels (centre, size, rotation in radians).

    Rotation follows MediaPipe: positive turns the rect's up axis clockwise on screen
    (image y points down).
    """

    cx: float
    cy: float
    width: float
    height: float
    rotation: float


@dataclass
class PalmDetection:
    """One palm detector output, after NMS, in image pixels."""

    score: float
    box: np.ndarray  # (4,) xmin, ymin, xmax, ymax in pixels
    keypoints: np.ndarray  # (7, 2) palm keypoints in pixels (0 wrist, 2 middle MCP)


@dataclass
class CameraIntrinsics:
    """
    Pinhole intrinsics plus distortion as in sensor_msgs/CameraInfo.

    distortion_model is 'plumb_bob' (k1 k2 p1 p2 k3), 'rational_polynomial'
    (k1 k2 p1 p2 k3 k4 k5 k6) or 'equidistant' (fisheye, k1 k2 k3 k4); an empty `d` means no
    distortion.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    d: np.ndarray = field(default_factory=lambda: np.zeros(0))
    distortion_model: str = 'plumb_bob'

    @property
    def matrix(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])


@dataclass
class CameraFrame3D:
    """A hand in the camera optical frame (metres), with how much to trust it."""

    keypoints: np.ndarray  # (21, 3) metres, camera optical frame
    wrist_position: np.ndarray  # (3,) metres
    wrist_rotation: np.ndarray  # (3, 3) columns = wrist frame axes in camera frame
    valid: bool
    method: Method3D
    reprojection_error: float  # RMS, pixels
    # Hand size against the canonical hand that the keypoints have (hand_scale x depth).
    scale_factor: float = 1.0


@dataclass
class GestureResult:
    """Per-hand gesture and continuous teleoperation signals."""

    name: str  # debounced gesture
    score: float
    raw_name: str  # this frame's class, before debouncing
    raw_score: float
    pinch_distance: float  # metres
    pinch_strength: float  # [0, 1]
    grip_aperture: float  # metres
    finger_curl: np.ndarray  # (5,) thumb..pinky, 0 straight .. 1 curled
    palm_normal: np.ndarray  # (3,) unit vector, hand-centric frame (camera axes)


@dataclass
class GestureChange:
    """A tracked hand's debounced gesture changed (published as hand_pose_msgs/HandGesture)."""

    hand_id: int
    handedness: str
    gesture: str
    previous_gesture: str
    score: float


@dataclass
class HandResult:
    """One hand in one image: what the pipeline found, plus optional 3D and gesture."""

    id: int  # noqa: A003 (public field, as Hand.msg's id)
    handedness: str  # 'left' or 'right', anatomical
    handedness_score: float  # [0.5, 1]
    raw_handedness: str  # the model's own label ('Left'/'Right', selfie convention)
    score: float  # presence, [0, 1]
    keypoints: np.ndarray  # (21, 3): x, y pixels; z relative depth in pixel scale
    world: np.ndarray  # (21, 3) metres, hand-centric (origin at mean of MCPs 5, 9, 13, 17)
    roi: Roi  # the rect the landmarks were read from
    camera: CameraFrame3D | None = None
    gesture: GestureResult | None = None
    # Where `handedness` comes from: 'model' (the landmark model's guess), 'body' (a body's
    # wrist at this hand agrees, body_rois), 'body_corrected' (the body overrode the model).
    handedness_source: str = 'model'
    found_by: str = 'palm'  # 'palm' (detector or track) or 'body' (a body-guided ROI)
    # Size factor against the canonical hand applied to `camera`, and where it came from.
    hand_scale: float = 1.0
    scale_source: ScaleSource = ScaleSource.MODEL
    # Loss policy: a lost hand is repeated, stale, with the seconds since it was last seen.
    stale: bool = False
    age: float = 0.0
    # (21,) bool: the keypoint lies inside the image (else the model invented it).
    keypoint_in_image: np.ndarray | None = None
    # A depth image came with the frame but has no valid reading on this hand, so its 3D
    # uses PnP at the setting's scale (a depth camera blind to the hand goes unnoticed else).
    depth_missing: bool = False
    # Retargeting views of `world` (core/meaning/hand_frames.py): dex-retargeting's MANO
    # wrist-frame keypoints (21, 3) and the named joint angles, radians; None when `world`
    # is not finite.
    keypoints_mano: np.ndarray | None = None
    joint_angles: np.ndarray | None = None
    # (3,) unit palm normal in the camera optical frame: from the valid camera-frame 3D,
    # else from the gesture's hand-centric frame (same axes); None when neither exists.
    palm_normal: np.ndarray | None = None


@dataclass
class FrameResult:
    """All hands found in one image."""

    width: int
    height: int
    hands: list[HandResult] = field(default_factory=list)
    palm_detector_ran: bool = False
    # People the body pass found (body_rois), in image pixels; empty when it did not run.
    bodies: list = field(default_factory=list)
    body_pass_ran: bool = False
    # Debounced gesture changes confirmed in this frame (tracking mode only).
    gesture_changes: list[GestureChange] = field(default_factory=list)
    # Lost hands still held (stale, see TrackerOptions.hold_lost_s); not part of `hands`.
    held: list[HandResult] = field(default_factory=list)

    @property
    def all_hands(self) -> list[HandResult]:
        """Live hands then held stale ones: what a consumer acting on hands should see."""
        return self.hands + self.held
