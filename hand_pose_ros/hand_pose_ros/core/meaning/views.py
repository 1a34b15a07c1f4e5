"""
Retargeting views as fields of the hand result, so every consumer gets the same ones.

`keypoints_mano` and `joint_angles` are what dex-retargeting and joint-by-joint robot
mappings take (core/meaning/hand_frames.py says why they look as they do); the palm normal
is what a grasp approach needs. Computed once here, they reach the ROS message, `detect
--json` and Python users alike.
"""

from __future__ import annotations

from hand_pose_ros.core.meaning.hand_frames import joint_angles, mano_keypoints
from hand_pose_ros.core.results import HandResult
from hand_pose_ros.core.validity import camera_valid
import numpy as np


def attach_views(hand: HandResult) -> None:
    """Set keypoints_mano, joint_angles and palm_normal of one hand (after 3D and gesture)."""
    world = np.asarray(hand.world, dtype=np.float64)
    if world.shape == (21, 3) and np.all(np.isfinite(world)):
        hand.keypoints_mano = mano_keypoints(world, hand.handedness)
        hand.joint_angles = joint_angles(world, hand.handedness)
    normal = None
    if camera_valid(hand):
        normal = np.asarray(hand.camera.wrist_rotation)[:, 2]
    elif hand.gesture is not None:
        normal = np.asarray(hand.gesture.palm_normal)
    if normal is not None and np.all(np.isfinite(normal)):
        hand.palm_normal = np.asarray(normal, dtype=np.float64)
