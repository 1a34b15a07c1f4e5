"""
Hand regions of interest: where the landmark model looks, and how to sample there.

Mirrors MediaPipe's DetectionsToRects + RectTransformation (palm detection to ROI),
HandLandmarksToRect (landmarks to the next frame's ROI) and ImageToTensor's rotated-rect warp,
all in image pixels. Everything the networks see is described by one 2x3 affine, so any
runtime (CPU or GPU) samples identically.
"""

from __future__ import annotations

import math

from hand_pose_ros.core.anatomy import HandLandmark
from hand_pose_ros.core.results import PalmDetection, Roi
import numpy as np

TARGET_ANGLE = math.pi / 2

# Palm detection -> hand ROI (palm_detection_detection_to_roi.pbtxt).
DETECTION_SHIFT_Y = -0.5
DETECTION_SCALE = 2.6
# Landmarks -> next frame's ROI (hand_landmark_landmarks_to_roi.pbtxt).
LANDMARKS_SHIFT_Y = -0.1
LANDMARKS_SCALE = 2.0
# The 12 stable landmarks the tracking ROI is built from (no finger tips or distal joints).
ROI_LANDMARKS: tuple[HandLandmark, ...] = (
    HandLandmark.WRIST, HandLandmark.THUMB_CMC, HandLandmark.THUMB_MCP, HandLandmark.THUMB_IP,
    HandLandmark.INDEX_FINGER_MCP, HandLandmark.INDEX_FINGER_PIP,
    HandLandmark.MIDDLE_FINGER_MCP, HandLandmark.MIDDLE_FINGER_PIP,
    HandLandmark.RING_FINGER_MCP, HandLandmark.RING_FINGER_PIP,
    HandLandmark.PINKY_MCP, HandLandmark.PINKY_PIP)


def normalize_radians(angle: float) -> float:
    """Wrap to [-pi, pi) like MediaPipe's NormalizeRadians."""
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))


def rotation_to_vertical(x0: float, y0: float, x1: float, y1: float) -> float:
    """Rotation that turns the image-space vector (x0, y0) -> (x1, y1) to point up."""
    return normalize_radians(TARGET_ANGLE - math.atan2(-(y1 - y0), x1 - x0))


def transform_rect(
    roi: Roi, shift_x: float = 0.0, shift_y: float = 0.0, scale: float = 1.0,
    square_long: bool = True,
) -> Roi:
    """Shift along the rect's own rotated axes, make it square on its longer side, scale."""
    c, s = math.cos(roi.rotation), math.sin(roi.rotation)
    dx, dy = roi.width * shift_x, roi.height * shift_y
    cx = roi.cx + dx * c - dy * s
    cy = roi.cy + dx * s + dy * c
    width, height = roi.width, roi.height
    if square_long:
        width = height = max(width, height)
    return Roi(cx, cy, width * scale, height * scale, roi.rotation)


def roi_from_detection(detection: PalmDetection) -> Roi:
    """Hand ROI from a palm: box centre/size, rotation wrist -> middle MCP, shift, 2.6x."""
    xmin, ymin, xmax, ymax = (float(v) for v in detection.box)
    kp = detection.keypoints
    rotation = rotation_to_vertical(kp[0, 0], kp[0, 1], kp[2, 0], kp[2, 1])
    rect = Roi((xmin + xmax) / 2, (ymin + ymax) / 2, xmax - xmin, ymax - ymin, rotation)
    return transform_rect(rect, shift_y=DETECTION_SHIFT_Y, scale=DETECTION_SCALE)


def roi_from_landmarks(keypoints: np.ndarray) -> Roi:
    """
    Next frame's ROI from this frame's landmarks (pixels, (21, >=2)).

    Bounds of the 12 stable landmarks in the frame rotated so the palm points up, then
    shift -0.1, square, 2x: the hand stays inside even if it moves a little.
    """
    kp = np.asarray(keypoints, dtype=np.float64)[:, :2]
    pts = kp[list(ROI_LANDMARKS)]
    wrist = kp[HandLandmark.WRIST]
    # Halfway between the middle MCP and the mean of the index and ring MCPs.
    mid = ((kp[HandLandmark.INDEX_FINGER_MCP] + kp[HandLandmark.RING_FINGER_MCP]) / 2
           + kp[HandLandmark.MIDDLE_FINGER_MCP]) / 2
    rotation = rotation_to_vertical(wrist[0], wrist[1], mid[0], mid[1])
    centre = (pts.min(axis=0) + pts.max(axis=0)) / 2
    c, s = math.cos(-rotation), math.sin(-rotation)
    rel = pts - centre
    proj = np.stack([rel[:, 0] * c - rel[:, 1] * s, rel[:, 0] * s + rel[:, 1] * c], axis=1)
    lo, hi = proj.min(axis=0), proj.max(axis=0)
    pc = (lo + hi) / 2
    cr, sr = math.cos(rotation), math.sin(rotation)
    cx = pc[0] * cr - pc[1] * sr + centre[0]
    cy = pc[0] * sr + pc[1] * cr + centre[1]
    rect = Roi(float(cx), float(cy), float(hi[0] - lo[0]), float(hi[1] - lo[1]), rotation)
    return transform_rect(rect, shift_y=LANDMARKS_SHIFT_Y, scale=LANDMARKS_SCALE)


def full_image_roi(width: int, height: int) -> Roi:
    """Return the whole image as an unrotated rect (the palm detector's input region)."""
    return Roi(width / 2, height / 2, float(width), float(height), 0.0)


def roi_affine(roi: Roi, size: int, keep_aspect: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """
    (2, 3) affine image px -> tensor px sampling `roi` into size x size, and the padding.

    With keep_aspect the rect is first grown on its short side (ImageToTensor's PadRoi);
    the padding (left, top, right, bottom, as fractions of the tensor) is what letterbox
    removal undoes. Matches OpenCV's boxPoints -> getPerspectiveTransform mapping MediaPipe
    uses: the rect's top-left corner lands on tensor pixel (0, 0).
    """
    width, height = roi.width, roi.height
    pad_x = pad_y = 0.0
    if keep_aspect:
        if height < width:
            pad_y = (1.0 - height / width) / 2
            height = width
        elif width < height:
            pad_x = (1.0 - width / height) / 2
            width = height
    c, s = math.cos(roi.rotation), math.sin(roi.rotation)
    sx, sy = size / width, size / height
    # tensor = S * R(-rot) * (p - centre) + size / 2
    a = np.array([[c * sx, s * sx], [-s * sy, c * sy]])
    t = np.array([size / 2, size / 2]) - a @ np.array([roi.cx, roi.cy])
    return np.hstack([a, t[:, None]]), np.array([pad_x, pad_y, pad_x, pad_y])


def invert_affine(affine: np.ndarray) -> np.ndarray:
    """Inverse of a (2, 3) affine, as (2, 3)."""
    a = np.linalg.inv(affine[:, :2])
    return np.hstack([a, (-a @ affine[:, 2])[:, None]])


def apply_affine(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine to (..., 2) points."""
    return points @ affine[:, :2].T + affine[:, 2]


def roi_bounds(roi: Roi) -> tuple[float, float, float, float]:
    """Axis-aligned (xmin, ymin, xmax, ymax) of the unrotated rect, as MediaPipe compares."""
    return (roi.cx - roi.width / 2, roi.cy - roi.height / 2,
            roi.cx + roi.width / 2, roi.cy + roi.height / 2)


def box_iou(a: tuple[float, ...] | np.ndarray, b: tuple[float, ...] | np.ndarray) -> float:
    """Intersection over union of two (xmin, ymin, xmax, ymax) boxes; 0 when disjoint."""
    ix = min(a[2], b[2]) - max(a[0], b[0])
    iy = min(a[3], b[3]) - max(a[1], b[1])
    if ix <= 0 or iy <= 0:
        return 0.0
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def roi_iou(a: Roi, b: Roi) -> float:
    """Overlap of two ROIs as MediaPipe's AssociationNormRectCalculator sees it (no rotation)."""
    return box_iou(roi_bounds(a), roi_bounds(b))
