"""
Fused hands over time: association, triangulation, tracks, scale, smoothing, fallback.

Per synchronized set of frames (`MultiViewFuser.process`):

1. every camera's hands are associated across views by geometry (association.py);
2. each group of two or more views is triangulated robustly (triangulation.py);
3. a camera's hand left alone is a duplicate when it lands on a fused hand's projection in
   that camera (dropped), else one camera's view of a hand: PnP (core/metric/metric3d.py)
   at the hand's size measured by triangulation on its track, so its range comes from
   geometry rather than from an assumed average hand (flagged `single_view`);
4. fused hands are matched to tracks by palm distance; each track votes the side over its
   views and frames, locks its scale (core/metric/scale.MedianScale of the triangulated palm
   size) and its skeleton (core/tracking/skeleton.SkeletonTrack: bone lengths from
   triangulation), and smooths with the pipeline's One Euro filter (core/tracking/smoothing).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
import logging

from hand_pose_ros.core.anatomy import FINGER_MCPS, HandLandmark, palm_size
from hand_pose_ros.core.fusion.association import associate, AssociationOptions
from hand_pose_ros.core.fusion.calibration import Rig
from hand_pose_ros.core.fusion.results import FusedHand, FusionResult, ViewHand
from hand_pose_ros.core.fusion.triangulation import triangulate, TriangulationOptions
from hand_pose_ros.core.metric.metric3d import CANONICAL_PALM_SIZE_M, solve_camera_frame
from hand_pose_ros.core.metric.scale import MedianScale
from hand_pose_ros.core.tracking.skeleton import SkeletonTrack
from hand_pose_ros.core.tracking.smoothing import OneEuroFilter, OneEuroParams
import numpy as np

LOG = logging.getLogger(__name__)

PALM = (HandLandmark.WRIST, *FINGER_MCPS)
NOMINAL_HAND_M = 0.1  # One Euro speeds in hand sizes, as the 2D pipeline's world landmarks


@dataclass
class FusionOptions:
    """How fusion behaves; the gates are fractions of each view's hand size in pixels."""

    association: AssociationOptions = field(default_factory=AssociationOptions)
    triangulation: TriangulationOptions = field(default_factory=TriangulationOptions)
    max_hands: int = 2  # fused hands reported per set (most views, then score, first)
    duplicate_gate: float = 0.5  # a lone hand this close to a fused hand's projection
    track_gate_m: float = 0.25  # palm-centre distance within which a hand continues a track
    track_memory_s: float = 0.5  # an unseen track is forgotten after this long
    single_view: bool = True  # PnP fallback for a hand only one camera sees
    single_view_new_tracks: bool = True  # ... also when no fused track knows it yet
    hand_scale: float = 1.0  # PnP scale before a track has measured its own
    smoothing: bool = True
    one_euro: OneEuroParams = field(default_factory=lambda: OneEuroParams(min_cutoff=0.5))
    skeleton_lock: bool = True
    skeleton_lock_frames: int = 10
    # Share of hand size at which a keypoint's agreement across views halves its confidence.
    confidence_tolerance: float = 0.1


@dataclass
class FusedTrack:
    """A fused hand followed over sets: id, side votes, scale and skeleton locks, filter."""

    id: int  # noqa: A003
    last_seen: float
    keypoints: np.ndarray  # (21, 3) latest world keypoints (after lock and smoothing)
    votes: dict[str, float] = field(default_factory=dict)
    scale: MedianScale = field(default_factory=lambda: MedianScale(10))
    skeleton: SkeletonTrack | None = None
    smoother: OneEuroFilter | None = None

    @property
    def palm_centre(self) -> np.ndarray:
        return self.keypoints[list(PALM)].mean(axis=0)


def _vote(votes: dict[str, float]) -> tuple[str, float]:
    total = sum(votes.values())
    if total <= 0.0:
        return '', 0.5
    side = max(votes, key=lambda k: votes[k])
    return side, max(0.5, votes[side] / total)


class MultiViewFuser:
    """Fuse synchronized sets of per-camera hands into world-frame hands with track ids."""

    def __init__(self, rig: Rig, options: FusionOptions | None = None) -> None:
        if len(rig) < 1:
            raise ValueError('fusion needs at least one calibrated camera')
        self.rig = rig
        self.options = options or FusionOptions()
        self.tracks: dict[int, FusedTrack] = {}
        self.next_id = 0

    def reset(self) -> None:
        self.tracks.clear()
        self.next_id = 0

    def process(self, views: Mapping[str, Sequence[ViewHand]] | Sequence[ViewHand],
                timestamp: float) -> FusionResult:
        """
        Fuse one synchronized set: {camera: its hands} (or a flat list of ViewHands).

        A camera absent from the set (no frame, no calibration) simply takes no part.
        """
        hands = list(views) if not isinstance(views, Mapping) else [
            h for cam in views for h in views[cam]]
        unknown = sorted({h.camera for h in hands} - set(self.rig))
        if unknown:
            LOG.warning('no calibration for cameras %s: left out', unknown)
            hands = [h for h in hands if h.camera in self.rig]
        hands = [h for h in hands if np.all(np.isfinite(h.keypoints[:, :2]))]
        normalized = [self.rig[h.camera].normalize(h.keypoints) for h in hands]
        groups = associate(hands, self.rig, normalized, self.options.association)
        result = FusionResult(timestamp=timestamp)
        fused: list[tuple[FusedHand, dict[str, float]]] = []
        singles = []
        for group in groups:
            if len(group) >= 2:
                fused.append(self._triangulate([hands[i] for i in group],
                                               [normalized[i] for i in group]))
            else:
                singles.append(group[0])
        lone = []
        for i in singles:
            if self._duplicate(hands[i], [f for f, _ in fused]):
                result.duplicates.append((hands[i].camera, hands[i].index))
            else:
                lone.append(i)
        fused.sort(key=lambda item: (-len(item[0].cameras), -item[0].score))
        matched = self._match_tracks([f for f, _ in fused], timestamp)
        out = []
        for (hand, votes), track in zip(fused, matched):
            out.append(self._update_track(hand, votes, track, timestamp, measured=True))
        if self.options.single_view:
            for i in lone:
                single = self._single_view(hands[i], timestamp, {t.id for t in matched if t})
                if single is None:
                    result.unfused.append((hands[i].camera, hands[i].index))
                else:
                    out.append(single)
        else:
            result.unfused += [(hands[i].camera, hands[i].index) for i in lone]
        out.sort(key=lambda h: (h.single_view, -len(h.cameras), -h.score))
        for extra in out[self.options.max_hands:]:
            result.unfused += list(extra.views.items())
        result.hands = out[:self.options.max_hands]
        live = {h.id for h in result.hands}
        for track_id in list(self.tracks):
            track = self.tracks[track_id]
            if track_id not in live and timestamp - track.last_seen > self.options.track_memory_s:
                del self.tracks[track_id]
        return result

    # -- triangulation -------------------------------------------------------------------
    def _triangulate(self, hands: list[ViewHand], normalized: list[np.ndarray]
                     ) -> tuple[FusedHand, dict[str, float]]:
        cams = [self.rig[h.camera] for h in hands]
        sizes = np.array([h.size for h in hands])
        weights = np.stack([np.full(21, max(h.score, 1e-3)) for h in hands])
        tri = triangulate(np.stack([c.pose for c in cams]), np.stack(normalized), weights,
                          [c.focal for c in cams], sizes, self.options.triangulation)
        names = [h.camera for h in hands]
        keypoint_cameras = [tuple(n for n, u in zip(names, tri.used[:, k]) if u)
                            for k in range(21)]
        rel = tri.keypoint_errors_px / sizes[:, None]
        with np.errstate(all='ignore'):
            agree = np.sqrt(np.nanmean(np.where(tri.used, rel, np.nan) ** 2, axis=0))
        scores = np.array([h.score for h in hands])
        used_score = (tri.used * scores[:, None]).sum(axis=0) / np.maximum(tri.used.sum(0), 1)
        tol = self.options.confidence_tolerance
        confidence = np.where(np.isfinite(agree),
                              used_score / (1.0 + (np.nan_to_num(agree) / tol) ** 2), 0.0)
        kept = tuple(n for n, k in zip(names, tri.kept) if k)
        votes: dict[str, float] = {}
        for h, k in zip(hands, tri.kept):
            if h.handedness and k:
                votes[h.handedness] = votes.get(h.handedness, 0.0) + h.score * h.handedness_score
        side, share = _vote(votes)
        hand = FusedHand(
            id=-1, handedness=side, handedness_score=share, keypoints_world=tri.points,
            keypoint_confidence=confidence, keypoint_cameras=keypoint_cameras,
            cameras=tuple(n for n in names if n in kept and any(n in kc
                                                                for kc in keypoint_cameras)),
            views={h.camera: h.index for h in hands},
            reprojection_error={n: float(e) for n, e in zip(names, tri.errors_px)},
            rejected_cameras=tuple(n for n in names if n not in kept),
            score=float(np.mean([h.score for h, k in zip(hands, tri.kept) if k])))
        return hand, votes

    def _duplicate(self, view: ViewHand, fused: list[FusedHand]) -> bool:
        """Tell whether the lone hand lies on a fused hand's projection into its camera."""
        cam = self.rig[view.camera]
        for hand in fused:
            if not np.all(np.isfinite(hand.keypoints_world[list(PALM)])):
                continue
            gaps = np.linalg.norm(cam.project(hand.keypoints_world) - view.keypoints[:, :2],
                                  axis=1)
            if not np.any(np.isfinite(gaps)):
                continue
            dist = np.nanmedian(gaps)
            if dist <= self.options.duplicate_gate * view.size:
                return True
        return False

    # -- tracks --------------------------------------------------------------------------
    def _match_tracks(self, hands: list[FusedHand], timestamp: float
                      ) -> list[FusedTrack | None]:
        """Greedy nearest palm centre within the gate; one track per hand."""
        pairs = []
        for i, hand in enumerate(hands):
            centre = np.nanmean(hand.keypoints_world[list(PALM)], axis=0)
            for track in self.tracks.values():
                d = float(np.linalg.norm(centre - track.palm_centre))
                if np.isfinite(d) and d <= self.options.track_gate_m:
                    pairs.append((d, i, track.id))
        pairs.sort()
        out: list[FusedTrack | None] = [None] * len(hands)
        taken = set()
        for _, i, track_id in pairs:
            if out[i] is None and track_id not in taken:
                out[i] = self.tracks[track_id]
                taken.add(track_id)
        return out

    def _new_track(self, timestamp: float, keypoints: np.ndarray) -> FusedTrack:
        o = self.options
        track = FusedTrack(id=self.next_id, last_seen=timestamp, keypoints=keypoints.copy(),
                           scale=MedianScale(o.skeleton_lock_frames))
        if o.skeleton_lock:
            track.skeleton = SkeletonTrack(o.skeleton_lock_frames, min_score=0.5)
        if o.smoothing:
            track.smoother = OneEuroFilter(o.one_euro)
        self.tracks[track.id] = track
        self.next_id += 1
        return track

    def _update_track(self, hand: FusedHand, votes: dict[str, float],
                      track: FusedTrack | None, timestamp: float, measured: bool) -> FusedHand:
        """Give the hand its track: id, voted side, scale, locked skeleton, smoothing."""
        points = hand.keypoints_world
        if track is None:
            track = self._new_track(timestamp, points)
        for side, weight in votes.items():
            track.votes[side] = track.votes.get(side, 0.0) + weight
        finite = bool(np.all(np.isfinite(points)))
        if measured and finite:
            track.scale.add(palm_size(points) / CANONICAL_PALM_SIZE_M)
        # Smoothing first, then the skeleton: the filter moves each keypoint on its own, so
        # only the skeleton applied last keeps the locked bone lengths exact.
        if track.smoother is not None and finite:
            points = track.smoother(points, timestamp, scale=NOMINAL_HAND_M)
        if measured and finite and track.skeleton is not None:
            points = track.skeleton.update(points, 1.0)
        if finite:
            track.keypoints = points
        track.last_seen = timestamp
        hand.id = track.id
        hand.keypoints_world = points
        side, share = _vote(track.votes)
        if side:
            hand.handedness, hand.handedness_score = side, share
        hand.hand_scale = track.scale.value or self.options.hand_scale
        hand.scale_locked = track.scale.ready
        hand.scale_triangulated = bool(track.scale.value)
        return hand

    # -- one camera ----------------------------------------------------------------------
    def _single_view(self, view: ViewHand, timestamp: float, taken: set[int]
                     ) -> FusedHand | None:
        """Solve a hand only one camera sees by PnP, at its track's triangulated scale."""
        if view.world is None:
            return None
        cam = self.rig[view.camera]
        track = None
        best = self.options.duplicate_gate * 2.0
        for candidate in self.tracks.values():
            if candidate.id in taken or not np.all(np.isfinite(candidate.keypoints)):
                continue
            gaps = np.linalg.norm(cam.project(candidate.keypoints) - view.keypoints[:, :2], axis=1)
            if not np.any(np.isfinite(gaps)):  # the track lies behind this camera
                continue
            dist = np.nanmedian(gaps) / view.size
            if dist < best:
                best, track = dist, candidate
        if track is None and not self.options.single_view_new_tracks:
            return None
        scale = track.scale.value if track is not None and track.scale.value else None
        frame = solve_camera_frame(view.keypoints[:, :2], view.world, cam.intrinsics,
                                   hand_scale=scale or self.options.hand_scale,
                                   image_size=(cam.width, cam.height),
                                   handedness=view.handedness or None)
        if not frame.valid:
            return None
        taken.add(track.id if track is not None else -1)
        votes = {view.handedness: view.score * view.handedness_score} if view.handedness else {}
        hand = FusedHand(
            id=-1, handedness=view.handedness, handedness_score=view.handedness_score,
            keypoints_world=cam.to_world(frame.keypoints),
            keypoint_confidence=np.full(21, 0.5 * view.score),
            keypoint_cameras=[(view.camera,)] * 21, cameras=(view.camera,),
            views={view.camera: view.index},
            reprojection_error={view.camera: float(frame.reprojection_error)},
            method='single_view', score=view.score)
        out = self._update_track(hand, votes, track, timestamp, measured=False)
        out.scale_locked = bool(track is not None and track.scale.ready)
        return out
