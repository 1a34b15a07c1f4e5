"""
HandTracker: the MediaPipe Hands pipeline (palm detector + landmark model) on any runtime.

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

Landmark refinement (``landmark_refinement``, 2 passes by default in static mode): each hand
is read again from the ROI of its own landmarks, the ROI tracking would use on the next
frame and the kind the landmark model is trained on, so a photo gets the accuracy a tracked
hand has. Every pass is one more batched landmark call.

Body-guided hand ROIs (``body_rois``, off by default; core/body.py): while fewer than
max_num_hands hands are found, the pose pipeline looks for people and MediaPipe Holistic's
hand ROI at each visible wrist; those no palm or track covers go through the landmark
model, and each hand near a body wrist takes the body's anatomical side (handedness_source).

Batching: all ROIs of a frame, and of every frame given to process_batch (one per camera
or stream, each with its own TrackerState), go through the landmark model in one runtime
call, and all palm detector inputs in another, so a GPU runtime can batch across cameras.
"""

from __future__ import annotations

from collections.abc import Sequence
import dataclasses
from dataclasses import dataclass
import logging
import weakref

from hand_pose_ros.core.body import (
    BodyNetworks,
    BodyPose,
    HAND_POSE_LANDMARKS,
    WRIST_MIN_VISIBILITY,
)
from hand_pose_ros.core.depth import depth_to_metres
from hand_pose_ros.core.doubtful import (
    EXTRA_MIN_PRESENCE,
    jumped,
    keypoint_box,
    nested,
    NESTED_CONFIDENT,
)
from hand_pose_ros.core.gestures import GestureRecognizer
from hand_pose_ros.core.image import to_rgb
from hand_pose_ros.core.landmarks import project_landmarks, rotate_world
from hand_pose_ros.core.metric3d import measure_hand_scale, solve_camera_frame
from hand_pose_ros.core.models import LANDMARK_INPUT_SIZE, PALM_INPUT_SIZE
from hand_pose_ros.core.options import SETTINGS, TrackerOptions
from hand_pose_ros.core.palm import detect_palms
from hand_pose_ros.core.results import (
    CameraIntrinsics,
    FrameResult,
    HandResult,
    Method3D,
    Roi,
    ScaleSource,
)
from hand_pose_ros.core.roi import (
    full_image_roi,
    roi_affine,
    roi_from_detection,
    roi_from_landmarks,
    roi_iou,
)
from hand_pose_ros.core.runtimes import create_runtime
from hand_pose_ros.core.runtimes.base import Runtime
from hand_pose_ros.core.skeleton import SkeletonLocks
from hand_pose_ros.core.smoothing import LandmarkSmoother, OneEuroParams
from hand_pose_ros.core.tiles import detection_tiles, new_palms
import numpy as np

_LOG = logging.getLogger(__name__)

# MediaPipe's handedness label for the same hand seen the other way round: its selfie
# (mirrored) label and the anatomical one are opposite. Shared with mediapipe_tracker.
OTHER_HAND = {'Left': 'Right', 'Right': 'Left'}


@dataclass
class Track:
    """A tracked hand: its stable id and the ROI to read it from in the next frame."""

    id: int  # noqa: A003 (the track id, named like HandResult.id)
    roi: Roi


@dataclass
class Candidate:
    """A ROI to run the landmark model on this frame; id None for a new detection."""

    roi: Roi
    id: int | None  # noqa: A003 (the track id, named like HandResult.id)
    # Found by an extra detector view (tiles), not MediaPipe's single view: such a hand must
    # pass the checks of core/doubtful.py (check_extra_hands).
    extra: bool = False


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
        self.skeletons.frames_needed = options.skeleton_lock_frames
        for track in self.skeletons.tracks.values():
            track.frames_needed = options.skeleton_lock_frames

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


@dataclass
class FrameInput:
    """One image of a batch, with the stream state it belongs to."""

    image: np.ndarray
    state: TrackerState
    pixel_format: str = 'rgb'
    camera: CameraIntrinsics | None = None
    depth: np.ndarray | None = None
    timestamp: float | None = None  # seconds; None = frame_index / default_fps


def associate(candidates: list[Candidate], similarity: float) -> list[Candidate]:
    """
    Run MediaPipe's AssociationNormRectCalculator over candidates in priority order.

    Each element replaces every earlier one it overlaps (IoU > similarity), so tracked hands
    (listed after detections) win over new detections. The winner takes the oldest id of
    the group (MediaPipe takes the last; it exposes no ids, so only geometry must match).
    """
    result: list[Candidate] = []
    for cand in candidates:
        new_id = cand.id
        kept = []
        for prev in result:
            if roi_iou(cand.roi, prev.roi) > similarity:
                if prev.id is not None and (new_id is None or prev.id < new_id):
                    new_id = prev.id
            else:
                kept.append(prev)
        kept.append(Candidate(cand.roi, new_id))
        result = kept
    return result


class HandTracker:
    """Image in, hands out. One default stream for process(); more via process_batch()."""

    def __init__(self, options: TrackerOptions | None = None, runtime: Runtime | None = None):
        self.options = options or TrackerOptions()
        base = self.options.base
        self.runtime = runtime or create_runtime(
            base.runtime, base.model, base.device, base.num_threads, base.precision,
            model_dir=base.model_dir or None)
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
        rgbs = [to_rgb(f.image, f.pixel_format) for f in frames]
        detected = [f.state.should_detect() for f in frames]
        candidates = self._candidates(frames, rgbs, detected)
        hands = self._landmarks(rgbs, candidates)
        bodies = self._body_pass(frames, rgbs, candidates, hands)
        # Stream states advance only here, once every runtime call has succeeded.
        results = []
        for f, rgb, frame_hands, ran, poses in zip(frames, rgbs, hands, detected, bodies):
            if poses is not None:
                f.state.last_body_frame = f.state.frame_index
                f.state.body_rois = [p.next_roi for p in poses] if self.options.tracking else []
            result = self._finish(f, rgb.shape, frame_hands, ran)
            result.bodies, result.body_pass_ran = poses or [], poses is not None
            results.append(result)
        return results

    def _body_networks(self) -> BodyNetworks:
        if self._body is None:
            base = self.options.base
            self._body = BodyNetworks(self.runtime, base.num_threads, base.model_dir or None)
        return self._body

    def _body_pass(self, frames: Sequence[FrameInput], rgbs: list[np.ndarray],
                   candidates: list[list[Candidate]],
                   hands: list[list[tuple[HandResult, Roi]]]) -> list[list[BodyPose] | None]:
        """
        Add the hands that body wrists lead to and label every hand near a body wrist.

        body_rois: per frame the people found (None where the pass did not run).

        Body hands go after the palm ones, only where no candidate ROI or found hand covers
        the wrist, and only up to max_num_hands hands in all: the pass only adds hands.
        """
        opts = self.options
        run = [k for k, f in enumerate(frames) if f.state.should_run_body(len(hands[k]))]
        out: list[list[BodyPose] | None] = [None] * len(frames)
        if not run:
            return out
        net = self._body_networks()
        items = []
        for k in run:
            rois = list(frames[k].state.body_rois)
            if len(rois) < opts.max_bodies:
                rois += [r for r in net.detect(rgbs[k], opts.max_bodies)
                         if all(roi_iou(r, t) <= opts.roi_similarity for t in rois)]
            items += [(k, r) for r in rois[:opts.max_bodies]]
        for k in run:
            out[k] = []
        for (k, _), pose in zip(items, net.landmarks(rgbs, items)):
            # Two tracked ROIs that converged on one person keep the first.
            if pose is not None and all(roi_iou(pose.next_roi, p.next_roi) <= opts.roi_similarity
                                        for p in out[k] or []):
                out[k].append(pose)
        body_hands = net.hands(rgbs, [(k, p) for k in run for p in out[k] or []])
        extra: list[list[Candidate]] = [[] for _ in frames]
        for k, bh in body_hands:
            taken = [c.roi for c in candidates[k] + extra[k]]
            near = [hand for hand, _ in hands[k] if _wrist_distance(hand, bh.wrist) < 0.5 *
                    bh.roi.width]
            if not near and all(roi_iou(bh.roi, r) <= opts.roi_similarity for r in taken):
                extra[k].append(Candidate(bh.roi, None))
        for k, found in enumerate(self._landmarks(rgbs, extra)):
            for hand, next_roi in found:
                if len(hands[k]) >= opts.max_num_hands:
                    break
                roi = roi_from_landmarks(hand.keypoints)
                if all(roi_iou(roi, roi_from_landmarks(h.keypoints)) <= opts.roi_similarity
                       for h, _ in hands[k]):
                    hand.found_by = 'body'
                    hands[k].append((hand, next_roi))
        for k in run:
            _label_sides([h for h, _ in hands[k]], out[k] or [], opts.mirrored)
        return out

    def _candidates(self, frames: Sequence[FrameInput], rgbs: list[np.ndarray],
                    detected: list[bool]) -> list[list[Candidate]]:
        """Per frame, the ROIs to read landmarks from: new detections merged with tracks."""
        opts = self.options
        detect = [k for k, ran in enumerate(detected) if ran]
        detections: dict[int, list] = {}
        if detect:
            transforms = np.stack([
                roi_affine(full_image_roi(rgbs[k].shape[1], rgbs[k].shape[0]),
                           PALM_INPUT_SIZE)[0]
                for k in detect])
            out = self.runtime.palm_detection([rgbs[k] for k in detect], transforms)
            for row, k in enumerate(detect):
                detections[k] = detect_palms(
                    out.boxes[row], out.scores[row], transforms[row],
                    opts.min_detection_confidence, opts.max_num_hands)
        per_frame = []
        for k, f in enumerate(frames):
            cands = [Candidate(roi_from_detection(d), None) for d in detections.get(k, [])]
            if opts.tracking:
                cands += [Candidate(t.roi, t.id) for t in f.state.tracks]
            # Also in static mode: MediaPipe merges overlapping detection ROIs (the later,
            # lower-scored one wins), and parity with it needs the same choice.
            cands = associate(cands, opts.roi_similarity)
            per_frame.append(cands)
        if opts.detection_tiles:
            self._add_tile_candidates(rgbs, detect, detections, per_frame)
        return per_frame

    def _add_tile_candidates(self, rgbs: list[np.ndarray], detect: list[int],
                             detections: dict[int, list], per_frame: list[list[Candidate]],
                             ) -> None:
        """
        Look in detection tiles for the hands the whole-image view missed (core/tiles.py).

        Only frames with fewer than max_num_hands candidates are tiled, all their tiles in
        one detector call. New candidates go after the others, so tracked hands and the
        single view's detections win every overlap and keep their ids. Up to max_num_hands
        of them are kept (a tile's false palm is then rejected by the landmark model's
        presence score without costing a real hand its place); the cap on hands is applied
        after the landmark model.
        """
        opts = self.options
        jobs = []
        for k in detect:
            if len(per_frame[k]) < opts.max_num_hands:
                tiles = detection_tiles(rgbs[k].shape[1], rgbs[k].shape[0], opts.detection_tiles)
                if tiles:
                    jobs.append((k, tiles))
        if not jobs:
            return
        index = np.array([j for j, (_, tiles) in enumerate(jobs) for _ in tiles])
        transforms = np.stack([roi_affine(tile, PALM_INPUT_SIZE)[0]
                               for _, tiles in jobs for tile in tiles])
        out = self.runtime.palm_detection([rgbs[k] for k, _ in jobs], transforms, index,
                                          variant=opts.tile_detector)
        row = 0
        for k, tiles in jobs:
            per_tile = [detect_palms(out.boxes[row + i], out.scores[row + i],
                                     transforms[row + i], opts.min_detection_confidence,
                                     opts.max_num_hands)
                        for i in range(len(tiles))]
            row += len(tiles)
            height, width = rgbs[k].shape[:2]
            added: list[Candidate] = []
            for palm in new_palms(detections.get(k, []), per_tile, tiles, width, height):
                roi = roi_from_detection(palm)
                if all(roi_iou(roi, c.roi) <= opts.roi_similarity
                       for c in per_frame[k] + added):
                    added.append(Candidate(roi, None, extra=True))
            per_frame[k] += added[:opts.max_num_hands]

    def _landmarks(
        self, rgbs: list[np.ndarray], candidates: list[list[Candidate]]
    ) -> list[list[tuple[HandResult, Roi]]]:
        """
        Run every ROI of every frame through the landmark model in one call.

        Then each refinement pass (options.landmark_refinement) takes one more call.
        """
        flat = [(k, c) for k, cands in enumerate(candidates) for c in cands]
        found = self._read_hands(rgbs, flat)
        active = [i for i, hand in enumerate(found) if hand is not None]
        for _ in range(self.options.landmark_refinement):
            if not active:
                break
            refined = self._read_hands(rgbs, [
                (flat[i][0], Candidate(roi_from_landmarks(found[i].keypoints), flat[i][1].id))
                for i in active])
            # A pass that loses the hand (e.g. a crop pushed past the image edge) or jumps
            # onto another hand keeps the previous pass and stops refining that hand.
            if self.options.check_extra_hands:
                refined = self._stop_jumps(flat, found, active, refined)
            for i, hand in zip(active, refined):
                if hand is not None:
                    found[i] = hand
            active = [i for i, hand in zip(active, refined) if hand is not None]
        if self.options.check_extra_hands:
            self._reject_doubtful(flat, found)
        hands: list[list[tuple[HandResult, Roi]]] = [[] for _ in rgbs]
        tracking = self.options.tracking
        for (frame_k, _), hand in zip(flat, found):
            if hand is not None:
                next_roi = roi_from_landmarks(hand.keypoints) if tracking else hand.roi
                hands[frame_k].append((hand, next_roi))
        return hands

    @staticmethod
    def _stop_jumps(flat: list[tuple[int, Candidate]], found: list[HandResult | None],
                    active: list[int], refined: list[HandResult | None],
                    ) -> list[HandResult | None]:
        """
        None for each refined read whose ROI jumped onto another hand of its frame.

        Where hands overlap, a read from a ROI that covers part of the hand behind can lock
        onto that hand; its landmarks then describe the wrong hand (seen flipping a
        gesture). Such a pass is treated like one that lost the hand.
        """
        rois = {i: roi_from_landmarks(hand.keypoints)
                for i, hand in enumerate(found) if hand is not None}
        out = list(refined)
        for n, (i, hand) in enumerate(zip(active, refined)):
            if hand is None:
                continue
            others = [roi for j, roi in rois.items() if j != i and flat[j][0] == flat[i][0]]
            if jumped(rois[i], roi_from_landmarks(hand.keypoints), others):
                out[n] = None
        return out

    @staticmethod
    def _reject_doubtful(flat: list[tuple[int, Candidate]],
                         found: list[HandResult | None]) -> None:
        """
        Drop (set None) the extra-view hands that are likely false.

        Those with a weak presence score (false hands on faces and bodies), or nested in
        another hand unless the landmark model is very sure (core/doubtful.py says why).

        Single-view hands are never dropped here, so MediaPipe's hands stay as they are;
        extra hands are judged most confident first, each against the hands kept so far.
        """
        order = sorted(range(len(found)), key=lambda i: (
            flat[i][1].extra, -(found[i].score if found[i] is not None else 0.0)))
        kept: dict[int, list[tuple[float, float, float, float]]] = {}
        for i in order:
            hand = found[i]
            if hand is None:
                continue
            frame_k, cand = flat[i]
            box = keypoint_box(hand.keypoints)
            if cand.extra and (
                    hand.score < EXTRA_MIN_PRESENCE
                    or (hand.score < NESTED_CONFIDENT and nested(box, kept.get(frame_k, [])))):
                _LOG.debug('dropped a doubtful extra hand (presence %.3f)', hand.score)
                found[i] = None
                continue
            kept.setdefault(frame_k, []).append(box)

    def _read_hands(self, rgbs: list[np.ndarray], items: list[tuple[int, Candidate]]
                    ) -> list[HandResult | None]:
        """One landmark-model call over (frame index, ROI) items; None where no hand is."""
        if not items:
            return []
        image_index = np.array([k for k, _ in items], dtype=np.int64)
        samplings = [roi_affine(c.roi, LANDMARK_INPUT_SIZE) for _, c in items]
        affines = np.stack([affine for affine, _ in samplings])
        out = self.runtime.hand_landmarks(rgbs, image_index, affines)
        hands: list[HandResult | None] = []
        for k, (_, cand) in enumerate(items):
            # A non-finite output (a broken runtime or model) drops that crop, not the batch.
            if not (out.presence[k] >= self.options.min_tracking_confidence
                    and np.isfinite(out.landmarks[k]).all()
                    and np.isfinite(out.world[k]).all()):
                hands.append(None)
                continue
            hands.append(self._hand(cand, out.landmarks[k], out.world[k],
                                    float(out.presence[k]), float(out.handedness[k]),
                                    samplings[k][1]))
        return hands

    def _hand(self, cand: Candidate, raw: np.ndarray, world: np.ndarray, presence: float,
              p_left: float, padding: np.ndarray) -> HandResult:
        # MediaPipe 0.10.21 reports the model's handedness output p as the score of 'Left'
        # (p > 0.5) else 'Right' with 1 - p; its golden outputs confirm this reading.
        raw_label = 'Left' if p_left > 0.5 else 'Right'
        label_score = p_left if p_left > 0.5 else 1.0 - p_left
        anatomical = raw_label if self.options.mirrored else OTHER_HAND[raw_label]
        return HandResult(
            id=-1 if cand.id is None else cand.id,
            handedness=anatomical.lower(), handedness_score=label_score,
            raw_handedness=raw_label, score=presence,
            keypoints=project_landmarks(raw, cand.roi, padding),
            world=rotate_world(world, cand.roi.rotation), roi=cand.roi)

    def _finish(self, f: FrameInput, shape: tuple[int, ...],
                found: list[tuple[HandResult, Roi]], detected: bool) -> FrameResult:
        """Ids, duplicate suppression, next ROIs, smoothing, metric 3D and gestures."""
        opts, state = self.options, f.state
        if detected:
            state.last_detection_frame = state.frame_index
        if not opts.tracking:
            if opts.detection_tiles or opts.landmark_refinement:
                # Tile hands come last: one that duplicates an earlier hand (judged by the
                # landmarks' ROIs, as in tracking) or exceeds max_num_hands is dropped. The
                # same check catches two refined ROIs that converged on one hand.
                found = [(hand, roi_from_landmarks(hand.keypoints)) for hand, _ in found]
                for index, (hand, _) in enumerate(found):
                    hand.id = index
                found = _drop_duplicates(found, opts.roi_similarity)[:opts.max_num_hands]
            for index, (hand, _) in enumerate(found):
                hand.id = index
        else:
            for hand, _ in found:
                if hand.id < 0:
                    hand.id = state.next_id
                    state.next_id += 1
            if opts.suppress_duplicates:
                found = _drop_duplicates(found, opts.roi_similarity)
            found = _oldest_first_limit(found, opts.max_num_hands)
            state.tracks = [Track(hand.id, next_roi) for hand, next_roi in found]
        hands = [hand for hand, _ in found]
        t = f.timestamp if f.timestamp is not None else state.frame_index / opts.default_fps
        if opts.smoothing:
            self._smooth(state, hands, t)
        if opts.skeleton_lock:
            for hand in hands:
                hand.world = state.skeletons.get(hand.id).update(hand.world, hand.score)
            state.skeletons.forget_except({hand.id for hand in hands})
        height, width = shape[:2]
        for hand in hands:
            hand.keypoint_in_image = keypoints_in_image(hand.keypoints, width, height)
        if f.camera is not None:
            if opts.skeleton_lock:
                self._attach_locked(state, hands, f, (width, height))
            else:
                attach_camera_frames(hands, f.camera, (width, height), f.depth,
                                     opts.hand_scale)
        changes = state.gestures.update(hands, opts.tracking) if state.gestures else []
        held = self._hold(state, hands, t) if opts.tracking else []
        state.frame_index += 1
        return FrameResult(width=width, height=height, hands=hands,
                           palm_detector_ran=detected,
                           gesture_changes=changes, held=held)

    def _attach_locked(self, state: TrackerState, hands: list[HandResult], f: FrameInput,
                       image_size: tuple[int, int]) -> None:
        """
        Camera-frame 3D at one hand scale per track (skeleton_lock).

        With depth, each frame's measured hand-size factor is collected until the track
        locks its median (core/skeleton.py); the hand is then fitted by PnP at that scale
        instead of being rescaled to every frame's depth, which would make it breathe with
        the depth noise. Without depth the hand_scale setting applies.
        """
        opts = self.options
        depth_m = None
        if f.depth is not None:
            depth_m = depth_to_metres(f.depth)
            if depth_m.shape != (image_size[1], image_size[0]):
                raise ValueError(
                    f'depth image is {depth_m.shape[1]}x{depth_m.shape[0]} but the colour '
                    f'image is {image_size[0]}x{image_size[1]}: depth must be registered '
                    'to colour')
        for hand in hands:
            track = state.skeletons.get(hand.id)
            if depth_m is not None and not track.depth_locked:
                track.add_depth_ratio(measure_hand_scale(
                    hand.keypoints[:, :2], hand.world, f.camera, depth_m))
            scale = track.depth_scale
            source = ScaleSource.DEPTH
            if scale is None:
                scale, source = opts.hand_scale, _setting_scale_source(opts.hand_scale)
            hand.camera = solve_camera_frame(
                hand.keypoints[:, :2], hand.world, f.camera, hand_scale=scale,
                image_size=image_size, handedness=hand.handedness)
            if source is ScaleSource.DEPTH and hand.camera.valid:
                hand.camera.method = Method3D.DEPTH
            hand.hand_scale, hand.scale_source = scale, source

    def _hold(self, state: TrackerState, hands: list[HandResult], t: float
              ) -> list[HandResult]:
        """
        Lost hands to repeat, stale, for up to hold_lost_s after they were last seen.

        A robot servoing on a hand must not see it vanish for a one-frame dropout, nor jump
        to zeros: it gets the last valid pose, flagged, with its age, and can decide. A held
        hand is dropped early when a live hand takes its place (ROI overlap).
        """
        opts = self.options
        live = {hand.id for hand in hands}
        for hand in hands:
            state.last_seen[hand.id] = (hand, t)
        held = []
        for track_id, (hand, seen) in list(state.last_seen.items()):
            if track_id in live:
                continue
            age = t - seen
            replaced = any(roi_iou(hand.roi, other.roi) > opts.roi_similarity
                           for other in hands)
            if age > opts.hold_lost_s or replaced:
                del state.last_seen[track_id]
                continue
            held.append(dataclasses.replace(hand, stale=True, age=age))
        return held

    def _smooth(self, state: TrackerState, hands: list[HandResult], t: float) -> None:
        for hand in hands:
            size = float(np.ptp(hand.keypoints[:, :2], axis=0).max())
            hand.keypoints, hand.world = state.smoother.smooth(
                hand.id, hand.keypoints, hand.world, t, size)
        state.smoother.forget_except({hand.id for hand in hands})


def _wrist_distance(hand: HandResult, point: np.ndarray) -> float:
    return float(np.hypot(*(hand.keypoints[0, :2] - point)))


def _label_sides(hands: list[HandResult], poses: list[BodyPose], mirrored: bool) -> None:
    """
    Give each hand whose wrist lies near a visible body wrist that body's side.

    Near: within half the hand's size (its landmark extent). The pose model names the
    person's anatomical sides as seen by an unmirrored camera, so a mirrored image swaps
    them. A corrected hand's handedness_score is the pose wrist visibility (>= 0.5).
    """
    wrists = [(side if not mirrored else OTHER_HAND[side.title()].lower(),
               pose.keypoints[w, :2], float(pose.visibility[w]))
              for pose in poses for side, (w, _, _) in HAND_POSE_LANDMARKS.items()
              if pose.visibility[w] > WRIST_MIN_VISIBILITY]
    for hand in hands:
        size = float(np.ptp(hand.keypoints[:, :2], axis=0).max())
        best = min(wrists, key=lambda w: _wrist_distance(hand, w[1]), default=None)
        if best is None or _wrist_distance(hand, best[1]) > 0.5 * size:
            continue
        side, _, visibility = best
        if side == hand.handedness:
            hand.handedness_source = 'body'
        else:
            hand.handedness, hand.handedness_source = side, 'body_corrected'
            hand.handedness_score = max(0.5, visibility)


def keypoints_in_image(keypoints: np.ndarray, width: int, height: int) -> np.ndarray:
    """(21,) bool: each keypoint inside the image (outside ones are the model's guesses)."""
    x, y = keypoints[:, 0], keypoints[:, 1]
    return (x >= 0.0) & (x < width) & (y >= 0.0) & (y < height)


def attach_camera_frames(
    hands: list[HandResult], camera: CameraIntrinsics, image_size: tuple[int, int],
    depth: np.ndarray | None = None, hand_scale: float = 1.0,
) -> None:
    """
    Set hand.camera (metric 3D in the camera frame) for each hand.

    image_size is (width, height); depth must be registered to the colour image.
    """
    for hand in hands:
        hand.camera = solve_camera_frame(
            hand.keypoints[:, :2], hand.world, camera, depth=depth, hand_scale=hand_scale,
            image_size=image_size, handedness=hand.handedness)
        hand.hand_scale = hand.camera.scale_factor
        hand.scale_source = (ScaleSource.DEPTH if hand.camera.method is Method3D.DEPTH
                             else _setting_scale_source(hand_scale))


def _setting_scale_source(hand_scale: float) -> ScaleSource:
    """Name the source of a scale the hand_scale setting gives: the user, unless left at 1."""
    return ScaleSource.USER if hand_scale != 1.0 else ScaleSource.MODEL


def _drop_duplicates(
    found: list[tuple[HandResult, Roi]], similarity: float
) -> list[tuple[HandResult, Roi]]:
    """Keep one hand per overlapping next-ROI group: the oldest track (lowest id) wins."""
    kept: list[tuple[HandResult, Roi]] = []
    for hand, roi in sorted(found, key=lambda item: item[0].id):
        if all(roi_iou(roi, other) <= similarity for _, other in kept):
            kept.append((hand, roi))
    order = {id(hand): k for k, (hand, _) in enumerate(found)}
    return sorted(kept, key=lambda item: order[id(item[0])])


def _oldest_first_limit(
    found: list[tuple[HandResult, Roi]], max_hands: int
) -> list[tuple[HandResult, Roi]]:
    """
    At most max_hands hands, tracked ones (lower ids) before new ones, order kept.

    MediaPipe's graph can briefly report more hands than max_num_hands when new detections
    do not overlap the tracked hands; robot code relies on the bound.
    """
    if len(found) <= max_hands:
        return found
    keep = {id(hand) for hand, _ in sorted(found, key=lambda item: item[0].id)[:max_hands]}
    return [item for item in found if id(item[0]) in keep]
