"""
Detection tiles: extra palm-detector views so that small, and very large, hands are found.

The palm detector sees the whole image letterboxed into 192x192. A 1280x720 frame is shrunk
6.7x (and 44% of the input is padding), so a hand 80 px long becomes a 6 px palm, below what
the detector finds. Tiles are square windows of the image, each sampled into its own
192x192 input: level 1 uses windows as tall as the image's short side (no letterbox waste;
1.8x the resolution for 16:9), each further level halves the window. Level 1 also adds one
zoomed-out view (the whole image at half the single view's scale, zero border): a hand that
fills the frame, as one close to a robot's camera does, is too large for the detector's
anchors and is found there. The tracker runs them
only for frames where the whole-image view found fewer than max_num_hands hands, and a
tile's detection only adds a hand: one that overlaps a hand already found is dropped, so
the hands MediaPipe's single view finds are left exactly as they are. The views run the
lite palm detector by default (TrackerOptions.tile_detector), whichever the model: it finds
small hands in them far more often than the full one (measured, docs/evaluation.md).

Neighbouring windows overlap by at least a quarter of their side, so any palm up to that
size lies wholly inside one window; a detection touching a window edge that is not an image
edge is dropped as cut (its whole palm is seen by the neighbour, or by a coarser view).
"""

from __future__ import annotations

import math

from hand_pose_ros.core.detection.palm import NMS_IOU_THRESHOLD
from hand_pose_ros.core.detection.roi import box_iou
from hand_pose_ros.core.models.catalog import PALM_INPUT_SIZE
from hand_pose_ros.core.results import PalmDetection, Roi
import numpy as np

MIN_OVERLAP = 0.25
# The zoomed-out view's side, in units of the image's long side.
ZOOM_OUT = 2.0
# A window narrower than the detector's input would only add interpolated pixels.
MIN_TILE_SIDE = PALM_INPUT_SIZE
# Level 1 is skipped when the image is this close to square: its one window is the image.
MIN_ASPECT_FOR_LEVEL_1 = 1.1
# Palm boxes within this fraction of the window's side of an inner window edge are cut.
EDGE_MARGIN = 0.01


def _centres(extent: float, side: float) -> np.ndarray:
    """Evenly spread window centres covering [0, extent] with >= MIN_OVERLAP overlap."""
    if extent <= side:
        return np.array([extent / 2.0])
    count = math.ceil((extent - side) / (side * (1.0 - MIN_OVERLAP))) + 1
    return np.linspace(side / 2.0, extent - side / 2.0, count)


def detection_tiles(width: int, height: int, levels: int) -> list[Roi]:
    """
    Return the views of `levels` tile levels for a width x height image.

    Zoomed out first, then windows coarse to fine.
    """
    short, long = min(width, height), max(width, height)
    if levels < 1:
        return []
    tiles = [Roi(width / 2.0, height / 2.0, ZOOM_OUT * long, ZOOM_OUT * long, 0.0)]
    for level in range(1, levels + 1):
        side = short / 2 ** (level - 1)
        if side < MIN_TILE_SIDE:
            break
        if level == 1 and long < MIN_ASPECT_FOR_LEVEL_1 * short:
            continue
        tiles += [Roi(float(x), float(y), side, side, 0.0)
                  for y in _centres(height, side) for x in _centres(width, side)]
    return tiles


def is_cut(detection: PalmDetection, tile: Roi, width: int, height: int) -> bool:
    """Return True when the palm box reaches an edge of the window that lies inside the image."""
    margin = EDGE_MARGIN * tile.width
    x0, y0 = tile.cx - tile.width / 2, tile.cy - tile.height / 2
    x1, y1 = tile.cx + tile.width / 2, tile.cy + tile.height / 2
    xmin, ymin, xmax, ymax = detection.box
    return bool((x0 > 0.5 and xmin < x0 + margin) or (y0 > 0.5 and ymin < y0 + margin)
                or (x1 < width - 0.5 and xmax > x1 - margin)
                or (y1 < height - 0.5 and ymax > y1 - margin))


def new_palms(found: list[PalmDetection], per_tile: list[list[PalmDetection]],
              tiles: list[Roi], width: int, height: int) -> list[PalmDetection]:
    """Tile detections that are whole and not already found, best score first, one per palm."""
    whole = [d for dets, tile in zip(per_tile, tiles) for d in dets
             if not is_cut(d, tile, width, height)]
    kept: list[PalmDetection] = []
    for det in sorted(whole, key=lambda d: -d.score):
        # Two palms are the same when they overlap as much as the detector's own NMS merges.
        if all(box_iou(det.box, other.box) <= NMS_IOU_THRESHOLD for other in found + kept):
            kept.append(det)
    return kept
