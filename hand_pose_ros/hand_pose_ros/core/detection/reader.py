"""
Reading hands from candidate ROIs: the landmark model, refinement passes, doubtful hands.

Every ROI of every frame goes through the landmark model in one runtime call; each
refinement pass (``landmark_refinement``) reads each hand again from the ROI of its own
landmarks, the ROI tracking would use on the next frame and the kind the landmark model is
trained on, so a photo gets the accuracy a tracked hand has. With ``check_extra_hands``, a
refinement pass that jumps onto another hand is undone and extra-view hands that look false
are dropped (core/detection/doubtful.py says why).
"""

from __future__ import annotations

import logging

from hand_pose_ros.core.anatomy import OTHER_HAND
from hand_pose_ros.core.detection.candidates import Candidate
from hand_pose_ros.core.detection.doubtful import jumped, keypoint_box, nested
from hand_pose_ros.core.detection.landmarks import project_landmarks, rotate_world
from hand_pose_ros.core.detection.roi import roi_affine, roi_from_landmarks
from hand_pose_ros.core.models.catalog import LANDMARK_INPUT_SIZE
from hand_pose_ros.core.models.runtimes.base import Runtime
from hand_pose_ros.core.options import TrackerOptions
from hand_pose_ros.core.results import HandResult, Roi
import numpy as np

_LOG = logging.getLogger(__name__)

# (frame index in the batch, candidate) pairs: the unit of one landmark-model call.
Item = tuple[int, Candidate]


class HandReader:
    """The landmark stage over one runtime; options are passed per call (they change live)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def landmarks(self, options: TrackerOptions, rgbs: list[np.ndarray],
                  candidates: list[list[Candidate]]) -> list[list[tuple[HandResult, Roi]]]:
        """Per frame, each hand found and the ROI to read it from on the next frame."""
        flat = [(k, c) for k, cands in enumerate(candidates) for c in cands]
        found = self.read(options, rgbs, flat)
        active = [i for i, hand in enumerate(found) if hand is not None]
        for _ in range(options.landmark_refinement):
            if not active:
                break
            refined = self.read(options, rgbs, [
                (flat[i][0], Candidate(roi_from_landmarks(found[i].keypoints), flat[i][1].id))
                for i in active])
            # A pass that loses the hand (e.g. a crop pushed past the image edge) or jumps
            # onto another hand keeps the previous pass and stops refining that hand.
            if options.check_extra_hands:
                refined = stop_jumps(flat, found, active, refined)
            for i, hand in zip(active, refined):
                if hand is not None:
                    found[i] = hand
            active = [i for i, hand in zip(active, refined) if hand is not None]
        if options.check_extra_hands:
            reject_doubtful(options, flat, found)
        hands: list[list[tuple[HandResult, Roi]]] = [[] for _ in rgbs]
        for (frame_k, _), hand in zip(flat, found):
            if hand is not None:
                next_roi = roi_from_landmarks(hand.keypoints) if options.tracking else hand.roi
                hands[frame_k].append((hand, next_roi))
        return hands

    def read(self, options: TrackerOptions, rgbs: list[np.ndarray], items: list[Item]
             ) -> list[HandResult | None]:
        """One landmark-model call over (frame index, ROI) items; None where no hand is."""
        if not items:
            return []
        image_index = np.array([k for k, _ in items], dtype=np.int64)
        samplings = [roi_affine(c.roi, LANDMARK_INPUT_SIZE) for _, c in items]
        affines = np.stack([affine for affine, _ in samplings])
        out = self.runtime.hand_landmarks(rgbs, image_index, affines)
        hands: list[HandResult | None] = []
        for k, (_, cand) in enumerate(items):
            # A non-finite output (a broken runtime or model) drops that crop, not the batch.
            if not (out.presence[k] >= options.min_tracking_confidence
                    and np.isfinite(out.landmarks[k]).all()
                    and np.isfinite(out.world[k]).all()):
                hands.append(None)
                continue
            hands.append(_hand(cand, out.landmarks[k], out.world[k], float(out.presence[k]),
                               float(out.handedness[k]), samplings[k][1], options.mirrored))
        return hands


def _hand(cand: Candidate, raw: np.ndarray, world: np.ndarray, presence: float,
          p_left: float, padding: np.ndarray, mirrored: bool) -> HandResult:
    # MediaPipe 0.10.21 reports the model's handedness output p as the score of 'Left'
    # (p > 0.5) else 'Right' with 1 - p; its golden outputs confirm this reading.
    raw_label = 'Left' if p_left > 0.5 else 'Right'
    label_score = p_left if p_left > 0.5 else 1.0 - p_left
    anatomical = raw_label if mirrored else OTHER_HAND[raw_label]
    return HandResult(
        id=-1 if cand.id is None else cand.id,
        handedness=anatomical.lower(), handedness_score=label_score,
        raw_handedness=raw_label, score=presence,
        keypoints=project_landmarks(raw, cand.roi, padding),
        world=rotate_world(world, cand.roi.rotation), roi=cand.roi)


def stop_jumps(flat: list[Item], found: list[HandResult | None], active: list[int],
               refined: list[HandResult | None]) -> list[HandResult | None]:
    """
    None for each refined read whose ROI jumped onto another hand of its frame.

    Where hands overlap, a read from a ROI that covers part of the hand behind can lock
    onto that hand; its landmarks then describe the wrong hand (seen flipping a gesture).
    Such a pass is treated like one that lost the hand.
    """
    rois = {i: roi_from_landmarks(hand.keypoints)
            for i, hand in enumerate(found) if hand is not None}
    out = list(refined)
    for n, (i, hand) in enumerate(zip(active, refined)):
        if hand is None:
            continue
        others = [roi for j, roi in rois.items() if j != i and flat[j][0] == flat[i][0]]
        if jumped(rois[i], roi_from_landmarks(hand.keypoints), others):
            out[n] = None
    return out


def reject_doubtful(options: TrackerOptions, flat: list[Item],
                    found: list[HandResult | None]) -> None:
    """
    Drop (set None) the extra-view hands that are likely false.

    Those with a weak presence score (false hands on faces and bodies), or nested in
    another hand unless the landmark model is very sure (core/detection/doubtful.py says
    why). Single-view hands are never dropped here, so MediaPipe's hands stay as they are;
    extra hands are judged most confident first, each against the hands kept so far.
    """
    order = sorted(range(len(found)), key=lambda i: (
        flat[i][1].extra, -(found[i].score if found[i] is not None else 0.0)))
    kept: dict[int, list[tuple[float, float, float, float]]] = {}
    for i in order:
        hand = found[i]
        if hand is None:
            continue
        frame_k, cand = flat[i]
        box = keypoint_box(hand.keypoints)
        if cand.extra and (
                hand.score < options.extra_min_presence
                or (hand.score < options.extra_nested_confident
                    and nested(box, kept.get(frame_k, []), options.extra_nested_overlap))):
            _LOG.debug('dropped a doubtful extra hand (presence %.3f)', hand.score)
            found[i] = None
            continue
        kept.setdefault(frame_k, []).append(box)
