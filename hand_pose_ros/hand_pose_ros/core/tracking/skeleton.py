"""
One skeleton per tracked hand: bone lengths locked after the first confident frames.

The landmark model predicts each frame's metric hand afresh, so its bone lengths wander by
several per cent from frame to frame (the hand "breathes"), and a robot following the
camera-frame fingertips sees that as motion. A person's bones do not change length, so a
track measures them robustly over its first confident frames (median per bone) and then
rebuilds every later frame from those lengths: the palm (wrist and finger MCPs, which are
rigid) as one rigid body fitted to the frame's palm, and each finger chain from its base
outward along the directions the model predicts. Only lengths are imposed; every direction,
and so every joint angle, is still the network's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hand_pose_ros.core.anatomy import FINGER_CHAINS, FINGER_MCPS, HandLandmark
from hand_pose_ros.core.metric.scale import MedianScale
import numpy as np

# The rigid palm: wrist and the four finger MCPs (the thumb CMC moves with the thumb).
RIGID_PALM = (HandLandmark.WRIST, *FINGER_MCPS)
# Finger chains rebuilt outward, each (parent, child) in order: the thumb hangs from the
# wrist, the other fingers from their MCPs.
CHAIN_BONES: tuple[tuple[int, int], ...] = (
    (HandLandmark.WRIST, HandLandmark.THUMB_CMC),
    *((a, b) for chain in FINGER_CHAINS for a, b in zip(chain, chain[1:])))
# Every bone drawn in HAND_CONNECTIONS plus the palm's cross links: what "bone length CV"
# is measured over.
MEASURED_BONES: tuple[tuple[int, int], ...] = CHAIN_BONES + (
    (0, 5), (0, 9), (0, 13), (0, 17), (5, 9), (9, 13), (13, 17))


def bone_lengths(points: np.ndarray, bones: tuple[tuple[int, int], ...] = MEASURED_BONES
                 ) -> np.ndarray:
    """Lengths (..., B) of `bones` in a (..., 21, 3) keypoint array."""
    p = np.asarray(points, dtype=np.float64)
    parents = [a for a, _ in bones]
    children = [b for _, b in bones]
    return np.linalg.norm(p[..., children, :] - p[..., parents, :], axis=-1)


def bone_length_cv(track: np.ndarray) -> float:
    """Mean over bones of std / mean of each bone's length along a (T, 21, 3) track."""
    lengths = bone_lengths(track)
    mean = lengths.mean(axis=0)
    return float(np.mean(lengths.std(axis=0) / np.maximum(mean, 1e-12)))


def _kabsch(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotation and translation (no scale) moving `src` points onto `dst` (least squares)."""
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    u, _, vt = np.linalg.svd((dst - mu_d).T @ (src - mu_s))
    sign = np.eye(3)
    sign[2, 2] = np.sign(np.linalg.det(u @ vt)) or 1.0
    rot = u @ sign @ vt
    return rot, mu_d - mu_s @ rot.T


@dataclass
class Skeleton:
    """A hand's locked geometry: the rigid palm's shape and the finger bone lengths."""

    palm: np.ndarray  # (5, 3) RIGID_PALM joints, metres, centred on their mean
    lengths: np.ndarray  # (len(CHAIN_BONES),) metres

    @classmethod
    def from_frames(cls, frames: np.ndarray) -> Skeleton:
        """Robust skeleton of (N, 21, 3) frames: per-bone medians, median aligned palm."""
        frames = np.asarray(frames, dtype=np.float64)
        lengths = np.median(bone_lengths(frames, CHAIN_BONES), axis=0)
        palms = frames[:, list(RIGID_PALM)]
        ref = palms[0] - palms[0].mean(axis=0)
        aligned = []
        for palm in palms:
            rot, shift = _kabsch(palm, ref)
            aligned.append(palm @ rot.T + shift)
        palm = np.median(np.asarray(aligned), axis=0)
        return cls(palm=palm - palm.mean(axis=0), lengths=lengths)

    def apply(self, points: np.ndarray) -> np.ndarray:
        """
        `points` (21, 3) rebuilt with this skeleton, keeping their directions.

        The palm template is fitted rigidly onto the frame's palm (so the palm keeps the
        frame's orientation and centre), then each chain bone keeps the frame's direction
        with the locked length. The result is re-centred like the input (MCP mean kept).
        """
        p = np.asarray(points, dtype=np.float64)
        out = np.empty_like(p)
        palm_idx = list(RIGID_PALM)
        rot, shift = _kabsch(self.palm, p[palm_idx])
        out[palm_idx] = self.palm @ rot.T + shift
        for (parent, child), length in zip(CHAIN_BONES, self.lengths):
            d = p[child] - p[parent]
            norm = float(np.linalg.norm(d))
            if norm < 1e-12:  # a collapsed bone keeps the palm's pointing direction
                d, norm = out[parent] - out[HandLandmark.WRIST], max(float(np.linalg.norm(
                    out[parent] - out[HandLandmark.WRIST])), 1e-12)
            out[child] = out[parent] + d * (length / norm)
        mcps = list(FINGER_MCPS)
        return out - out[mcps].mean(axis=0) + p[mcps].mean(axis=0)


@dataclass
class SkeletonTrack:
    """
    Per-track lock of the skeleton and, with depth, of the hand scale.

    Until `frames_needed` confident frames are in, each frame is rebuilt with the median
    skeleton of the confident frames so far (so even the first frames barely breathe); then
    that skeleton is locked for the rest of the track. Depth scale ratios are collected and
    locked the same way (metric/scale.py).
    """

    frames_needed: int
    min_score: float
    samples: list[np.ndarray] = field(default_factory=list)
    skeleton: Skeleton | None = None
    depth: MedianScale = field(init=False)

    def __post_init__(self) -> None:
        self.depth = MedianScale(self.frames_needed)

    @property
    def locked(self) -> bool:
        return self.skeleton is not None

    @property
    def depth_locked(self) -> bool:
        return self.depth.locked

    @property
    def depth_scale(self) -> float | None:
        """Median hand-size factor measured so far (locked once `depth_locked`)."""
        return self.depth.value

    def add_depth_ratio(self, ratio: float | None) -> None:
        self.depth.add(ratio)

    def configure(self, frames_needed: int) -> None:
        """Take a live change of skeleton_lock_frames (for the skeleton and the scale)."""
        self.frames_needed = self.depth.frames_needed = frames_needed

    def update(self, world: np.ndarray, score: float) -> np.ndarray:
        """Rebuild this frame's world landmarks with the track's (provisional) skeleton."""
        if self.skeleton is not None:
            return self.skeleton.apply(world)
        if score >= self.min_score and np.all(np.isfinite(world)):
            self.samples.append(np.asarray(world, dtype=np.float64).copy())
        if not self.samples:
            return world
        skeleton = Skeleton.from_frames(np.asarray(self.samples))
        if len(self.samples) >= self.frames_needed:
            self.skeleton, self.samples = skeleton, []
        return skeleton.apply(world)


class SkeletonLocks:
    """SkeletonTrack per track id; ended tracks are forgotten (a new id measures anew)."""

    def __init__(self, frames_needed: int, min_score: float = 0.8):
        self.frames_needed = frames_needed
        self.min_score = min_score
        self.tracks: dict[int, SkeletonTrack] = {}

    def get(self, track_id: int) -> SkeletonTrack:
        if track_id not in self.tracks:
            self.tracks[track_id] = SkeletonTrack(self.frames_needed, self.min_score)
        return self.tracks[track_id]

    def configure(self, frames_needed: int) -> None:
        """Take a live change of skeleton_lock_frames, for new and live tracks alike."""
        self.frames_needed = frames_needed
        for track in self.tracks.values():
            track.configure(frames_needed)

    def forget_except(self, live_ids: set[int]) -> None:
        for track_id in list(self.tracks):
            if track_id not in live_ids:
                del self.tracks[track_id]
