"""The tracker reports debounced gesture changes as events, which the node publishes as-is."""

from __future__ import annotations

from conftest import shared_path
import cv2
from hand_pose_ros.core.options import BaseOptions, RunningMode, TrackerOptions
from hand_pose_ros.core.tracker import HandTracker


def test_gesture_change_events_follow_the_debounced_gestures() -> None:
    """Over a real tracked sequence, each event is exactly one change of a track's gesture."""
    frames = sorted(shared_path('motion', 'seq1').glob('*.jpg'))
    tracker = HandTracker(TrackerOptions(base=BaseOptions(model='lite'),
                                         running_mode=RunningMode.VIDEO, gesture_hold_frames=2))
    last: dict[int, str] = {}
    n_events = 0
    for path in frames:
        result = tracker.process(cv2.imread(str(path)), 'bgr')
        expected = []
        for hand in result.hands:
            before = last.get(hand.id, 'none')
            if hand.gesture.name != before:
                expected.append((hand.id, hand.handedness, hand.gesture.name, before))
        got = [(c.hand_id, c.handedness, c.gesture, c.previous_gesture)
               for c in result.gesture_changes]
        assert sorted(got) == sorted(expected), path.name
        n_events += len(got)
        last = {hand.id: hand.gesture.name for hand in result.hands}
    assert n_events >= 1, 'the sequence shows a gesture; at least one change expected'


def test_static_mode_reports_no_gesture_events() -> None:
    image = cv2.imread(str(shared_path('hands', 'onehand10k', '1402.jpg')))
    tracker = HandTracker(TrackerOptions(base=BaseOptions(model='full'),
                                         running_mode=RunningMode.IMAGE))
    for _ in range(3):
        result = tracker.process(image, 'bgr')
        assert result.hands and result.hands[0].gesture is not None
        assert result.gesture_changes == []
