"""Teleop-grade hands in the core: one skeleton per track, and the loss policy."""

from __future__ import annotations

from conftest import shared_path
import cv2
from hand_pose_ros.core.options import BaseOptions, RunningMode, TrackerOptions
from hand_pose_ros.core.results import CameraIntrinsics, ScaleSource
from hand_pose_ros.core.tracker import HandTracker
from hand_pose_ros.core.tracking.skeleton import (
    bone_length_cv,
    bone_lengths,
    CHAIN_BONES,
    Skeleton,
    SkeletonTrack,
)
import numpy as np
import pytest

RNG = np.random.default_rng(7)


def _hand() -> np.ndarray:
    """A plausible open right hand (metres, hand-centric)."""
    pts = np.zeros((21, 3))
    bases = {1: (-0.03, -0.02), 5: (-0.025, -0.085), 9: (0.0, -0.09), 13: (0.02, -0.085),
             17: (0.04, -0.075)}
    for base, (x, y) in bases.items():
        pts[base] = (x, y, 0.0)
        step = np.array([x * 0.4, -0.03, -0.003]) if base != 1 else np.array([-0.02, -0.015, 0])
        for k in range(1, 4):
            pts[base + k] = pts[base] + k * step
    return pts - pts[[5, 9, 13, 17]].mean(axis=0)


def _breathing(frames: int) -> np.ndarray:
    """The hand with a per-frame scale wobble and per-joint noise, as the model gives it."""
    base = _hand()
    out = []
    for _ in range(frames):
        scale = 1.0 + RNG.normal(0.0, 0.05)
        out.append(base * scale + RNG.normal(0.0, 0.0015, base.shape))
    return np.asarray(out)


def test_skeleton_of_a_clean_hand_changes_nothing() -> None:
    hand = _hand()
    skeleton = Skeleton.from_frames(np.stack([hand] * 3))
    np.testing.assert_allclose(skeleton.apply(hand), hand, atol=1e-9)


def test_locked_track_keeps_lengths_and_directions() -> None:
    frames = _breathing(40)
    track = SkeletonTrack(frames_needed=10, min_score=0.8)
    out = np.asarray([track.update(f, 0.95) for f in frames])
    assert track.locked
    lengths = bone_lengths(out[10:], CHAIN_BONES)
    assert np.ptp(lengths, axis=0).max() < 1e-9
    # Directions are the model's: every chain bone points where the input's did.
    for parent, child in CHAIN_BONES:
        a = out[:, child] - out[:, parent]
        b = frames[:, child] - frames[:, parent]
        cos = np.sum(a * b, axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        assert cos.min() > 0.999
    assert bone_length_cv(out) < 0.25 * bone_length_cv(frames)


def test_unconfident_frames_are_not_measured() -> None:
    track = SkeletonTrack(frames_needed=3, min_score=0.8)
    frames = _breathing(4)
    np.testing.assert_array_equal(track.update(frames[0], 0.5), frames[0])
    assert not track.samples
    for f in frames[1:]:
        track.update(f, 0.9)
    assert track.locked


def test_depth_scale_locks_at_the_median() -> None:
    track = SkeletonTrack(frames_needed=3, min_score=0.8)
    for ratio in (1.1, None, 5.0, 1.12, 1.3, 9.9):
        track.add_depth_ratio(ratio)
    assert track.depth_locked and track.depth_scale == pytest.approx(1.12)


def test_teleop_settings_are_for_tracking_modes_only() -> None:
    image = TrackerOptions(running_mode=RunningMode.IMAGE)
    assert not image.skeleton_lock and image.hold_lost_s == 0.0
    video = TrackerOptions(running_mode=RunningMode.VIDEO)
    assert video.skeleton_lock and video.hold_lost_s == pytest.approx(0.2)
    with pytest.raises(ValueError, match='tracking'):
        TrackerOptions(running_mode=RunningMode.IMAGE, hold_lost_s=0.5)


@pytest.fixture(scope='module')
def hand_frame() -> np.ndarray:
    return cv2.imread(str(shared_path('motion', 'seq2', '0000.jpg')))


def test_lost_hand_is_held_stale_then_dropped(hand_frame: np.ndarray) -> None:
    """Three frames with a hand, then empty ones at 30 Hz: held for 0.2 s, then gone."""
    tracker = HandTracker(TrackerOptions(base=BaseOptions(model='full'),
                                         running_mode=RunningMode.VIDEO, hold_lost_s=0.2))
    h, w = hand_frame.shape[:2]
    camera = CameraIntrinsics(0.9 * w, 0.9 * w, w / 2, h / 2)
    blank = np.zeros_like(hand_frame)
    results = [tracker.process(hand_frame if k < 3 else blank, 'bgr', camera=camera,
                               timestamp=k / 30.0) for k in range(12)]
    last = results[2].hands[0]
    assert not last.stale and last.age == 0.0 and last.keypoint_in_image.all()
    assert last.scale_source is ScaleSource.MODEL
    for k, result in enumerate(results[3:], start=3):
        age = (k - 2) / 30.0
        if age <= 0.2 + 1e-9:
            assert not result.hands and len(result.held) == 1, k
            held = result.held[0]
            assert held.stale and held.age == pytest.approx(age)
            assert held.id == last.id
            np.testing.assert_array_equal(held.keypoints, last.keypoints)
            assert held.camera is not None and np.all(np.isfinite(held.camera.keypoints))
        else:
            assert not result.all_hands, k
