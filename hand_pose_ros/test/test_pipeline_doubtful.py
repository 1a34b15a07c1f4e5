"""Checks on hands the extra detector views add (core/detection/doubtful.py), on real photos.

Each rule is tested where it acts: a false hand the tiles find on a face (a hand-free head
crop of a shared body photo), a candidate nested in a real hand, and a refinement pass that
jumps onto the other hand of a SYNTHETIC pair.
"""

from __future__ import annotations

import json

from conftest import shared_path
import cv2
from hand_pose_ros.core.detection.candidates import Candidate
from hand_pose_ros.core.detection.doubtful import (
    box_ios,
    jumped,
    keypoint_box,
    nested,
    roi_ios,
)
from hand_pose_ros.core.detection.reader import stop_jumps
from hand_pose_ros.core.detection.roi import roi_from_landmarks, roi_iou
from hand_pose_ros.core.options import RunningMode, TrackerOptions
from hand_pose_ros.core.results import Roi
from hand_pose_ros.core.tracker import HandTracker
import numpy as np

DEFAULTS = TrackerOptions()
NESTED = DEFAULTS.extra_nested_overlap
FACE = 'ochuman/000817.jpg'  # person 1: a woman in sunglasses; no wrist near her head


def _tracker(check: bool) -> HandTracker:
    return HandTracker(TrackerOptions(running_mode=RunningMode.IMAGE, enable_gestures=False,
                                      check_extra_hands=check))


def _head_frame() -> np.ndarray:
    """Her head (above the shoulders, two shoulder widths wide) 360 px tall, centred in a
    1280x720 grey frame: a person at a few metres with no hand in view."""
    entries = json.loads(shared_path('bodies', 'annotations.json').read_text())['images']
    person = next(e for e in entries if e['file'] == FACE)['people'][1]
    image = cv2.imread(str(shared_path('bodies', FACE)))
    (lx, ly, _), (rx, ry, _) = person['left_shoulder'], person['right_shoulder']
    sw = float(np.hypot(lx - rx, ly - ry))
    mx, my = (lx + rx) / 2, (ly + ry) / 2
    crop = image[max(0, int(round(my - 1.8 * sw))):int(round(my + 0.1 * sw)),
                 max(0, int(round(mx - sw))):int(round(mx + sw))]
    scale = 360 / crop.shape[0]
    small = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    frame = np.full((720, 1280, 3), 128, np.uint8)
    h, w = small.shape[:2]
    frame[180:180 + h, (1280 - w) // 2:(1280 - w) // 2 + w] = small
    return frame


def test_false_hand_on_a_face_is_rejected() -> None:
    """Unchecked, the tiles report a 'hand' on her cheek (presence 0.71); checked, none."""
    frame = _head_frame()
    unchecked = _tracker(False).process(frame, 'bgr').hands
    assert len(unchecked) == 1 and unchecked[0].score < 0.8
    assert _tracker(True).process(frame, 'bgr').hands == []


def test_intersection_over_smaller_sees_nesting() -> None:
    outer, inner = (0.0, 0.0, 100.0, 100.0), (30.0, 30.0, 70.0, 90.0)
    assert box_ios(outer, inner) == 1.0  # IoU would be 0.24
    assert box_ios(outer, (90.0, 0.0, 190.0, 100.0)) == 0.1
    big = (0.0, 0.0, 100.0, 100.0)
    assert nested((25.0, 35.0, 75.0, 85.0), [big], NESTED)
    assert not nested((80.0, 0.0, 180.0, 100.0), [big], NESTED)


def test_hands_side_by_side_are_not_nested() -> None:
    """Two hands 100 px wide overlapping by 15 %: their landmark ROIs (about twice the hand)
    lie mostly inside each other, their keypoint boxes do not, so nesting is judged on
    keypoint boxes."""
    left = np.array([[0.0, 0.0], [100.0, 160.0]])
    right = left + (85.0, 0.0)
    assert not nested(keypoint_box(right), [keypoint_box(left)], NESTED)
    assert roi_ios(roi_from_landmarks(_corners(right)), roi_from_landmarks(_corners(left))) > 0.6


def _corners(box: np.ndarray) -> np.ndarray:
    """21 'keypoints' spanning a box (wrist at the bottom middle, middle MCP at the top)."""
    points = np.linspace(box[0], box[1], 21)
    points[0] = ((box[0, 0] + box[1, 0]) / 2, box[1, 1])
    points[9] = ((box[0, 0] + box[1, 0]) / 2, box[0, 1])
    return np.hstack([points, np.zeros((21, 1))])


def test_nested_candidate_is_rejected() -> None:
    """A real photo's hand (onehand10k/33.jpg, a finger at the lips), plus an extra-view
    candidate at the middle of its landmark ROI, half its side: the landmark model reads a
    'hand' there (presence 0.95, so the presence floor keeps it) lying inside the real one,
    with IoU far under the duplicate threshold. The nesting check drops it; the real hand
    is kept as it is. No refinement, so the two reads cannot converge."""
    image = cv2.imread(str(shared_path('hands', 'onehand10k/33.jpg')))
    rgb = image[:, :, ::-1].copy()
    results = {}
    for check in (False, True):
        tracker = HandTracker(TrackerOptions(running_mode=RunningMode.IMAGE,
                                             enable_gestures=False, landmark_refinement=0,
                                             check_extra_hands=check))
        hand = tracker.process(image, 'bgr').hands[0]
        roi = roi_from_landmarks(hand.keypoints)
        inner = Roi(roi.cx, roi.cy, roi.width / 2, roi.height / 2, roi.rotation)
        cands = [[Candidate(hand.roi, None), Candidate(inner, None, extra=True)]]
        results[check] = [h for h, _ in tracker.reader.landmarks(tracker.options, [rgb], cands)[0]]
    assert len(results[False]) == 2, 'the nested crop should read as a hand without checks'
    nested_hand = results[False][1]
    assert (DEFAULTS.extra_min_presence <= nested_hand.score
            < DEFAULTS.extra_nested_confident)
    assert roi_iou(roi_from_landmarks(nested_hand.keypoints),
                   roi_from_landmarks(results[False][0].keypoints)) < 0.5
    assert len(results[True]) == 1
    np.testing.assert_array_equal(results[True][0].keypoints, results[False][0].keypoints)


def test_refinement_jump_is_detected() -> None:
    before = Roi(100.0, 100.0, 80.0, 80.0, 0.0)
    other = Roi(170.0, 100.0, 80.0, 80.0, 0.0)
    assert not jumped(before, Roi(104.0, 98.0, 84.0, 84.0, 0.0), [other])  # converging
    assert jumped(before, Roi(160.0, 100.0, 80.0, 80.0, 0.0), [])  # moved 0.75 of a side
    # Moved only 0.25 of a side, but onto the other hand: overlap 0.125 -> 0.375 of it.
    assert jumped(before, Roi(120.0, 100.0, 80.0, 80.0, 0.0), [other])


def test_refinement_pass_onto_another_hand_is_stopped(annotations: dict) -> None:
    """A hand's refinement ROI dragged onto the other hand of a real two-hand photo
    (Panoptic) is a jump: the tracker keeps the previous pass for it."""
    image = cv2.imread(str(shared_path('hands', 'panoptic/005880453_01_r.jpg')))
    rgb = image[:, :, ::-1].copy()
    tracker = _tracker(True)
    hands = tracker.process(image, 'bgr').hands
    assert len(hands) == 2
    flat = [(0, Candidate(h.roi, None)) for h in hands]
    # Pass result for hand 0 that is really hand 1 (what a jump looks like).
    refined = stop_jumps(flat, list(hands), [0, 1], [hands[1], hands[1]])
    assert refined[0] is None and refined[1] is hands[1]
    assert tracker.reader.read(tracker.options, [rgb], flat[:1])[0] is not None


def test_second_hand_of_an_interacting_pair_is_kept() -> None:
    """SYNTHETIC pair (eval-hands part pairs): onehand10k/1402.jpg beside its mirror image,
    overlapping by 15 % of the hand's width, full model. The mirror hand is found only by a
    tile (presence ~0.99, the other side); its landmark ROI lies inside the first hand's
    (which the old ROI-based nesting rule dropped it for), its keypoint box does not. Both
    hands are reported with their sides, as without the checks."""
    from hand_pose_ros.tools import eval_hands

    item = next(a for a in eval_hands.load_annotated(shared_path('hands').parent)
                if a.file == 'onehand10k/1402.jpg')
    scale = 160.0 / item.side
    hand_w = float(np.ptp(item.truth[:, 0])) * scale
    background = eval_hands.make_background('photo', item.image, (640, 480))
    cx = 320 - 0.85 * hand_w / 2
    first, truth_a = eval_hands._paste_at(item, scale, (cx, 240.0), background, False)
    frame, truth_b = eval_hands._paste_at(item, scale, (cx + 0.85 * hand_w, 240.0), first,
                                          True)
    tracker = _tracker(True)
    side, _ = eval_hands.score_hand(tracker.process(item.image, 'bgr').hands, item.truth,
                                    item.side)
    assert side is not None
    other = 'left' if side.handedness == 'right' else 'right'
    hands = tracker.process(frame, 'bgr').hands
    for truth, expected in ((truth_a, side.handedness), (truth_b, other)):
        hand, _ = eval_hands.score_hand(hands, truth, 160.0)
        assert hand is not None and hand.handedness == expected
