"""GestureRecognizer: per-track debouncing, change events, static mode, user gestures."""

from __future__ import annotations

from gesture_hands import build_hand, CURLED, HandPose, STRAIGHT, thumb_on_fingers, THUMB_WIDE
from hand_pose_ros.core.meaning import gestures as g
from hand_pose_ros.core.results import HandResult, Roi
import numpy as np
import pytest

OPEN = HandPose()
FIST = HandPose(index=CURLED, middle=CURLED, ring=CURLED, pinky=CURLED)
FIST = FIST.with_(thumb=thumb_on_fingers(FIST))
SHAKA = HandPose(THUMB_WIDE, CURLED, CURLED, CURLED, STRAIGHT)  # thumb and pinky out


def hand(track_id: int, pose: HandPose, side: str = 'right') -> HandResult:
    return HandResult(
        id=track_id, handedness=side, handedness_score=0.9,
        raw_handedness='Left' if side == 'right' else 'Right', score=0.95,
        keypoints=np.zeros((21, 3)), world=build_hand(pose, side),
        roi=Roi(100.0, 100.0, 80.0, 80.0, 0.0))


def run(recognizer: g.GestureRecognizer, poses: list[HandPose], track_id: int = 1):
    """Feed one hand through a pose sequence; (reported, raw) per frame and all changes."""
    reported, changes = [], []
    for pose in poses:
        h = hand(track_id, pose)
        changes += recognizer.update([h], tracking=True)
        reported.append((h.gesture.name, h.gesture.raw_name))
    return reported, changes


def test_one_frame_flicker_does_not_change_the_gesture():
    rec = g.GestureRecognizer(hold_frames=3)
    reported, changes = run(rec, [FIST] * 5 + [OPEN] + [FIST] * 4)
    names = [r[0] for r in reported]
    # A new track starts at none; the fist is reported on its 3rd frame, then stays.
    assert names == ['none', 'none'] + ['closed_fist'] * 8
    assert reported[5] == ('closed_fist', 'open_palm')  # the raw class shows the flicker
    assert [(c.gesture, c.previous_gesture) for c in changes] == [('closed_fist', 'none')]


def test_held_change_is_reported_after_hold_frames():
    for hold in (1, 2, 4):
        rec = g.GestureRecognizer(hold_frames=hold)
        reported, changes = run(rec, [FIST] * (hold + 2) + [OPEN] * (hold + 2))
        names = [r[0] for r in reported]
        first_open = hold + 2 + hold - 1  # frame index where the open palm is confirmed
        assert names[first_open - 1] == 'closed_fist' and names[first_open] == 'open_palm'
        assert all(n == 'open_palm' for n in names[first_open:])
        assert [(c.gesture, c.previous_gesture) for c in changes] == [
            ('closed_fist', 'none'), ('open_palm', 'closed_fist')]
        assert changes[-1].hand_id == 1 and changes[-1].handedness == 'right'
        assert 0.5 <= changes[-1].score <= 1.0


def test_alternating_classes_never_confirm():
    rec = g.GestureRecognizer(hold_frames=2)
    reported, changes = run(rec, [FIST, FIST, FIST] + [OPEN, FIST] * 4)
    assert [r[0] for r in reported[2:]] == ['closed_fist'] * 9
    assert len(changes) == 1


def test_tracks_are_independent_and_forgotten_when_they_end():
    rec = g.GestureRecognizer(hold_frames=2)
    for _ in range(3):
        rec.update([hand(1, FIST), hand(2, OPEN, 'left')], tracking=True)
    a, b = hand(1, FIST), hand(2, OPEN, 'left')
    rec.update([a, b], tracking=True)
    assert (a.gesture.name, b.gesture.name) == ('closed_fist', 'open_palm')
    rec.update([hand(2, OPEN, 'left')], tracking=True)  # track 1 ended
    back = hand(1, FIST)  # same id again: treated as a new track, starts at none
    rec.update([back], tracking=True)
    assert back.gesture.name == 'none' and back.gesture.raw_name == 'closed_fist'


def test_static_mode_reports_the_raw_class_without_events():
    rec = g.GestureRecognizer(hold_frames=5)
    h = hand(0, FIST)
    assert rec.update([h], tracking=False) == []
    assert (h.gesture.name, h.gesture.raw_name) == ('closed_fist', 'closed_fist')
    assert h.gesture.score == h.gesture.raw_score >= 0.5


def test_gesture_result_carries_the_signals():
    rec = g.GestureRecognizer()
    h = hand(0, OPEN)
    rec.update([h], tracking=False)
    r = h.gesture
    assert r.finger_curl.shape == (5,) and np.all((r.finger_curl >= 0) & (r.finger_curl <= 1))
    assert np.linalg.norm(r.palm_normal) == pytest.approx(1.0)
    assert 0.0 <= r.pinch_strength <= 1.0
    assert r.pinch_distance == pytest.approx(np.linalg.norm(h.world[4] - h.world[8]))
    assert r.grip_aperture >= r.pinch_distance


def shaka(f) -> float:
    return min(g.thumb_extended(f), g.extended(f, 4), *(g.curled(f, i) for i in (1, 2, 3)))


def test_registered_gesture_is_recognized_and_can_be_removed():
    world = build_hand(SHAKA)
    assert g.classify(world)[0] == g.GESTURE_NONE
    g.register_gesture('call_me', shaka)
    try:
        name, score = g.classify(world)
        assert name == 'call_me' and score > 0.9
        with pytest.raises(ValueError):
            g.register_gesture('call_me', shaka)
        # Its track reports it like a built-in, with a change event.
        _, changes = run(g.GestureRecognizer(hold_frames=2), [SHAKA] * 3)
        assert [c.gesture for c in changes] == ['call_me']
    finally:
        g.unregister_gesture('call_me')
    assert g.classify(world)[0] == g.GESTURE_NONE


def test_user_priority_overrides_builtins():
    world = build_hand(FIST)
    g.register_gesture('any_fist', lambda f: min(g.curled(f, i) for i in range(1, 5)))
    try:
        assert g.classify(world)[0] == 'any_fist'
    finally:
        g.unregister_gesture('any_fist')
    g.register_gesture('any_fist', lambda f: 0.6, priority=g.BUILTIN_PRIORITY)
    try:  # same priority: the higher score (the built-in fist, 1.0) wins
        assert g.classify(world)[0] == g.GESTURE_CLOSED_FIST
    finally:
        g.unregister_gesture('any_fist')


def test_recognizer_with_its_own_registry():
    registry = g.GestureRegistry()
    registry.register('call_me', shaka)
    rec = g.GestureRecognizer(hold_frames=1, registry=registry)
    h = hand(0, FIST)
    rec.update([h], tracking=False)
    assert h.gesture.name == g.GESTURE_NONE  # no built-ins in this registry
    h = hand(0, SHAKA)
    rec.update([h], tracking=False)
    assert h.gesture.name == 'call_me'
