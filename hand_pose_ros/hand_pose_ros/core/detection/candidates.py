"""
The ROIs to read landmarks from in a frame: palm detections merged with tracked hands.

MediaPipe's rule: new detections and tracked ROIs are merged by overlap, the tracked hand
winning and keeping its id. Detection tiles (core/detection/tiles.py) add the small hands
the whole-image view missed, after everything else, so they never take a tracked or
single-view hand's place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
    if options.detection_tiles:
        _add_tile_candidates(runtime, options, rgbs, ran, detections, per_frame)
    return per_frame


def _add_tile_candidates(runtime: Runtime, options: TrackerOptions, rgbs: list[np.ndarray],
                         ran: list[int], detections: dict[int, list[PalmDetection]],
                         per_frame: list[list[Candidate]]) -> None:
    """
    Look in detection tiles for the hands the whole-image view missed.

    Only frames with fewer than max_num_hands candidates are tiled, all their tiles in
    one detector call. New candidates go after the others, so tracked hands and the
    single view's detections win every overlap and keep their ids. Up to max_num_hands
    of them are kept (a tile's false palm is then rejected by the landmark model's
    presence score without costing a real hand its place); the cap on hands is applied
    after the landmark model.
    """
    jobs = []
    for k in ran:
        if len(per_frame[k]) < options.max_num_hands:
            tiles = detection_tiles(rgbs[k].shape[1], rgbs[k].shape[0],
                                    options.detection_tiles)
            if tiles:
                jobs.append((k, tiles))
    if not jobs:
        return
    index = np.array([j for j, (_, tiles) in enumerate(jobs) for _ in tiles])
    transforms = np.stack([roi_affine(tile, PALM_INPUT_SIZE)[0]
                           for _, tiles in jobs for tile in tiles])
    out = runtime.palm_detection([rgbs[k] for k, _ in jobs], transforms, index,
                                 variant=options.tile_detector)
    row = 0
    for k, tiles in jobs:
        per_tile = [detect_palms(out.boxes[row + i], out.scores[row + i],
                                 transforms[row + i], options.min_detection_confidence,
                                 options.max_num_hands)
                    for i in range(len(tiles))]
        row += len(tiles)
        height, width = rgbs[k].shape[:2]
        added: list[Candidate] = []
        for palm in new_palms(detections.get(k, []), per_tile, tiles, width, height):
            roi = roi_from_detection(palm)
            if all(roi_iou(roi, c.roi) <= options.roi_similarity
                   for c in per_frame[k] + added):
                added.append(Candidate(roi, None, extra=True))
        per_frame[k] += added[:options.max_num_hands]
