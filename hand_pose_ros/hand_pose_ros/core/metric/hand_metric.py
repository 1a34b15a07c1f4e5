"""
The one metric-3D step of the pipeline: camera-frame 3D and where its scale came from.

Two ways to use depth, one place that chooses. Without a per-track scale, a depth image
rescales each frame's hand and snaps its joints to the measured depth (solve_camera_frame).
With one (``skeleton_lock``), each frame's measured hand-size factor goes to the track's
MedianScale until it locks, and the hand is fitted by PnP at that scale instead of being
rescaled to every frame's depth, which would make it breathe with the depth noise. Without
depth the ``hand_scale`` setting applies.
"""

from __future__ import annotations

from collections.abc import Callable

from hand_pose_ros.core.metric.depth import depth_to_metres, hand_depth_missing
from hand_pose_ros.core.metric.metric3d import measure_hand_scale, solve_camera_frame
from hand_pose_ros.core.metric.scale import MedianScale
from hand_pose_ros.core.results import CameraIntrinsics, HandResult, Method3D, ScaleSource
import numpy as np


def setting_scale_source(hand_scale: float) -> ScaleSource:
    """Name the source of a scale the hand_scale setting gives: the user, unless left at 1."""
    return ScaleSource.USER if hand_scale != 1.0 else ScaleSource.MODEL


def attach_camera_frames(
    hands: list[HandResult], camera: CameraIntrinsics, image_size: tuple[int, int],
    depth: np.ndarray | None = None, hand_scale: float = 1.0,
    scales: Callable[[int], MedianScale] | None = None,
) -> None:
    """
    Set camera, hand_scale, scale_source and depth_missing of each hand.

    image_size is (width, height); depth (uint16 mm or float32 m) must be registered to the
    colour image. scales: the per-track scale lock of a hand id (skeleton_lock), or None.
    """
    depth_m = None
    if depth is not None:
        depth_m = depth_to_metres(depth)
        if depth_m.shape != (image_size[1], image_size[0]):
            raise ValueError(
                f'depth image is {depth_m.shape[1]}x{depth_m.shape[0]} but the colour '
                f'image is {image_size[0]}x{image_size[1]}: depth must be registered '
                'to colour')
    for hand in hands:
        lock = scales(hand.id) if scales is not None else None
        if depth_m is not None:
            hand.depth_missing = hand_depth_missing(hand.keypoints[:, :2], depth_m)
        if lock is None:
            hand.camera = solve_camera_frame(
                hand.keypoints[:, :2], hand.world, camera, depth=depth_m,
                hand_scale=hand_scale, image_size=image_size, handedness=hand.handedness)
            hand.hand_scale = hand.camera.scale_factor
            hand.scale_source = (ScaleSource.DEPTH if hand.camera.method is Method3D.DEPTH
                                 else setting_scale_source(hand_scale))
            continue
        if depth_m is not None and not lock.locked:
            lock.add(measure_hand_scale(hand.keypoints[:, :2], hand.world, camera, depth_m))
        scale, source = lock.value, ScaleSource.DEPTH
        if scale is None:
            scale, source = hand_scale, setting_scale_source(hand_scale)
        hand.camera = solve_camera_frame(
            hand.keypoints[:, :2], hand.world, camera, hand_scale=scale,
            image_size=image_size, handedness=hand.handedness)
        if source is ScaleSource.DEPTH and hand.camera.valid:
            hand.camera.method = Method3D.DEPTH
        hand.hand_scale, hand.scale_source = scale, source
