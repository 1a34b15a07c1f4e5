"""
The ROIs to read landmarks from in a frame: palm detections merged with tracked hands.

MediaPipe's rule: new detections and tracked ROIs are merged by overlap, the tracked hand
winning and keeping its id. Detection tiles (core/detection/tiles.py) add the small hands
the whole-image view missed, after everything else, so they never take a tracked or
single-view hand's place. On a grey frame, a skin-tinted copy gets the same views again
(``grey_detector_view``, core/detection/grey.py), also only adding hands.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hand_pose_ros.core.detection.grey import is_grey, skin_tinted, SKIN_TINTS
from hand_pose_ros.core.detection.palm import detect_palms
from hand_pose_ros.core.detection.roi import (
    full_image_roi,
    roi_affine,
    roi_from_detection,
    roi_iou,
)
from hand_pose_ros.core.detection.tiles import detection_tiles, new_palms
from hand_pose_ros.core.models.catalog import PALM_INPUT_SIZE
from hand_pose_ros.core.models.runtimes.base import Runtime
from hand_pose_ros.core.options import TrackerOptions
from hand_pose_ros.core.results import PalmDetection, Roi
import numpy as np

# Palms kept per missing hand from the grey frame's tinted views: the tinted copy also lifts
# palm-like patches (faces, knuckles) above the threshold, sometimes above the real palm,
# and the landmark model's presence score (and check_extra_hands) rejects them.
GREY_PALMS_PER_HAND = 2
# Detectors of the grey frame's whole-image views, plain and tinted (None = model's).
GREY_PLAIN_VARIANT = 'full'
GREY_TINT_VARIANT = None


@dataclass
class Candidate:
    """A ROI to run the landmark model on this frame; id None for a new detection."""

    roi: Roi
    id: int | None  # noqa: A003 (the track id, named like HandResult.id)
    # Found by an extra detector view (tiles), not MediaPipe's single view: such a hand must
    # pass the checks of core/detection/doubtful.py (check_extra_hands).
    extra: bool = False


def associate(candidates: list[Candidate], similarity: float) -> list[Candidate]:
    """
    Run MediaPipe's AssociationNormRectCalculator over candidates in priority order.

    Each element replaces every earlier one it overlaps (IoU > similarity), so tracked hands
    (listed after detections) win over new detections. The winner takes the oldest id of
    the group (MediaPipe takes the last; it exposes no ids, so only geometry must match).
    """
    result: list[Candidate] = []
    for cand in candidates:
        new_id = cand.id
        kept = []
        for prev in result:
            if roi_iou(cand.roi, prev.roi) > similarity:
                if prev.id is not None and (new_id is None or prev.id < new_id):
                    new_id = prev.id
            else:
                kept.append(prev)
        kept.append(Candidate(cand.roi, new_id))
        result = kept
    return result


def frame_candidates(
    runtime: Runtime, options: TrackerOptions, rgbs: list[np.ndarray],
    detect: list[bool], tracked: Sequence[Sequence[Candidate]],
) -> list[list[Candidate]]:
    """
    Per frame, the ROIs to read: new detections (where `detect`) merged with `tracked`.

    All frames' palm detector inputs go to the runtime in one call, all tiles in another.
    """
    ran = [k for k, flag in enumerate(detect) if flag]
    detections: dict[int, list[PalmDetection]] = {}
    if ran:
        transforms = np.stack([
            roi_affine(full_image_roi(rgbs[k].shape[1], rgbs[k].shape[0]),
                       PALM_INPUT_SIZE)[0]
            for k in ran])
        out = runtime.palm_detection([rgbs[k] for k in ran], transforms)
        for row, k in enumerate(ran):
            detections[k] = detect_palms(
                out.boxes[row], out.scores[row], transforms[row],
                options.min_detection_confidence, options.max_num_hands)
    per_frame = []
    for k in range(len(rgbs)):
        cands = [Candidate(roi_from_detection(d), None) for d in detections.get(k, [])]
        cands += list(tracked[k])
        # Also in static mode: MediaPipe merges overlapping detection ROIs (the later,
        # lower-scored one wins), and parity with it needs the same choice.
        per_frame.append(associate(cands, options.roi_similarity))
    # The tiles run where the single view (and tracks) left hands missing, as on colour
    # frames: the grey views' false palms must not stop them.
    tiled = [k for k in ran if len(per_frame[k]) < options.max_num_hands]
    grey = ([k for k in tiled if is_grey(rgbs[k])] if options.grey_detector_view else [])
    tinted = _add_grey_candidates(runtime, options, rgbs, grey, detections, per_frame)
    if options.detection_tiles:
        views = {k: detection_tiles(rgbs[k].shape[1], rgbs[k].shape[0],
                                    options.detection_tiles) for k in tiled}
        _add_view_candidates(runtime, options, rgbs, list(views.items()),
                             options.tile_detector, detections, per_frame)
        if grey:
            _add_view_candidates(runtime, options, tinted,
                                 _short(options, per_frame, {k: views[k] for k in grey}),
                                 options.tile_detector, detections, per_frame,
                                 GREY_PALMS_PER_HAND)
    return per_frame


def _add_grey_candidates(runtime: Runtime, options: TrackerOptions, rgbs: list[np.ndarray],
                         grey: list[int], detections: dict[int, list[PalmDetection]],
                         per_frame: list[list[Candidate]]) -> list[np.ndarray]:
    """
    Look again at the grey frames `grey` (short of hands) with whole-image views.

    The full detector on the grey image (it scores grey palms better than the lite one: a
    lite model's own view misses FreiHAND crops the full one finds) and the model's on
    each skin-tinted copy (core/detection/grey.py). They run before the tiles, so that a
    tile's badly rotated ROI of the same palm (the detector's keypoints are poor on grey)
    does not take the better one's place by overlap. Returns the frames with the grey
    ones replaced by their first tinted copy, for that copy's tile views.
    """
    if not grey:
        return rgbs
    tinted = [list(rgbs) for _ in SKIN_TINTS]
    for k in grey:
        for images, tint in zip(tinted, SKIN_TINTS):
            images[k] = skin_tinted(rgbs[k], tint)
    whole = {k: [full_image_roi(rgbs[k].shape[1], rgbs[k].shape[0])] for k in grey}
    views = [(images, GREY_TINT_VARIANT) for images in tinted]
    if options.base.model != GREY_PLAIN_VARIANT:  # else the single view already was this
        views.insert(0, (rgbs, GREY_PLAIN_VARIANT))
    for images, variant in views:
        _add_view_candidates(runtime, options, images, _short(options, per_frame, whole),
                             variant, detections, per_frame, GREY_PALMS_PER_HAND)
    return tinted[0]


def _short(options: TrackerOptions, per_frame: list[list[Candidate]],
           views: dict[int, list[Roi]]) -> list[tuple[int, list[Roi]]]:
    """Return the (frame, views) jobs of the frames still short of max_num_hands candidates."""
    return [(k, rois) for k, rois in views.items()
            if len(per_frame[k]) < options.max_num_hands]


def _add_view_candidates(runtime: Runtime, options: TrackerOptions, rgbs: list[np.ndarray],
                         jobs: list[tuple[int, list[Roi]]], variant: str | None,
                         detections: dict[int, list[PalmDetection]],
                         per_frame: list[list[Candidate]], palms_per_hand: int = 1) -> None:
    """
    Look in extra detector views (frame index, its views) for the hands already missed.

    All views of all frames go in one detector call. New candidates go after the others,
    so tracked hands and the single view's detections win every overlap and keep their
    ids. Up to palms_per_hand x max_num_hands of them are kept per call (an extra view's
    false palm is then rejected by the landmark model's presence score without costing a
    real hand its place); the cap on hands is applied after the landmark model.
    """
    jobs = [(k, views) for k, views in jobs if views]
    if not jobs:
        return
    index = np.array([j for j, (_, views) in enumerate(jobs) for _ in views])
    transforms = np.stack([roi_affine(view, PALM_INPUT_SIZE)[0]
                           for _, views in jobs for view in views])
    out = runtime.palm_detection([rgbs[k] for k, _ in jobs], transforms, index,
                                 variant=variant)
    row = 0
    for k, views in jobs:
        per_view = [detect_palms(out.boxes[row + i], out.scores[row + i],
                                 transforms[row + i], options.min_detection_confidence,
                                 palms_per_hand * options.max_num_hands)
                    for i in range(len(views))]
        row += len(views)
        height, width = rgbs[k].shape[:2]
        added: list[Candidate] = []
        for palm in new_palms(detections.get(k, []), per_view, views, width, height):
            roi = roi_from_detection(palm)
            if all(roi_iou(roi, c.roi) <= options.roi_similarity
                   for c in per_frame[k] + added):
                added.append(Candidate(roi, None, extra=True))
        per_frame[k] += added[:palms_per_hand * options.max_num_hands]
