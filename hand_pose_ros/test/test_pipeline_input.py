"""Input validation, pixel formats and option validation of the hand tracker."""

from __future__ import annotations

from conftest import shared_path
import cv2
from hand_pose_ros.core.inputs.image import to_rgb
from hand_pose_ros.core.options import BaseOptions, RunningMode, tracker_options, TrackerOptions
from hand_pose_ros.core.tracker import HandTracker
import numpy as np
import pytest


@pytest.fixture(scope='module')
def tracker() -> HandTracker:
    return HandTracker(TrackerOptions(base=BaseOptions(model='lite'),
                                      running_mode=RunningMode.IMAGE, enable_gestures=False))


@pytest.fixture(scope='module')
def rgb() -> np.ndarray:
    bgr = cv2.imread(str(shared_path('hands', 'onehand10k', '784.jpg')))
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@pytest.mark.parametrize(('image', 'fmt', 'message'), [
    (None, 'rgb', 'image is None'),
    ([[1, 2, 3]], 'rgb', 'numpy array'),
    (np.zeros((0, 10, 3), np.uint8), 'rgb', 'empty'),
    (np.zeros((10, 0), np.uint8), 'mono', 'empty'),
    (np.zeros((8, 8, 3), np.float32), 'rgb', 'dtype'),
    (np.zeros((8, 8, 3), np.uint16), 'bgr', 'dtype'),
    (np.zeros((8, 8), np.uint8), 'rgb', 'shape'),
    (np.zeros((8, 8, 4), np.uint8), 'rgb', 'shape'),
    (np.zeros((8, 8, 3), np.uint8), 'bgra', 'shape'),
    (np.zeros((8, 8, 3), np.uint8), 'rgba', 'shape'),
    (np.zeros((8, 8, 3), np.uint8), 'mono', 'shape'),
    (np.zeros((2, 8, 8, 3), np.uint8), 'rgb', 'shape'),
    (np.zeros(8, np.uint8), 'mono', 'shape'),
    (np.zeros((8, 8, 3), np.uint8), 'yuv', 'pixel format'),
    (np.zeros((8, 8, 3), np.uint8), None, 'pixel format'),
])
def test_bad_input_rejected(tracker: HandTracker, image, fmt, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tracker.process(image, fmt)


def test_pixel_formats_give_the_same_hands(tracker: HandTracker, rgb: np.ndarray) -> None:
    reference = tracker.process(rgb, 'rgb')
    assert len(reference.hands) == 1
    variants = {
        'bgr': cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
        'rgba': cv2.cvtColor(rgb, cv2.COLOR_RGB2RGBA),
        'bgra': cv2.cvtColor(rgb, cv2.COLOR_RGB2BGRA),
        'RGB': rgb,
    }
    for fmt, image in variants.items():
        hands = tracker.process(image, fmt).hands
        assert len(hands) == 1, fmt
        np.testing.assert_allclose(hands[0].keypoints, reference.hands[0].keypoints, atol=1e-6)
    # A non-contiguous view (a crop) works too and finds the hand in crop coordinates.
    assert tracker.process(rgb[:, 50:], 'rgb').width == rgb.shape[1] - 50


def test_mono_input(tracker: HandTracker, rgb: np.ndarray) -> None:
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    result = tracker.process(gray, 'mono')
    assert (result.width, result.height) == (rgb.shape[1], rgb.shape[0])
    np.testing.assert_array_equal(to_rgb(gray[:, :, None], 'mono'), to_rgb(gray, 'mono'))
    assert to_rgb(gray, 'mono').shape == rgb.shape


def test_odd_sizes(tracker: HandTracker) -> None:
    for shape in [(1, 1), (1, 640), (480, 1), (7, 1001)]:
        result = tracker.process(np.full((*shape, 3), 127, np.uint8))
        assert result.hands == []
        assert (result.height, result.width) == shape


@pytest.mark.parametrize(('field', 'value'), [
    ('model', 'heavy'), ('runtime', 'onnx'), ('device', 'tpu'), ('num_threads', 0),
    ('num_threads', 1.5), ('max_num_hands', 0), ('max_num_hands', True),
    ('min_detection_confidence', 1.5), ('min_detection_confidence', -0.1),
    ('min_tracking_confidence', float('nan')), ('min_tracking_confidence', '0.5'),
    ('detect_every_n_frames', 0), ('roi_similarity', 2.0), ('one_euro_min_cutoff', 0.0),
    ('one_euro_beta', -1.0), ('one_euro_d_cutoff', float('inf')), ('default_fps', 0),
    ('hand_scale', -1.0), ('mirrored', 'no'), ('running_mode', 1),
    ('smoothing', 'yes'), ('enable_gestures', None), ('gesture_hold_frames', 0),
])
def test_bad_options_rejected(field: str, value) -> None:
    with pytest.raises(ValueError, match=field):
        tracker_options({'running_mode': RunningMode.VIDEO, field: value})
