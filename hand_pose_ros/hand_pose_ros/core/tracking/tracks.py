"""
Which hands a frame reports, under which ids: association's aftermath and the loss policy.

After the landmark model, a frame's hands get their track ids (new hands the next free
one), overlapping duplicates are removed (the oldest track wins), at most max_num_hands
remain (tracked ones first), and the hands that vanished are held, stale, for a moment.
Static mode numbers the hands of each image from 0 instead.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from hand_pose_ros.core.detection.roi import roi_from_landmarks, roi_iou
from hand_pose_ros.core.results import HandResult, Roi
import numpy as np

# A hand found in a frame and the ROI to read it from on the next frame.
Found = tuple[HandResult, Roi]


@dataclass
class Track:
    """A tracked hand: its stable id and the ROI to read it from in the next frame."""

    id: int  # noqa: A003 (the track id, named like HandResult.id)
    roi: Roi


def number_static(found: list[Found], similarity: float, max_hands: int,
                  deduplicate: bool) -> list[Found]:
    """
    Give a static image's hands the ids 0..n-1, dropping duplicates when `deduplicate`.

    Tile and refined hands can duplicate an earlier hand (judged by the landmarks' ROIs, as
    in tracking) or exceed max_num_hands: the later one is dropped. Without tiles or
    refinement, MediaPipe's own output is kept as it is.
    """
    if deduplicate:
        found = [(hand, roi_from_landmarks(hand.keypoints)) for hand, _ in found]
        for index, (hand, _) in enumerate(found):
            hand.id = index
        found = drop_duplicates(found, similarity)[:max_hands]
    for index, (hand, _) in enumerate(found):
        hand.id = index
    return found


def assign_ids(found: list[Found], next_id: int) -> int:
    """Give each new hand (id < 0) the next free id; returns the next free id after them."""
    for hand, _ in found:
        if hand.id < 0:
            hand.id = next_id
            next_id += 1
    return next_id


def drop_duplicates(found: list[Found], similarity: float) -> list[Found]:
    """Keep one hand per overlapping next-ROI group: the oldest track (lowest id) wins."""
    kept: list[Found] = []
    for hand, roi in sorted(found, key=lambda item: item[0].id):
        if all(roi_iou(roi, other) <= similarity for _, other in kept):
            kept.append((hand, roi))
    order = {id(hand): k for k, (hand, _) in enumerate(found)}
    return sorted(kept, key=lambda item: order[id(item[0])])


def oldest_first_limit(found: list[Found], max_hands: int) -> list[Found]:
    """
    At most max_hands hands, tracked ones (lower ids) before new ones, order kept.

    MediaPipe's graph can briefly report more hands than max_num_hands when new detections
    do not overlap the tracked hands; robot code relies on the bound.
    """
    if len(found) <= max_hands:
        return found
    keep = {id(hand) for hand, _ in sorted(found, key=lambda item: item[0].id)[:max_hands]}
    return [item for item in found if id(item[0]) in keep]


def hold_lost(last_seen: dict[int, tuple[HandResult, float]], hands: list[HandResult],
              t: float, hold_s: float, similarity: float) -> list[HandResult]:
    """
    Lost hands to repeat, stale, for up to hold_s after they were last seen.

    A robot servoing on a hand must not see it vanish for a one-frame dropout, nor jump to
    zeros: it gets the last valid pose, flagged, with its age, and can decide. A held hand
    is dropped early when a live hand takes its place (ROI overlap). last_seen (track id ->
    latest hand, when) is updated in place.
    """
    live = {hand.id for hand in hands}
    for hand in hands:
        last_seen[hand.id] = (hand, t)
    held = []
    for track_id, (hand, seen) in list(last_seen.items()):
        if track_id in live:
            continue
        age = t - seen
        replaced = any(roi_iou(hand.roi, other.roi) > similarity for other in hands)
        if age > hold_s or replaced:
            del last_seen[track_id]
            continue
        held.append(dataclasses.replace(hand, stale=True, age=age))
    return held


def keypoints_in_image(keypoints: np.ndarray, width: int, height: int) -> np.ndarray:
    """(21,) bool: each keypoint inside the image (outside ones are the model's guesses)."""
    x, y = keypoints[:, 0], keypoints[:, 1]
    return (x >= 0.0) & (x < width) & (y >= 0.0) & (y < height)
