"""
What one camera or stream carries from frame to frame, and one frame of a batch.

Kept beside the orchestrator rather than in a stage: a stream's state holds every stage's
memory (tracks, filters, skeleton and scale locks, gesture history, body ROIs), and the
schedule that says which stage runs on the next frame.
"""

from __future__ import annotations

from dataclasses import dataclass

from hand_pose_ros.core.meaning.gestures import GestureRecognizer
from hand_pose_ros.core.options import TrackerOptions
from hand_pose_ros.core.results import CameraIntrinsics, HandResult, Roi
from hand_pose_ros.core.tracking.skeleton import SkeletonLocks
from hand_pose_ros.core.tracking.smoothing import LandmarkSmoother, OneEuroParams
from hand_pose_ros.core.tracking.tracks import Track
import numpy as np


class TrackerState:
    """Everything one camera/stream carries from frame to frame."""

    def __init__(self, options: TrackerOptions):
        self.options = options
        self.tracks: list[Track] = []
        self.next_id = 0
        self.frame_index = 0
        self.last_detection_frame: int | None = None
        self.body_rois: list[Roi] = []  # people to read in the next body pass (tracking)
        self.last_body_frame: int | None = None
        self.smoother = LandmarkSmoother(OneEuroParams(
            options.one_euro_min_cutoff, options.one_euro_beta, options.one_euro_d_cutoff))
        self.gestures = (GestureRecognizer(hold_frames=options.gesture_hold_frames)
                         if options.enable_gestures else None)
        self.skeletons = SkeletonLocks(options.skeleton_lock_frames)
        # Per live track id, its latest hand and when it was seen (for hold_lost_s).
        self.last_seen: dict[int, tuple[HandResult, float]] = {}

    def configure(self, options: TrackerOptions) -> None:
        """Take live option changes without losing tracks, filters or gesture history."""
        self.options = options
        params = self.smoother.params
        params.min_cutoff, params.beta = options.one_euro_min_cutoff, options.one_euro_beta
        params.d_cutoff = options.one_euro_d_cutoff
        if self.gestures is not None:
            self.gestures.hold_frames = options.gesture_hold_frames
        self.skeletons.configure(options.skeleton_lock_frames)

    def reset(self) -> None:
        """Forget all tracks (e.g. after a camera jump); ids keep counting up."""
        self.tracks = []
        self.last_detection_frame = None
        self.body_rois = []
        self.last_body_frame = None
        self.smoother.forget_except(set())
        self.skeletons.forget_except(set())
        self.last_seen = {}

    def should_detect(self) -> bool:
        """Apply MediaPipe's rule, optionally thinned to every N frames while a hand is tracked."""
        opts = self.options
        if not opts.tracking or not self.tracks:
            return True
        if len(self.tracks) >= opts.max_num_hands:
            return False
        if self.last_detection_frame is None:
            return True
        return self.frame_index - self.last_detection_frame >= opts.detect_every_n_frames

    def should_run_body(self, hands_found: int) -> bool:
        """body_rois: only while hands are missing; in tracking every body_every_n_frames."""
        opts = self.options
        if not opts.body_rois or hands_found >= opts.max_num_hands:
            return False
        if not opts.tracking or self.last_body_frame is None:
            return True
        return self.frame_index - self.last_body_frame >= opts.body_every_n_frames

    def timestamp(self, given: float | None) -> float:
        """Return the frame's time in seconds: as given, else frame_index / default_fps."""
        return given if given is not None else self.frame_index / self.options.default_fps


@dataclass
class FrameInput:
    """One image of a batch, with the stream state it belongs to."""

    image: np.ndarray
    state: TrackerState
    pixel_format: str = 'rgb'
    camera: CameraIntrinsics | None = None
    depth: np.ndarray | None = None
    timestamp: float | None = None  # seconds; None = frame_index / default_fps
