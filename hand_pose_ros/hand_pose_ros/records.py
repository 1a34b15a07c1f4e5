"""
Hands as plain records for dataset pipelines (LeRobot, Ray Data, pandas), without ROS.

A record is what `hand-pose-ros detect` writes per hand (cli/detect.py hand_to_json: id,
handedness, scores, 2D, hand-centric and camera-frame 3D, MANO view, joint angles, gesture),
so a dataset and the JSON of detect agree field for field.

- `hand_records(frames)`: a stream of frames (one camera, in order) -> per frame a list of
  records, tracked in video mode like process-bag's cameras.
- `HandRecords`: a callable class for Ray Data's `map_batches` (one tracker per actor):
  `ds.map_batches(HandRecords, fn_constructor_kwargs={'settings': {...}}, batch_size=32,
  concurrency=2)`; a batch {'image': (B, H, W, 3) uint8 RGB, ...} gets a 'hands' column
  (one JSON list of records per row). Ray Data may hand an actor batches of any stream in any
  order, so it runs in image mode (every frame on its own) unless told `running_mode
  'video'` for a dataset read in order by one actor.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
import json
from typing import Any

from hand_pose_ros.cli.detect import hand_to_json
from hand_pose_ros.core.options import tracker_options
from hand_pose_ros.core.results import CameraIntrinsics
from hand_pose_ros.core.settings import RunningMode
import numpy as np


def hand_records(frames: Iterable[np.ndarray], settings: dict[str, Any] | None = None,
                 camera: CameraIntrinsics | None = None, fps: float = 30.0
                 ) -> Iterator[list[dict]]:
    """
    Track hands in a stream of RGB frames of one camera; yield each frame's hand records.

    `settings` are tracker settings by name (as the node's parameters); `fps` gives the
    frames' timestamps for smoothing. The tracker is freed when the stream ends.
    """
    from hand_pose_ros.core.tracker import HandTracker
    tracker = HandTracker(tracker_options(dict(settings or {}),
                                          running_mode=RunningMode.VIDEO))
    try:
        for k, rgb in enumerate(frames):
            result = tracker.process(rgb, 'rgb', camera=camera, timestamp=k / fps)
            yield [hand_to_json(h) for h in result.hands]
    finally:
        tracker.close()


class HandRecords:
    """Ray Data `map_batches` callable: adds a 'hands' column (JSON records per row)."""

    def __init__(self, settings: dict[str, Any] | None = None, running_mode: str = 'image',
                 image_column: str = 'image'):
        from hand_pose_ros.core.tracker import HandTracker
        self.tracker = HandTracker(tracker_options(dict(settings or {}),
                                                   running_mode=RunningMode(running_mode)))
        self.image_column = image_column
        self.frames = 0

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        hands = []
        for rgb in batch[self.image_column]:
            result = self.tracker.process(np.asarray(rgb, dtype=np.uint8), 'rgb',
                                          timestamp=self.frames / 30.0)
            self.frames += 1
            hands.append(json.dumps([hand_to_json(h) for h in result.hands]))
        return {**batch, 'hands': np.array(hands, dtype=object)}
