"""
Checks on hands that MediaPipe's single detector view did not find.

Extra views (detection tiles, and any later source of extra hand ROIs) find hands the
single view misses, but also false ones: held-out gesture photos showed a second "hand"
inside a real fist (its box nested in the fist's, IoU ~0.38, so the IoU-based duplicate
check keeps it) and "hands" on faces. The landmark model's presence score rejects most false
palms, not these: a fist's knuckles and a face's features look hand-like to it. So a hand
from an extra view must pass two more checks, each waived when the landmark model is very
sure (a real hand touching a face, or held in front of another, is still reported):

* nested: its keypoint box (the 21 landmarks' bounds) lies mostly inside another hand's
  (intersection over the smaller box, which a nested box fills, unlike IoU). The landmark
  ROIs are not used for this: they are about twice the hand's size, so two hands side by
  side (SYNTHETIC interacting pairs, 15-50 % overlap) have ROIs nested in each other while
  their keypoint boxes overlap by 0-0.54; a read inside a fist has its keypoint box 0.87-1.0
  inside the fist's;
* weak: its presence score is under extra_min_presence. On hand-free crops of faces and
  people (tools/eval_hands.py, part false) the extra views' false hands, mostly on cheeks, chins
  and necks, scored 0.53-0.90 (full) while 42 of 46 real hands found only by an extra view
  scored above 0.85 (SYNTHETIC small hands). OpenCV's bundled Haar face cascades were tried
  as a face check and found the face under none of the 8 false hands (sunglasses, profiles,
  small and blurred faces), so the score is the face check.

Refinement passes (re-reading a hand from its own landmarks' ROI) can also go wrong where
hands overlap: a read that locks onto the hand behind moves the ROI onto it. `jumped` spots
such a pass so the tracker keeps the previous read.

The thresholds are settings (TrackerOptions.extra_min_presence, extra_nested_overlap,
extra_nested_confident), chosen on the tuning half of `hand-pose-ros eval-hands --half both`
only (tools/eval_halves.py): there the full model's real second hands scored down to 0.753
and its false hands up to 0.707, so the floor is 0.73; the lite model's second hands score
lower (0.58-0.77) than one of its false hands (0.85), so for lite no floor separates them.
"""

from __future__ import annotations

import math

from hand_pose_ros.core.detection.roi import roi_bounds
from hand_pose_ros.core.results import Roi
import numpy as np

# A refinement pass whose ROI centre moves more than this fraction of the previous ROI's
# side, or whose overlap with another hand's ROI grows by more than JUMP_OVERLAP_GAIN,
# jumped to another hand (converging passes move a few percent).
JUMP_SHIFT = 0.3
JUMP_OVERLAP_GAIN = 0.2


def box_ios(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """
    Intersection of two (xmin, ymin, xmax, ymax) boxes over the smaller one's area.

    1 when one box lies inside the other, whatever their size ratio: IoU of a small box
    nested in a large one stays low, so IoU cannot tell nesting from a near miss.
    """
    ix = min(a[2], b[2]) - max(a[0], b[0])
    iy = min(a[3], b[3]) - max(a[1], b[1])
    if ix <= 0 or iy <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return float(ix * iy / smaller) if smaller > 0 else 0.0


def roi_ios(a: Roi, b: Roi) -> float:
    """box_ios of two ROIs' unrotated bounds (as the tracker's IoU checks compare them)."""
    return box_ios(roi_bounds(a), roi_bounds(b))


def keypoint_box(keypoints: np.ndarray) -> tuple[float, float, float, float]:
    """(xmin, ymin, xmax, ymax) of a hand's (21, >=2) keypoints in pixels."""
    lo, hi = keypoints[:, :2].min(axis=0), keypoints[:, :2].max(axis=0)
    return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


def nested(box: tuple[float, ...], others: list[tuple[float, ...]], overlap: float) -> bool:
    """Tell whether the (keypoint) box lies more than `overlap` inside another hand's box."""
    return any(box_ios(box, other) > overlap for other in others)


def jumped(before: Roi, after: Roi, others: list[Roi]) -> bool:
    """
    Tell whether a refinement pass moved the hand's ROI onto another hand's.

    Jumped: from `before` to `after` its centre moved by more than JUMP_SHIFT of its side,
    or its overlap with another hand's ROI (`others`) grew by more than JUMP_OVERLAP_GAIN.
    """
    side = max(before.width, before.height)
    if math.hypot(after.cx - before.cx, after.cy - before.cy) > JUMP_SHIFT * side:
        return True
    return any(roi_ios(after, other) - roi_ios(before, other) > JUMP_OVERLAP_GAIN
               for other in others)
