"""Gestures of real photos, from MediaPipe's own world landmarks of them (golden file).

Only photos where a person sees one gesture without doubt are used; each case says what is
in the picture. Both MediaPipe model variants (lite and full) must give the class, unless
the variant found no hand there (lite misses 33.jpg). The golden handedness is MediaPipe's
selfie-convention label; these photos are not mirrored, so the anatomical side is the other.
"""

from __future__ import annotations

from conftest import shared_path
from hand_pose_ros.core.meaning import gestures as g
from hand_pose_ros.core.meaning.hand_signals import hand_signals
import numpy as np
import pytest

ANATOMICAL = {'Left': 'right', 'Right': 'left'}

# (image, what a person sees, expected class)
UNAMBIGUOUS = [
    ('onehand10k/33.jpg', 'woman holds her index finger up against her lips ("shh"), the '
     'other fingers and the thumb folded', g.GESTURE_POINTING_UP),
    ('onehand10k/9.jpg', 'woman covers her mouth with a flat hand, all fingers straight and '
     'pointing up, back of the hand to the camera', g.GESTURE_OPEN_PALM),
    ('onehand10k/1402.jpg', '"OK" sign: thumb tip touches index tip in a ring, the other '
     'three fingers straight up, palm to the camera', g.GESTURE_PINCH),
    ('onehand10k/784.jpg', 'hand reaching for a backpack, thumb and index tips together as '
     'in picking up something small, other fingers curled', g.GESTURE_PINCH),
    ('freihand/00000355.jpg', 'fist clenched around a spoon handle, thumb along the handle',
     g.GESTURE_CLOSED_FIST),
    ('freihand/00032915.jpg', 'fist clenched around a pen-like stick, thumb along it',
     g.GESTURE_CLOSED_FIST),
    ('freihand/00098035.jpg', 'same fist around a stick as 00032915, another background',
     g.GESTURE_CLOSED_FIST),
    ('freihand/00065475.jpg', 'same fist around a stick, blurred (only lite finds the hand)',
     g.GESTURE_CLOSED_FIST),
]


def golden_hands(golden_static: dict, image: str) -> list[tuple[str, dict]]:
    found = []
    for variant in ('lite', 'full'):
        for entry in golden_static['models'][variant]:
            if entry['file'] == image and entry['hands']:
                assert len(entry['hands']) == 1, image
                found.append((variant, entry['hands'][0]))
    return found


@pytest.mark.parametrize(('image', 'seen', 'expected'), UNAMBIGUOUS,
                         ids=[u[0].split('/')[1] for u in UNAMBIGUOUS])
def test_photo_gesture(golden_static, image, seen, expected):
    hands = golden_hands(golden_static, image)
    assert hands, f'no golden hand for {image}'
    for variant, hand in hands:
        world = np.array(hand['world_m'])
        name, score = g.classify(world, ANATOMICAL[hand['handedness_raw']])
        assert (variant, name) == (variant, expected), seen
        assert 0.5 <= score <= 1.0


def test_photo_signals(golden_static):
    """Continuous signals agree with what the photos show."""
    for variant, hand in golden_hands(golden_static, 'onehand10k/1402.jpg'):
        f = hand_signals(np.array(hand['world_m']), ANATOMICAL[hand['handedness_raw']])
        assert f.pinch_distance < 0.03 and f.pinch_strength > 0.8, variant  # tips touch
        assert np.all(f.finger_curl[2:] < 0.35), variant  # middle, ring, pinky straight
        assert f.palm_normal[2] < -0.7, variant  # palm faces the camera (-z)
    for variant, hand in golden_hands(golden_static, 'onehand10k/9.jpg'):
        f = hand_signals(np.array(hand['world_m']), ANATOMICAL[hand['handedness_raw']])
        assert f.palm_normal[2] > 0.5, variant  # back of the hand to the camera
        assert f.pinch_strength < 0.5, variant
    for variant, hand in golden_hands(golden_static, 'freihand/00000355.jpg'):
        f = hand_signals(np.array(hand['world_m']), ANATOMICAL[hand['handedness_raw']])
        assert np.all(f.finger_curl[1:] > 0.6), variant  # fingers wrapped around the spoon


@pytest.fixture(scope='module', params=['lite', 'full'])
def static_tracker(request):
    from hand_pose_ros.core.options import BaseOptions, RunningMode, TrackerOptions
    from hand_pose_ros.core.tracker import HandTracker
    tracker = HandTracker(TrackerOptions(base=BaseOptions(model=request.param, num_threads=1),
                                         running_mode=RunningMode.IMAGE))
    yield request.param, tracker
    tracker.close()


def test_photo_gesture_through_the_tracker(static_tracker, golden_static):
    """The same photos end to end: image -> HandTracker -> HandResult.gesture."""
    import cv2
    variant, tracker = static_tracker
    checked = 0
    for image, seen, expected in UNAMBIGUOUS:
        if not any(v == variant for v, _ in golden_hands(golden_static, image)):
            continue  # MediaPipe's own model finds no hand here either
        bgr = cv2.imread(str(shared_path('hands', image)))
        hands = tracker.process(np.ascontiguousarray(bgr[:, :, ::-1])).hands
        assert len(hands) == 1, (variant, image)
        gesture = hands[0].gesture
        assert (variant, image, gesture.name) == (variant, image, expected), seen
        assert gesture.raw_name == expected  # static mode: no debouncing
        checked += 1
    assert checked >= 6
