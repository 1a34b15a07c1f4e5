"""
Whether a hand result is a measurement consumers can use: decided here, once.

Every output (ROS messages, TF, markers, JSON) asks here.

A hand without finite keypoints is not a measurement: it is left out of every output rather
than published with NaN/inf (which many consumers do not check for) or with made-up zeros.
Camera-frame 3D counts only when the fit marked it valid and every value is finite, with a
proper rotation (so its quaternion is finite too).
"""

from __future__ import annotations

import math

from hand_pose_ros.core.results import HandResult
import numpy as np


def hand_finite(hand: HandResult) -> bool:
    """Tell whether the hand's 2D keypoints, metric model keypoints and scores are finite."""
    return bool(
        np.all(np.isfinite(np.asarray(hand.keypoints, dtype=np.float64)))
        and np.all(np.isfinite(np.asarray(hand.world, dtype=np.float64)))
        and math.isfinite(float(hand.score)) and math.isfinite(float(hand.handedness_score)))


def camera_valid(hand: HandResult) -> bool:
    """Tell whether the hand has valid, finite camera-frame 3D with a proper rotation."""
    cam = hand.camera
    if not (hand_finite(hand) and cam is not None and cam.valid
            and np.all(np.isfinite(cam.keypoints)) and np.all(np.isfinite(cam.wrist_position))
            and np.all(np.isfinite(cam.wrist_rotation))
            and math.isfinite(float(cam.reprojection_error))):
        return False
    rot = np.asarray(cam.wrist_rotation, dtype=np.float64)
    return bool(np.allclose(rot.T @ rot, np.eye(3), atol=1e-3) and np.linalg.det(rot) > 0.0)
