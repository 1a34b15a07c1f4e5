"""The shared hand photos run once through the tracker in image mode, for the retargeting tests.

Cached per test process (functools.cache), so test_hand_frames.py and test_retarget.py pay
for the tracker once. Poses chosen by looking at the photos (see test_gestures_real.py):
- pinch: onehand10k/784.jpg, thumb and index tips together, other fingers curled;
- fist: freihand/00000355.jpg, fist clenched around a spoon handle;
- open: onehand10k/9.jpg, flat hand, all fingers straight.
"""

from __future__ import annotations

import functools

from conftest import SHARED_DATA, shared_path
import cv2
from hand_pose_ros.core.results import HandResult
import numpy as np

POSES = {'pinch': 'onehand10k/784.jpg', 'fist': 'freihand/00000355.jpg',
         'open': 'onehand10k/9.jpg'}


@functools.cache
def tracked_photos() -> dict[str, list[HandResult]]:
    """{photo path relative to hands/: hands found} for every shared hand photo."""
    from hand_pose_ros.core.options import BaseOptions, RunningMode, TrackerOptions
    from hand_pose_ros.core.tracker import HandTracker
    shared_path('hands')
    tracker = HandTracker(TrackerOptions(base=BaseOptions(model='full', num_threads=1),
                                         running_mode=RunningMode.IMAGE))
    out = {}
    try:
        root = SHARED_DATA / 'hands'
        for path in sorted(p for p in root.rglob('*') if p.suffix in ('.jpg', '.png')):
            rgb = np.ascontiguousarray(cv2.imread(str(path))[:, :, ::-1])
            out[str(path.relative_to(root))] = tracker.process(rgb).hands
    finally:
        tracker.close()
    return out


def pose_world(pose: str, side: str) -> np.ndarray:
    """(21, 3) world keypoints of a pose photo's hand as a `side` hand.

    Each photo shows one side; the other side is its mirror image (x -> -x in the
    camera-aligned hand-centric frame), which is what the same pose of the other hand is.
    """
    hands = tracked_photos()[POSES[pose]]
    assert len(hands) == 1, f'{POSES[pose]}: expected one hand, found {len(hands)}'
    world = np.array(hands[0].world, dtype=np.float64)
    if hands[0].handedness != side:
        world[:, 0] *= -1.0
    return world


def _rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def opened(world: np.ndarray, side: str, thumb_spread_deg: float = 35.0) -> np.ndarray:
    """A real hand made fully open: each finger straightened along its metacarpal (wrist ->
    MCP; bone lengths kept), the thumb straightened and swung away from the index in the palm
    plane. The open-hand photo's thumb lies against the index (a pinch to DexPilot)."""
    from hand_pose_ros.core.anatomy import palm_frame
    w = np.asarray(world, dtype=np.float64)
    out = w.copy()
    for base in (5, 9, 13, 17):
        a = _unit(w[base] - w[0])
        for j in range(1, 4):
            out[base + j] = out[base + j - 1] + np.linalg.norm(w[base + j] - w[base + j - 1]) * a
    t = _unit(w[2] - w[1])
    for j in (3, 4):
        out[j] = out[j - 1] + np.linalg.norm(w[j] - w[j - 1]) * t
    n = palm_frame(w, side).normal
    candidates = []
    for sign in (1.0, -1.0):
        rot = _rotation(n, sign * np.radians(thumb_spread_deg))
        thumb = out.copy()
        for j in (2, 3, 4):
            thumb[j] = out[1] + rot @ (out[j] - out[1])
        candidates.append((np.linalg.norm(thumb[4] - out[5]), sign, thumb))
    return max(candidates, key=lambda c: c[0])[2]


def closed(world: np.ndarray, side: str, mcp_pip_dip_deg=(80.0, 100.0, 70.0)) -> np.ndarray:
    """The same hand with every finger (index..pinky) curled into a fist: from the opened
    hand, each joint bent toward the palm by the given angles about the finger's flexion
    axis (metacarpal x palm normal); the thumb stays as in the photo."""
    from hand_pose_ros.core.anatomy import palm_frame
    w = opened(world, side)
    w[1:5] = np.asarray(world, dtype=np.float64)[1:5]
    n0 = palm_frame(w, side).normal
    out = w.copy()
    for base in (5, 9, 13, 17):
        a = _unit(w[base] - w[0])
        k = np.cross(a, _unit(n0 - (n0 @ a) * a))
        total = 0.0
        for j, deg in enumerate(mcp_pip_dip_deg):
            total += np.radians(deg)
            length = np.linalg.norm(w[base + j + 1] - w[base + j])
            out[base + j + 1] = out[base + j] + length * (_rotation(k, total) @ a)
    return out
