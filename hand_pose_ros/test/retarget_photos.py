"""The shared hand photos run once through the tracker in image mode, for the retargeting tests.

Cached per test process (functools.cache), so test_hand_frames.py and test_retarget.py pay
for the tracker once. Poses chosen by looking at the photos (see test_gestures_real.py):
- pinch: onehand10k/784.jpg, thumb and index tips together, other fingers curled;
- fist: freihand/00000355.jpg, fist clenched around a spoon handle;
- open: onehand10k/9.jpg, flat hand, all fingers straight.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np
from conftest import SHARED_DATA, shared_path

from hand_pose_ros.core.types import HandResult

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
