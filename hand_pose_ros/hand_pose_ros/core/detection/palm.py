"""
Palm detector decoding: raw SSD outputs -> palm detections in image pixels.

Reproduces MediaPipe's TensorsToDetections (palm options), weighted NonMaxSuppression and
DetectionLetterboxRemoval so the detections, and thus the hand ROIs, match the official graph.
"""

from __future__ import annotations

from hand_pose_ros.core.detection.anchors import ssd_anchors
from hand_pose_ros.core.detection.roi import apply_affine, invert_affine
from hand_pose_ros.core.models.catalog import PALM_INPUT_SIZE
from hand_pose_ros.core.results import PalmDetection
import numpy as np

SCORE_CLIP = 100.0
NMS_IOU_THRESHOLD = 0.3
NUM_PALM_KEYPOINTS = 7


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic of raw scores clipped to +-100, as the graph does."""
    return 1.0 / (1.0 + np.exp(-np.clip(x, -SCORE_CLIP, SCORE_CLIP)))


def decode_boxes(raw: np.ndarray, anchors: np.ndarray | None = None,
                 input_size: int = PALM_INPUT_SIZE) -> np.ndarray:
    """
    Decode (N, 4 + 2K) raw SSD rows into xmin, ymin, xmax, ymax, K x (x, y).

    Normalised to the input tensor (192x192 for the palm detector, 7 keypoints; the pose
    detector uses the same decoding with 4). Anchors have fixed size 1, so offsets are only
    scaled by the input size and added to the anchor centre.
    """
    anchors = ssd_anchors() if anchors is None else anchors
    scaled = raw.astype(np.float64) / input_size
    cx = scaled[:, 0] + anchors[:, 0]
    cy = scaled[:, 1] + anchors[:, 1]
    w, h = scaled[:, 2], scaled[:, 3]
    out = np.empty_like(scaled)
    out[:, 0], out[:, 1] = cx - w / 2, cy - h / 2
    out[:, 2], out[:, 3] = cx + w / 2, cy + h / 2
    out[:, 4::2] = scaled[:, 4::2] + anchors[:, :1]
    out[:, 5::2] = scaled[:, 5::2] + anchors[:, 1:2]
    return out


def _iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    ix = np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0])
    iy = np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1])
    inter = np.where((ix > 0) & (iy > 0), ix * iy, 0.0)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def weighted_nms(
    decoded: np.ndarray, scores: np.ndarray, iou_threshold: float = NMS_IOU_THRESHOLD
) -> list[tuple[float, np.ndarray]]:
    """
    Apply MediaPipe's WEIGHTED non-max suppression, highest score first.

    Each cluster (IoU with its top box > threshold) becomes the score-weighted mean of its
    members' boxes and keypoints and keeps the top score. Averaging rather than picking one
    box is what makes the palm box (and so the ROI) stable.
    """
    order = np.argsort(-scores, kind='stable')
    remaining_rows, remaining_scores = decoded[order], scores[order]
    out: list[tuple[float, np.ndarray]] = []
    while len(remaining_rows):
        iou = _iou_one_to_many(remaining_rows[0], remaining_rows)
        member = iou > iou_threshold
        member[0] = True
        weights = remaining_scores[member]
        merged = (remaining_rows[member] * weights[:, None]).sum(axis=0) / weights.sum()
        out.append((float(remaining_scores[0]), merged))
        remaining_rows, remaining_scores = remaining_rows[~member], remaining_scores[~member]
    return out


def detect_palms(
    raw_boxes: np.ndarray, raw_scores: np.ndarray, transform: np.ndarray,
    min_score: float, max_detections: int,
) -> list[PalmDetection]:
    """
    Palm detections in image pixels from one image's raw outputs.

    `transform` is the (2, 3) image -> 192-tensor letterbox affine the input was sampled with;
    its inverse removes the letterbox padding exactly.
    """
    scores = sigmoid(raw_scores.reshape(-1).astype(np.float64))
    keep = scores >= min_score
    if not keep.any():
        return []
    decoded = decode_boxes(raw_boxes.reshape(-1, 18)[keep], ssd_anchors()[keep])
    clusters = weighted_nms(decoded, scores[keep])
    to_image = invert_affine(transform)
    detections = []
    for score, row in clusters[:max_detections]:
        pts = apply_affine(to_image, row.reshape(-1, 2) * PALM_INPUT_SIZE)
        box = np.array([pts[0, 0], pts[0, 1], pts[1, 0], pts[1, 1]])
        detections.append(PalmDetection(score=score, box=box, keypoints=pts[2:]))
    return detections
