"""
Body-guided hand ROIs: MediaPipe Holistic's way of finding the hands a palm detector misses.

The palm detector needs the palm to be visible and large enough in its 192-pixel view; a
body is much larger, so a person several metres away, a hand seen edge-on or a fist still
has a body that the pose detector finds. Holistic turns the body's wrist, index and pinky
landmarks into a hand ROI, refines it with the small hand_recrop network and reads the hand
with the ordinary hand landmark model. This module does the same, in image pixels, with the
geometry of MediaPipe's graphs (0.10.21):

- pose_detection_cpu.pbtxt: 224x224 letterbox (zero border, input in [-1, 1]), 2254 SSD
  anchors (strides 8, 16, 32, 32, 32), weighted NMS at IoU 0.3. MediaPipe keeps one
  person; here every detection above POSE_MIN_SCORE after NMS is kept, up to max_bodies.
- pose_detection_to_roi / pose_landmarks_to_roi: the ROI is centred on the hip centre
  (keypoint 0 / auxiliary landmark 33), rotated so hip -> keypoint 1 points up, with side
  2 |kp1 - kp0| x 1.25. The landmarks' ROI is the next frame's ROI (tracking, like hands).
- pose_landmark_full: 256x256 crop (edge replicated), 39 landmarks x (x, y, z, visibility,
  presence) with sigmoid visibility; pose presence below POSE_MIN_PRESENCE drops the body.
  The heatmap refinement of the landmark positions is not reproduced (a hand ROI is 2.7x
  the wrist-to-knuckle distance; a pixel or two of landmark noise does not matter there).
- hand_visibility_from_hand_landmarks_from_pose: a hand is looked for only when its pose
  wrist visibility exceeds 0.1.
- hand_detections_from_pose_to_rects + hand_landmarks_from_pose_to_recrop_roi: centre at
  the estimated middle knuckle (2 index + pinky) / 3, rotation wrist -> that point, side
  2 |middle - wrist|, then shift -0.1 and 2.7x, square.
- hand_recrop_by_roi: hand_recrop reads that ROI at 256x256 and returns two points (the
  hand centre and a point encoding scale and rotation); the ROI is centred on the first,
  side 2 |p1 - p0|, rotated so p0 -> p1 points down (target angle -90 degrees), shifted
  -0.1 along its own y axis, square.

Pose landmark sides are the person's anatomical ones (landmark 15 is the left wrist), which
is what lets the body confirm or correct the hand landmark model's handedness guess.

The networks run on whatever runtime the tracker has, through its generic run_graph (LiteRT
on the CPU; torch modules built from the same .tflite files with the torch runtime, whose
raw outputs match LiteRT's, see test_body_models.py). Crops are warped on the CPU with the
pipeline's warp_u8 in both cases: the body pass runs rarely, so a device warp would buy
little.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import math
from pathlib import Path

from hand_pose_ros.core.detection.anchors import ssd_anchors
from hand_pose_ros.core.detection.palm import decode_boxes, sigmoid, weighted_nms
from hand_pose_ros.core.detection.roi import (
    apply_affine,
    full_image_roi,
    invert_affine,
    normalize_radians,
    roi_affine,
    rotation_to_vertical,
    transform_rect,
)
from hand_pose_ros.core.models.catalog import (
    body_model_path,
    POSE_DETECTION_SIZE,
    POSE_LANDMARK_SIZE,
    RECROP_SIZE,
)
from hand_pose_ros.core.models.runtimes.base import Runtime, warp_to_tensor, warp_u8
from hand_pose_ros.core.results import Roi
import numpy as np

POSE_STRIDES = (8, 16, 32, 32, 32)
NUM_POSE_LANDMARKS = 33  # 39 outputs: 33 body landmarks + 6 auxiliary (33, 34: ROI points)
POSE_MIN_SCORE = 0.5
POSE_MIN_PRESENCE = 0.5
POSE_ROI_SCALE = 1.25
WRIST_MIN_VISIBILITY = 0.1
HAND_FROM_POSE_SCALE = 2.7
HAND_FROM_POSE_SHIFT_Y = -0.1
RECROP_SHIFT_Y = -0.1
# Pose landmark indices, person's anatomical side: (wrist, pinky, index).
HAND_POSE_LANDMARKS: dict[str, tuple[int, int, int]] = {
    'left': (15, 17, 19), 'right': (16, 18, 20)}


@dataclass
class BodyPose:
    """One person found by the pose pipeline, in image pixels."""

    keypoints: np.ndarray  # (33, 3) x, y pixels, z (relative, unused)
    visibility: np.ndarray  # (33,) [0, 1]
    presence: float  # pose presence score of the landmark model
    roi: Roi  # the rect the landmarks were read from
    next_roi: Roi  # the rect to read this person from in the next body pass


@dataclass
class BodyHand:
    """A hand ROI derived from a body's wrist: where to run the hand landmark model."""

    roi: Roi  # after hand_recrop
    side: str  # 'left' or 'right', anatomical, from the body
    wrist: np.ndarray  # (2,) pose wrist, pixels
    visibility: float  # pose wrist visibility
    pose_roi: Roi  # the ROI from the pose landmarks alone (before hand_recrop)


def _alignment_roi(start: np.ndarray, end: np.ndarray, target: float) -> Roi:
    """AlignmentPointsRectsCalculator: centre start, side 2 |end - start|, end at `target`."""
    side = 2.0 * float(np.hypot(*(end - start)))
    rotation = normalize_radians(
        target - math.atan2(-(end[1] - start[1]), end[0] - start[0]))
    return Roi(float(start[0]), float(start[1]), side, side, rotation)


def body_roi(start: np.ndarray, end: np.ndarray) -> Roi:
    """Body ROI from the hip centre and the size/rotation point (detection or landmarks)."""
    rect = _alignment_roi(start, end, math.pi / 2)
    return transform_rect(rect, scale=POSE_ROI_SCALE)


def hand_roi_from_pose(wrist: np.ndarray, pinky: np.ndarray, index: np.ndarray) -> Roi:
    """Holistic's hand ROI from the pose wrist, pinky and index (pixels), before recrop."""
    middle = (2.0 * index + pinky) / 3.0
    side = 2.0 * float(np.hypot(*(middle - wrist)))
    rotation = rotation_to_vertical(wrist[0], wrist[1], middle[0], middle[1])
    rect = Roi(float(middle[0]), float(middle[1]), side, side, rotation)
    return transform_rect(rect, shift_y=HAND_FROM_POSE_SHIFT_Y, scale=HAND_FROM_POSE_SCALE)


def roi_from_recrop(points: np.ndarray) -> Roi:
    """hand_recrop's two points (pixels) -> the hand ROI (hand_recrop_by_roi graph)."""
    rect = _alignment_roi(points[0], points[1], -math.pi / 2)
    return transform_rect(rect, shift_y=RECROP_SHIFT_Y)


def decode_pose_detections(
    raw_boxes: np.ndarray, raw_scores: np.ndarray, transform: np.ndarray,
    min_score: float, max_detections: int,
) -> list[tuple[float, np.ndarray]]:
    """
    (score, (4, 2) keypoints in image pixels) per person, best first.

    Keypoints: 0 hip centre, 1 full-body size/rotation point, 2 shoulder centre, 3 upper-body
    size/rotation point. The box (the face) is only used by the NMS.
    """
    scores = sigmoid(raw_scores.reshape(-1).astype(np.float64))
    keep = scores >= min_score
    if not keep.any():
        return []
    anchors = ssd_anchors(POSE_DETECTION_SIZE, POSE_STRIDES)[keep].astype(np.float64)
    decoded = decode_boxes(raw_boxes.reshape(-1, 12)[keep], anchors, POSE_DETECTION_SIZE)
    to_image = invert_affine(transform)
    out = []
    for score, row in weighted_nms(decoded, scores[keep])[:max_detections]:
        pts = apply_affine(to_image, row[4:].reshape(4, 2) * POSE_DETECTION_SIZE)
        out.append((score, pts))
    return out


class BodyNetworks:
    """The three body networks, run by the tracker's runtime (Runtime.run_graph)."""

    def __init__(self, runtime: Runtime, model_dir: str | Path | None = None) -> None:
        folder = Path(model_dir) if model_dir else None
        self.runtime = runtime
        self.paths = {name: body_model_path(name, folder)
                      for name in ('pose_detection', 'pose_landmark_full', 'hand_recrop')}

    def _run(self, name: str, batch: np.ndarray) -> list[np.ndarray]:
        """Raw outputs (in graph output order) of `name` on (N, S, S, 3) float32 inputs."""
        return self.runtime.run_graph(self.paths[name], batch)

    def detect(self, image: np.ndarray, max_bodies: int) -> list[Roi]:
        """Body ROIs of up to max_bodies people found by the pose detector in the image."""
        height, width = image.shape[:2]
        transform, _ = roi_affine(full_image_roi(width, height), POSE_DETECTION_SIZE)
        tensor = warp_to_tensor(image, transform, POSE_DETECTION_SIZE, replicate_border=False)
        boxes, scores = self._run('pose_detection', (tensor * 2.0 - 1.0)[None])[:2]
        found = decode_pose_detections(boxes[0], scores[0], transform, POSE_MIN_SCORE,
                                       max_bodies)
        return [body_roi(pts[0], pts[1]) for _, pts in found]

    def landmarks(self, images: Sequence[np.ndarray], items: Sequence[tuple[int, Roi]]
                  ) -> list[BodyPose | None]:
        """Pose landmarks of each (image index, body ROI); None where no body is present."""
        if not items:
            return []
        affines = [roi_affine(roi, POSE_LANDMARK_SIZE)[0] for _, roi in items]
        batch = np.stack([_crop(images[k], a, POSE_LANDMARK_SIZE) for (k, _), a in
                          zip(items, affines)])
        raw, presence = self._run('pose_landmark_full', batch)[:2]
        poses: list[BodyPose | None] = []
        for (_, roi), affine, row, score in zip(items, affines, raw, presence.reshape(-1)):
            if not score >= POSE_MIN_PRESENCE or not np.isfinite(row).all():
                poses.append(None)
                continue
            values = row.reshape(-1, 5).astype(np.float64)
            points = apply_affine(invert_affine(affine), values[:, :2])
            keypoints = np.concatenate([points, values[:, 2:3]], axis=1)
            poses.append(BodyPose(
                keypoints=keypoints[:NUM_POSE_LANDMARKS],
                visibility=sigmoid(values[:NUM_POSE_LANDMARKS, 3]), presence=float(score),
                roi=roi, next_roi=body_roi(points[33], points[34])))
        return poses

    def hands(self, images: Sequence[np.ndarray], poses: Sequence[tuple[int, BodyPose]]
              ) -> list[tuple[int, BodyHand]]:
        """(image index, hand) for every visible wrist of the poses, refined by hand_recrop."""
        items = []
        for k, pose in poses:
            for side, (wrist, pinky, index) in HAND_POSE_LANDMARKS.items():
                if pose.visibility[wrist] > WRIST_MIN_VISIBILITY:
                    pts = pose.keypoints[:, :2]
                    roi = hand_roi_from_pose(pts[wrist], pts[pinky], pts[index])
                    if roi.width >= 1.0:
                        items.append((k, side, pts[wrist], float(pose.visibility[wrist]), roi))
        if not items:
            return []
        affines = [roi_affine(roi, RECROP_SIZE)[0] for *_, roi in items]
        batch = np.stack([_crop(images[k], a, RECROP_SIZE) for (k, *_), a in
                          zip(items, affines)])
        (crops,) = self._run('hand_recrop', batch)[:1]
        out = []
        for (k, side, wrist, vis, roi), affine, raw in zip(items, affines, crops):
            points = apply_affine(invert_affine(affine), raw.reshape(2, 2).astype(np.float64))
            if not np.isfinite(points).all():
                continue
            refined = roi_from_recrop(points)
            out.append((k, BodyHand(refined if refined.width >= 1.0 else roi, side,
                                    np.asarray(wrist), vis, roi)))
        return out


def _crop(image: np.ndarray, affine: np.ndarray, size: int) -> np.ndarray:
    """Cut a landmark-style crop (edge replicated) as a float32 [0, 1] tensor."""
    return warp_u8(image, affine, size, replicate_border=True).astype(np.float32) / 255.0
