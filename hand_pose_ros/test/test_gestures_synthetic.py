"""Gesture classes and signals on constructed 3D hands (test/gesture_hands.py).

Every class is built from joint angles, then checked under rotations, hand sizes and both
sides; near-miss hands (one condition just broken) must not fire the class.
"""

from __future__ import annotations

from gesture_hands import (
    build_hand,
    CURLED,
    Finger,
    HALF,
    HandPose,
    random_rotation,
    rotation_about,
    rotation_aligning,
    STRAIGHT,
    Thumb,
    THUMB_ALONG,
    thumb_on_fingers,
    THUMB_OUT,
    thumb_pinching,
    THUMB_WIDE,
)
from hand_pose_ros.core.meaning import gestures as g
from hand_pose_ros.core.meaning.hand_signals import hand_signals
import numpy as np
import pytest

UP = np.array([0.0, -1.0, 0.0])
SCALES = (0.75, 1.0, 1.3)  # child to large adult hand
SIDES = ('right', 'left')
PINCH_INDEX = Finger(50.0, 50.0, 30.0)


def with_tucked_thumb(pose: HandPose) -> HandPose:
    return pose.with_(thumb=thumb_on_fingers(pose))


FIST = with_tucked_thumb(HandPose(THUMB_OUT, CURLED, CURLED, CURLED, CURLED))
OPEN = HandPose()
POINTING = with_tucked_thumb(HandPose(THUMB_OUT, STRAIGHT, CURLED, CURLED, CURLED))
VICTORY = with_tucked_thumb(HandPose(THUMB_OUT, Finger(spread=6.0), Finger(spread=-6.0),
                                     CURLED, CURLED))
I_LOVE_YOU = HandPose(THUMB_WIDE, STRAIGHT, CURLED, CURLED, STRAIGHT)
THUMB_FIST = HandPose(THUMB_ALONG, CURLED, CURLED, CURLED, CURLED)


def pinch(aperture: float, others: Finger = STRAIGHT, index: Finger = PINCH_INDEX) -> HandPose:
    pose = HandPose(THUMB_OUT, index, others, others, others)
    return pose.with_(thumb=thumb_pinching(pose, aperture))


def any_rotations(seed: int, n: int = 6) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.eye(3)] + [random_rotation(rng) for _ in range(n)]


def direction_rotations(pose: HandPose, side: str, joint_base: int, joint_tip: int,
                        target: np.ndarray, seed: int) -> list[np.ndarray]:
    """Rotations that put a finger along `target`, spun about it and tilted up to 20 deg."""
    local = build_hand(pose, side)
    align = rotation_aligning(local[joint_tip] - local[joint_base], target)
    rng = np.random.default_rng(seed)
    out = []
    for spin in (0.0, 90.0, 180.0, 270.0, float(rng.uniform(0, 360))):
        tilt_axis = np.cross(target, rng.normal(size=3))
        tilt = rotation_about(tilt_axis, float(rng.uniform(-20.0, 20.0)))
        out.append(tilt @ rotation_about(target, spin) @ align)
    return out


def cases(pose: HandPose, rotations):
    """(label, keypoints, side) for both sides, all scales; `rotations` is a list, or a
    function of the side giving one (a direction depends on the side's geometry)."""
    for side in SIDES:
        for scale in SCALES:
            for k, rot in enumerate(rotations(side) if callable(rotations) else rotations):
                yield f'{side}-x{scale}-r{k}', build_hand(pose, side, scale, rot), side


ROTATION_FREE = [
    (g.GESTURE_OPEN_PALM, OPEN),
    (g.GESTURE_CLOSED_FIST, FIST),
    (g.GESTURE_VICTORY, VICTORY),
    (g.GESTURE_I_LOVE_YOU, I_LOVE_YOU),
    (g.GESTURE_PINCH, pinch(0.0)),
    (g.GESTURE_PINCH, pinch(0.01, others=CURLED)),
]


@pytest.mark.parametrize(('expected', 'pose'), ROTATION_FREE,
                         ids=[f'{n}-{i}' for i, (n, _) in enumerate(ROTATION_FREE)])
def test_rotation_free_classes_under_any_rotation_and_scale(expected, pose):
    for label, world, side in cases(pose, any_rotations(seed=len(expected))):
        name, score = g.classify(world, side)
        assert (name, label) == (expected, label)
        assert 0.5 <= score <= 1.0


DIRECTED = [
    (g.GESTURE_POINTING_UP, POINTING, 5, 8, UP),
    (g.GESTURE_THUMB_UP, THUMB_FIST, 2, 4, UP),
    (g.GESTURE_THUMB_DOWN, THUMB_FIST, 2, 4, -UP),
]


@pytest.mark.parametrize(('expected', 'pose', 'base', 'tip', 'target'), DIRECTED,
                         ids=[d[0] for d in DIRECTED])
def test_direction_classes_when_the_finger_points_that_way(expected, pose, base, tip, target):
    def rotations(side: str) -> list[np.ndarray]:
        return direction_rotations(pose, side, base, tip, target, seed=7)

    for label, world, side in cases(pose, rotations):
        name, score = g.classify(world, side)
        assert (name, label) == (expected, label)
        assert 0.5 <= score <= 1.0


@pytest.mark.parametrize('aperture', [0.0, 0.005, 0.01, 0.015, 0.02])
@pytest.mark.parametrize('others', [STRAIGHT, CURLED], ids=['ok-sign', 'others-curled'])
def test_pinch_at_small_apertures(aperture, others):
    pose = pinch(aperture, others)
    assert abs(hand_signals(build_hand(pose)).pinch_distance - aperture) < 1.5e-3
    for label, world, side in cases(pose, any_rotations(seed=3, n=3)):
        assert (g.classify(world, side)[0], label) == (g.GESTURE_PINCH, label)


def test_pinch_strength_falls_with_aperture_and_ignores_hand_size():
    index = Finger(35.0, 40.0, 20.0)  # less curled, so the thumb can open up to 5 cm
    strengths = []
    for aperture in (0.02, 0.03, 0.04, 0.05):
        per_scale = {round(hand_signals(build_hand(pinch(aperture, index=index),
                                                   scale=s)).pinch_strength, 6)
                     for s in SCALES}
        assert len(per_scale) == 1, per_scale  # same relative aperture, same strength
        strengths.append(per_scale.pop())
    assert strengths == sorted(strengths, reverse=True)
    assert strengths[0] > 0.9 and strengths[-1] < 0.6
    assert hand_signals(build_hand(pinch(0.0))).pinch_strength == 1.0
    assert hand_signals(build_hand(OPEN)).pinch_strength < 0.15


NEAR_MISSES = [
    # (what must not fire, the hand, why it is close)
    (g.GESTURE_OPEN_PALM, OPEN.with_(ring=HALF), 'ring finger half bent'),
    (g.GESTURE_CLOSED_FIST, with_tucked_thumb(FIST.with_(index=HALF)), 'index half open'),
    (g.GESTURE_POINTING_UP, with_tucked_thumb(POINTING.with_(middle=HALF)), 'middle half open'),
    (g.GESTURE_VICTORY, VICTORY.with_(ring=STRAIGHT), 'three fingers up'),
    (g.GESTURE_I_LOVE_YOU, I_LOVE_YOU.with_(middle=STRAIGHT), 'middle finger up too'),
    (g.GESTURE_I_LOVE_YOU, with_tucked_thumb(I_LOVE_YOU), 'thumb tucked (rock sign)'),
    (g.GESTURE_THUMB_UP, THUMB_FIST.with_(index=HALF), 'index half open'),
    (g.GESTURE_PINCH, pinch(0.035, index=Finger(35.0, 40.0, 20.0)), 'tips 3.5 cm apart'),
    (g.GESTURE_PINCH, pinch(0.045, index=Finger(35.0, 40.0, 20.0)), 'tips 4.5 cm apart'),
    (g.GESTURE_PINCH, FIST, 'thumb on the fist, near the index tip'),
]


@pytest.mark.parametrize(('must_not', 'pose', 'why'), NEAR_MISSES,
                         ids=[f'{n[0]}-{n[2]}' for n in NEAR_MISSES])
def test_near_misses_do_not_fire(must_not, pose, why):
    for label, world, side in cases(pose, any_rotations(seed=11, n=3)):
        name, _ = g.classify(world, side)
        assert name != must_not, f'{why}: {label}'


def test_half_closed_hand_is_none():
    """Every finger half bent, thumb slightly bent and away from the index: no class."""
    pose = HandPose(Thumb(45.0, 10.0, 20.0, 25.0), HALF, HALF, HALF, HALF)
    for label, world, side in cases(pose, any_rotations(seed=5, n=3)):
        assert (g.classify(world, side)[0], label) == (g.GESTURE_NONE, label)


@pytest.mark.parametrize('angle', [65.0, 90.0, 120.0])
def test_pointing_or_thumb_sideways_is_none(angle):
    """Direction classes need the finger within ~45 deg of up (or down); 65+ deg is none."""
    for pose, base, tip in ((POINTING, 5, 8), (THUMB_FIST, 2, 4)):
        for side in SIDES:
            local = build_hand(pose, side)
            align = rotation_aligning(local[tip] - local[base], UP)
            for spin in (0.0, 120.0, 240.0):
                side_axis = rotation_about(UP, spin) @ np.array([0.0, 0.0, 1.0])
                rot = rotation_about(side_axis, angle) @ align
                world = build_hand(pose, side, 1.0, rot)
                assert g.classify(world, side)[0] == g.GESTURE_NONE, (pose, angle, spin)


def test_custom_up_vector():
    """With a camera rolled 90 deg (gravity along image +x) thumb up follows gravity."""
    gravity_up = np.array([-1.0, 0.0, 0.0])
    local = build_hand(THUMB_FIST)
    world = build_hand(THUMB_FIST, rotation=rotation_aligning(local[4] - local[2], gravity_up))
    assert g.classify(world)[0] == g.GESTURE_NONE  # horizontal in the image
    assert g.classify(world, up=gravity_up)[0] == g.GESTURE_THUMB_UP


def test_finger_curl_is_joint_angle_based_and_invariant():
    straight = hand_signals(build_hand(OPEN)).finger_curl
    assert np.all(straight < 0.1)
    fist = hand_signals(build_hand(FIST)).finger_curl
    np.testing.assert_allclose(fist[1:], 1.0)
    half = hand_signals(build_hand(OPEN.with_(index=HALF))).finger_curl
    assert half[1] == pytest.approx((35 + 45 + 30) / 220, abs=0.01)
    for label, world, side in cases(OPEN.with_(index=HALF, pinky=CURLED), any_rotations(9, 3)):
        np.testing.assert_allclose(hand_signals(world, side).finger_curl,
                                   hand_signals(build_hand(OPEN.with_(index=HALF, pinky=CURLED)))
                                   .finger_curl, atol=1e-9, err_msg=label)


def test_spreading_fingers_does_not_count_as_curl():
    spread = OPEN.with_(index=Finger(spread=15.0), pinky=Finger(spread=-15.0))
    assert np.all(hand_signals(build_hand(spread)).finger_curl < 0.1)


def test_palm_normal_points_out_of_the_palm_for_both_sides():
    # The model's palm faces the camera (-z) before rotation, for both the right hand and
    # its mirror image, the left hand.
    for rot in any_rotations(seed=2, n=4):
        for side in SIDES:
            normal = hand_signals(build_hand(OPEN, side, 1.0, rot), side).palm_normal
            np.testing.assert_allclose(normal, rot @ np.array([0.0, 0.0, -1.0]), atol=1e-9)


def test_grip_aperture_scales_with_hand_and_closes_in_a_fist():
    open_aperture = hand_signals(build_hand(OPEN)).grip_aperture
    assert 0.08 < open_aperture < 0.16  # thumb tip to pinky tip of a spread adult hand
    assert hand_signals(build_hand(OPEN, scale=1.3)).grip_aperture == pytest.approx(
        1.3 * open_aperture)
    assert hand_signals(build_hand(FIST)).grip_aperture < 0.5 * open_aperture
