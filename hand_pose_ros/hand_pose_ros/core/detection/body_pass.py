"""
The body pass (``body_rois``): hands that body wrists lead to, and sides from the body.

While fewer than max_num_hands hands are found, the pose pipeline (core/detection/body.py)
looks for people and MediaPipe Holistic's hand ROI at each visible wrist; those no palm or
track covers go through the landmark model, and each hand near a body wrist takes the body's
anatomical side (handedness_source). The pass only adds hands, never replaces one.
"""

from __future__ import annotations

from collections.abc import Sequence

from hand_pose_ros.core.anatomy import OTHER_HAND
from hand_pose_ros.core.detection.body import (
    BodyNetworks,
    BodyPose,
    HAND_POSE_LANDMARKS,
    WRIST_MIN_VISIBILITY,
)
from hand_pose_ros.core.detection.candidates import Candidate
from hand_pose_ros.core.detection.reader import HandReader
from hand_pose_ros.core.detection.roi import roi_from_landmarks, roi_iou
from hand_pose_ros.core.options import TrackerOptions
from hand_pose_ros.core.results import HandResult, Roi
import numpy as np


def body_pass(net: BodyNetworks, reader: HandReader, options: TrackerOptions,
              rgbs: list[np.ndarray], run: list[int], prior: Sequence[Sequence[Roi]],
              candidates: list[list[Candidate]], hands: list[list[tuple[HandResult, Roi]]],
              ) -> list[list[BodyPose] | None]:
    """
    Add the hands that body wrists lead to and label every hand near a body wrist.

    run: the frames to look at; prior[k]: the people frame k tracked from its previous
    pass. Returns per frame the people found (None where the pass did not run). Body hands
    go after the palm ones, only where no candidate ROI or found hand covers the wrist, and
    only up to max_num_hands hands in all.
    """
    out: list[list[BodyPose] | None] = [None] * len(rgbs)
    if not run:
        return out
    items = []
    for k in run:
        rois = list(prior[k])
        if len(rois) < options.max_bodies:
            rois += [r for r in net.detect(rgbs[k], options.max_bodies)
                     if all(roi_iou(r, t) <= options.roi_similarity for t in rois)]
        items += [(k, r) for r in rois[:options.max_bodies]]
    poses: dict[int, list[BodyPose]] = {k: [] for k in run}
    for (k, _), pose in zip(items, net.landmarks(rgbs, items)):
        # Two tracked ROIs that converged on one person keep the first.
        if pose is not None and all(roi_iou(pose.next_roi, p.next_roi) <= options.roi_similarity
                                    for p in poses[k]):
            poses[k].append(pose)
    body_hands = net.hands(rgbs, [(k, p) for k in run for p in poses[k]])
    extra: list[list[Candidate]] = [[] for _ in rgbs]
    for k, bh in body_hands:
        taken = [c.roi for c in candidates[k] + extra[k]]
        near = [hand for hand, _ in hands[k]
                if _wrist_distance(hand, bh.wrist) < 0.5 * bh.roi.width]
        if not near and all(roi_iou(bh.roi, r) <= options.roi_similarity for r in taken):
            extra[k].append(Candidate(bh.roi, None))
    for k, found in enumerate(reader.landmarks(options, rgbs, extra)):
        for hand, next_roi in found:
            if len(hands[k]) >= options.max_num_hands:
                break
            roi = roi_from_landmarks(hand.keypoints)
            if all(roi_iou(roi, roi_from_landmarks(h.keypoints)) <= options.roi_similarity
                   for h, _ in hands[k]):
                hand.found_by = 'body'
                hands[k].append((hand, next_roi))
    for k in run:
        label_sides([h for h, _ in hands[k]], poses[k], options.mirrored)
        out[k] = poses[k]
    return out


def _wrist_distance(hand: HandResult, point: np.ndarray) -> float:
    return float(np.hypot(*(hand.keypoints[0, :2] - point)))


def label_sides(hands: list[HandResult], poses: list[BodyPose], mirrored: bool) -> None:
    """
    Give each hand whose wrist lies near a visible body wrist that body's side.

    Near: within half the hand's size (its landmark extent). The pose model names the
    person's anatomical sides as seen by an unmirrored camera, so a mirrored image swaps
    them. A corrected hand's handedness_score is the pose wrist visibility (>= 0.5).
    """
    wrists = [(side if not mirrored else OTHER_HAND[side.title()].lower(),
               pose.keypoints[w, :2], float(pose.visibility[w]))
              for pose in poses for side, (w, _, _) in HAND_POSE_LANDMARKS.items()
              if pose.visibility[w] > WRIST_MIN_VISIBILITY]
    for hand in hands:
        size = float(np.ptp(hand.keypoints[:, :2], axis=0).max())
        best = min(wrists, key=lambda w: _wrist_distance(hand, w[1]), default=None)
        if best is None or _wrist_distance(hand, best[1]) > 0.5 * size:
            continue
        side, _, visibility = best
        if side == hand.handedness:
            hand.handedness_source = 'body'
        else:
            hand.handedness, hand.handedness_source = side, 'body_corrected'
            hand.handedness_score = max(0.5, visibility)
