"""
HandTracker: the MediaPipe Hands pipeline (palm detector + landmark model) on any runtime.

This module only orchestrates: it decides which stage runs on which frame and hands each
stage's output to the next. The stages compute, each in its own room (see core/__init__.py).

Static mode runs the palm detector on every image. Tracking mode follows MediaPipe's rule:
each tracked hand's next ROI comes from its current landmarks, and the palm detector runs
only while fewer than max_num_hands hands are tracked; its new ROIs are merged with the
tracked ones by overlap (the tracked hand wins, keeping its id). A track ends when the
landmark model's presence score drops below min_tracking_confidence.

Detect every N frames (``detect_every_n_frames``): with one hand tracked and max_num_hands
2, MediaPipe's rule runs the palm detector on every frame just to look for a second hand,
which costs more than the landmark model itself. Running it only every N frames while at
least one hand is tracked removes most of that cost (the frame rate gain approaches the
detector's share of the frame time), at the price of a second hand entering the view being
picked up up to N-1 frames later. Tracking of hands already found is unaffected, and with
no hand tracked the detector still runs on every frame, so the first hand is found as fast.

Landmark refinement and the extra-hand checks: core/detection/reader.py. Detection tiles:
core/detection/candidates.py. Body-guided hand ROIs (``body_rois``, off by default):
core/detection/body_pass.py.

Batching: all ROIs of a frame, and of every frame given to process_batch (one per camera
or stream, each with its own TrackerState), go through the landmark model in one runtime
call, and all palm detector inputs in another, so a GPU runtime can batch across cameras.
"""

from __future__ import annotations

from collections.abc import Sequence
import weakref

from hand_pose_ros.core.detection.body import BodyNetworks, BodyPose
from hand_pose_ros.core.detection.body_pass import body_pass
from hand_pose_ros.core.detection.candidates import Candidate, frame_candidates
from hand_pose_ros.core.detection.reader import HandReader
from hand_pose_ros.core.inputs.image import to_rgb
from hand_pose_ros.core.meaning.views import attach_views
from hand_pose_ros.core.metric.hand_metric import attach_camera_frames
from hand_pose_ros.core.models.runtimes import create_runtime
from hand_pose_ros.core.models.runtimes.base import Runtime
from hand_pose_ros.core.options import SETTINGS, TrackerOptions
from hand_pose_ros.core.results import CameraIntrinsics, FrameResult, HandResult, Roi
from hand_pose_ros.core.stream import FrameInput, TrackerState
from hand_pose_ros.core.tracking.tracks import (
    assign_ids,
    drop_duplicates,
    hold_lost,
    keypoints_in_image,
    number_static,
    oldest_first_limit,
    Track,
)
import numpy as np

__all__ = ['FrameInput', 'HandTracker', 'TrackerState']


class HandTracker:
    """Image in, hands out. One default stream for process(); more via process_batch()."""

    def __init__(self, options: TrackerOptions | None = None, runtime: Runtime | None = None):
        self.options = options or TrackerOptions()
        self.runtime = runtime or create_runtime(self.options.base)
        self.reader = HandReader(self.runtime)
        self._states: weakref.WeakSet[TrackerState] = weakref.WeakSet()
        self.state = self.new_state()
        self._body: BodyNetworks | None = None  # loaded on the first body pass

    def new_state(self) -> TrackerState:
        """Tracking state for another camera/stream fed through process_batch."""
        state = TrackerState(self.options)
        self._states.add(state)
        return state

    def update_options(self, **changes: object) -> TrackerOptions:
        """
        Apply live setting changes to the tracker and every stream state; all or none.

        Raises ValueError with the reason for an unknown setting, a restart-only one (the
        networks and the per-stream bounds are fixed once built) or an invalid value. Not
        thread-safe against a concurrent process_batch: callers serialise the two.
        """
        for name in changes:
            spec = SETTINGS.get(name)
            if spec is None:
                raise ValueError(f'{name} is not a tracker setting')
            if not spec.live:
                raise ValueError(f'{name} cannot change at run time: restart with the new '
                                 'value')
        options = self.options.replace(**changes)
        self.options = options
        for state in list(self._states):
            state.configure(options)
        return options

    def reset(self) -> None:
        self.state.reset()

    def close(self) -> None:
        self.runtime.close()

    def process(
        self, image: np.ndarray, pixel_format: str = 'rgb',
        camera: CameraIntrinsics | None = None, depth: np.ndarray | None = None,
        timestamp: float | None = None,
    ) -> FrameResult:
        """Hands in one image of the default stream (timestamp in seconds, for smoothing)."""
        frame = FrameInput(image, self.state, pixel_format, camera, depth, timestamp)
        return self.process_batch([frame])[0]

    def process_batch(self, frames: Sequence[FrameInput]) -> list[FrameResult]:
        """
        Hands in several images at once, each advancing its own stream state.

        Palm detector inputs of all frames go to the runtime in one call, all hand ROIs in
        another. Two frames of one batch must not share a state.
        """
        states = [id(f.state) for f in frames]
        if len(set(states)) != len(states):
            raise ValueError('each frame of a batch needs its own TrackerState')
        opts = self.options
        rgbs = [to_rgb(f.image, f.pixel_format) for f in frames]
        detected = [f.state.should_detect() for f in frames]
        tracked = [[Candidate(t.roi, t.id) for t in f.state.tracks] if opts.tracking else []
                   for f in frames]
        candidates = frame_candidates(self.runtime, opts, rgbs, detected, tracked)
        hands = self.reader.landmarks(opts, rgbs, candidates)
        bodies = self._body_pass(frames, rgbs, candidates, hands)
        # Stream states advance only here, once every runtime call has succeeded.
        results = []
        for f, rgb, frame_hands, ran, poses in zip(frames, rgbs, hands, detected, bodies):
            if poses is not None:
                f.state.last_body_frame = f.state.frame_index
                f.state.body_rois = [p.next_roi for p in poses] if opts.tracking else []
            result = self._finish(f, rgb.shape, frame_hands, ran)
            result.bodies, result.body_pass_ran = poses or [], poses is not None
            results.append(result)
        return results

    def _body_pass(self, frames: Sequence[FrameInput], rgbs: list[np.ndarray],
                   candidates: list[list[Candidate]],
                   hands: list[list[tuple[HandResult, Roi]]]) -> list[list[BodyPose] | None]:
        """Run the body pass on the frames whose schedule asks for it (None elsewhere)."""
        run = [k for k, f in enumerate(frames) if f.state.should_run_body(len(hands[k]))]
        if not run:
            return [None] * len(frames)
        if self._body is None:
            self._body = BodyNetworks(self.runtime, self.options.base.model_dir or None)
        return body_pass(self._body, self.reader, self.options, rgbs, run,
                         [f.state.body_rois for f in frames], candidates, hands)

    def _finish(self, f: FrameInput, shape: tuple[int, ...],
                found: list[tuple[HandResult, Roi]], detected: bool) -> FrameResult:
        """Ids, duplicates and the hand limit, smoothing, skeleton, metric 3D and meaning."""
        opts, state = self.options, f.state
        if detected:
            state.last_detection_frame = state.frame_index
        if not opts.tracking:
            found = number_static(found, opts.roi_similarity, opts.max_num_hands,
                                  bool(opts.detection_tiles or opts.landmark_refinement))
        else:
            state.next_id = assign_ids(found, state.next_id)
            if opts.suppress_duplicates:
                found = drop_duplicates(found, opts.roi_similarity)
            found = oldest_first_limit(found, opts.max_num_hands)
            state.tracks = [Track(hand.id, next_roi) for hand, next_roi in found]
        hands = [hand for hand, _ in found]
        t = state.timestamp(f.timestamp)
        if opts.smoothing:
            state.smoother.smooth_hands(hands, t)
        if opts.skeleton_lock:
            for hand in hands:
                hand.world = state.skeletons.get(hand.id).update(hand.world, hand.score)
            state.skeletons.forget_except({hand.id for hand in hands})
        height, width = shape[:2]
        for hand in hands:
            hand.keypoint_in_image = keypoints_in_image(hand.keypoints, width, height)
        if f.camera is not None:
            scales = ((lambda track_id: state.skeletons.get(track_id).depth)
                      if opts.skeleton_lock else None)
            attach_camera_frames(hands, f.camera, (width, height), f.depth, opts.hand_scale,
                                 scales)
        changes = state.gestures.update(hands, opts.tracking) if state.gestures else []
        for hand in hands:
            attach_views(hand)
        held = (hold_lost(state.last_seen, hands, t, opts.hold_lost_s, opts.roi_similarity)
                if opts.tracking else [])
        state.frame_index += 1
        return FrameResult(width=width, height=height, hands=hands,
                           palm_detector_ran=detected,
                           gesture_changes=changes, held=held)
