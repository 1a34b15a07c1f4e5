"""The tracker keeps its promises when the data or a runtime misbehaves."""

from __future__ import annotations

from conftest import shared_path
import cv2
from hand_pose_ros.core.metric.metric3d import solve_camera_frame
from hand_pose_ros.core.models.runtimes.base import LandmarkOutput
from hand_pose_ros.core.models.runtimes.litert import LiteRtRuntime
from hand_pose_ros.core.options import BaseOptions, RunningMode, TrackerOptions
from hand_pose_ros.core.results import CameraIntrinsics, Method3D
from hand_pose_ros.core.tracker import HandTracker
import numpy as np
import pytest


def _motion_frames() -> list[np.ndarray]:
    paths = sorted(shared_path('motion').glob('seq*/*.jpg'))
    assert len(paths) == 144, 'expected the three 48-frame motion sequences'
    return [cv2.imread(str(p)) for p in paths]


@pytest.mark.parametrize('max_hands', [1, 2])
def test_max_num_hands_bounds_every_frame_in_tracking_mode(max_hands: int) -> None:
    """MediaPipe's graph can report a third hand for a frame (seq1's last frame with 2);
    robot code gets at most max_num_hands, the tracked (older) hands first."""
    tracker = HandTracker(TrackerOptions(base=BaseOptions(model='full'),
                                         running_mode=RunningMode.VIDEO, max_num_hands=max_hands,
                                         smoothing=False, enable_gestures=False))
    counts = [len(tracker.process(f, 'bgr').hands) for f in _motion_frames()]
    assert max(counts) == max_hands, counts


class _NanFirstCrop(LiteRtRuntime):
    """A runtime whose first landmark crop comes back non-finite (a broken model/driver)."""

    def hand_landmarks(self, images, image_index, transforms) -> LandmarkOutput:
        out = super().hand_landmarks(images, image_index, transforms)
        out.landmarks[0, 3, 0] = np.nan
        return out


def test_non_finite_landmarks_drop_one_crop_not_the_frame() -> None:
    frame = cv2.imread(str(shared_path('motion', 'seq0', '0000.jpg')))
    options = TrackerOptions(base=BaseOptions(model='full'), running_mode=RunningMode.IMAGE)
    clean = HandTracker(options).process(frame, 'bgr')
    assert len(clean.hands) == 2, 'this frame shows two hands'
    broken = HandTracker(TrackerOptions(base=BaseOptions(model='full'),
                                        running_mode=RunningMode.IMAGE),
                         runtime=_NanFirstCrop(model='full'))
    result = broken.process(frame, 'bgr')
    assert len(result.hands) == 1
    assert all(np.isfinite(h.keypoints).all() for h in result.hands)


@pytest.mark.parametrize('world', [
    np.full((21, 3), np.nan), np.zeros((21, 3)), np.full((21, 3), np.inf)])
def test_degenerate_world_landmarks_give_invalid_3d_not_an_error(world) -> None:
    keypoints = np.random.default_rng(0).uniform(100, 300, (21, 2))
    cam = solve_camera_frame(keypoints, world, CameraIntrinsics(500, 500, 320, 240))
    assert not cam.valid and cam.method == Method3D.NONE


def test_device_auto_uses_a_gpu_only_where_torch_sees_one() -> None:
    """runtime 'auto' + device 'auto' (the node's defaults): torch on CUDA, else litert."""
    from hand_pose_ros.core.models.runtimes import _cuda_visible, create_runtime
    runtime = create_runtime(BaseOptions(model='lite'))
    try:
        assert runtime.name == ('torch' if _cuda_visible() else 'litert')
    finally:
        runtime.close()
    with pytest.raises(ValueError, match='device'):
        TrackerOptions(base=BaseOptions(device='gpu'), running_mode=RunningMode.VIDEO).validate()
