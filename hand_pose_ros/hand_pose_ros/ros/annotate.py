"""
Drawing hands on the image (hands/image topic, demo video, contact sheet).

Drawing costs a copy of the image and a few milliseconds, so the node only calls this while
someone subscribes to hands/image.
"""

from __future__ import annotations

import cv2
from hand_pose_ros.core.anatomy import HAND_CONNECTIONS
from hand_pose_ros.core.results import FrameResult, HandResult
from hand_pose_ros.ros.markers import hand_colour, hand_label
import numpy as np


def _bgr255(hand: HandResult) -> tuple[int, int, int]:
    r, g, b = hand_colour(hand)
    return int(r * 255), int(g * 255), int(b * 255)  # drawn on RGB images


def draw_hands(rgb: np.ndarray, result: FrameResult, caption: str = '') -> np.ndarray:
    """Copy of the RGB image with each hand's skeleton, joints and `side #id gesture` label."""
    out = np.ascontiguousarray(rgb).copy()
    scale = max(out.shape[:2]) / 640.0
    thick = max(1, int(round(2 * scale)))
    for hand in result.hands:
        kp = np.asarray(hand.keypoints)[:, :2]
        if not np.all(np.isfinite(kp)):
            continue
        colour = _bgr255(hand)
        pts = np.round(kp).astype(np.int32)
        for a, b in HAND_CONNECTIONS:
            cv2.line(out, tuple(pts[a]), tuple(pts[b]), colour, thick, cv2.LINE_AA)
        for p in pts:
            cv2.circle(out, tuple(p), thick + 2, (255, 255, 255), -1, cv2.LINE_AA)
            cv2.circle(out, tuple(p), thick + 1, colour, -1, cv2.LINE_AA)
        x0, y0 = int(kp[:, 0].min()), int(kp[:, 1].min())
        _text(out, hand_label(hand), (x0, max(14, y0 - 8)), colour, scale)
    if caption:
        _text(out, caption, (8, int(22 * scale)), (255, 255, 255), scale)
    return out


def _text(img: np.ndarray, text: str, org: tuple[int, int], colour: tuple[int, int, int],
          scale: float) -> None:
    fs = 0.6 * scale
    th = max(1, int(round(scale)))
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, fs, (0, 0, 0), th + 2, cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, fs, colour, th, cv2.LINE_AA)


def contact_sheet(frames: list[np.ndarray], columns: int = 4, width: int = 1280) -> np.ndarray:
    """Grid of equally sized RGB frames scaled to `width` pixels wide in total."""
    if not frames:
        raise ValueError('no frames for the contact sheet')
    h, w = frames[0].shape[:2]
    cell_w = width // columns
    cell_h = int(round(h * cell_w / w))
    rows = (len(frames) + columns - 1) // columns
    sheet = np.zeros((rows * cell_h, columns * cell_w, 3), np.uint8)
    for i, f in enumerate(frames):
        r, c = divmod(i, columns)
        sheet[r * cell_h:(r + 1) * cell_h, c * cell_w:(c + 1) * cell_w] = cv2.resize(
            f, (cell_w, cell_h), interpolation=cv2.INTER_AREA)
    return sheet
