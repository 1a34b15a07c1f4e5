"""
What fusion takes and gives: one camera's hand, and hands fused in the world frame.

Shaped like the rest of the core's results (core/results.py, MediaPipe Tasks' style): plain
dataclasses, one list of hands per synchronized set, no behaviour beyond small views.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from hand_pose_ros.core.results import HandResult
import numpy as np


@dataclass
class ViewHand:
    """One hand found in one camera's image of a synchronized set."""

    camera: str
    keypoints: np.ndarray  # (21, 2) image pixels (distorted, as the image shows them)
    score: float = 1.0  # presence, [0, 1]: the hand's weight in the triangulation
    handedness: str = ''  # 'left'/'right' as that camera's model read it ('' unknown)
    handedness_score: float = 1.0
    world: np.ndarray | None = None  # (21, 3) the model's metric hand (single-view PnP)
    index: int = 0  # the hand's position in that camera's list (or its per-camera id)

    @cached_property
    def size(self) -> float:
        """Hand size in pixels: the keypoints' larger bounding-box side (the gates' unit)."""
        return float(max(np.ptp(self.keypoints[:, :2], axis=0).max(), 1.0))

    @classmethod
    def from_hand(cls, camera: str, hand: HandResult, index: int | None = None) -> ViewHand:
        """Take a pipeline HandResult of camera `camera` as a fusion input."""
        return cls(camera=camera, keypoints=np.asarray(hand.keypoints, dtype=np.float64)[:, :2],
                   score=float(hand.score) if np.isfinite(hand.score) else 1.0,
                   handedness=hand.handedness, handedness_score=float(hand.handedness_score),
                   world=np.asarray(hand.world, dtype=np.float64),
                   index=hand.id if index is None else index)


@dataclass
class FusedHand:
    """
    One hand in the world frame, from every camera that saw it.

    `method` is 'triangulation' (two or more views) or 'single_view' (one camera's PnP at
    the scale its fused track measured by triangulation so far, `scale_triangulated`, locked
    or not yet: `scale_locked`; the hand_scale setting's for a hand no track knows).
    """

    id: int  # noqa: A003 (fused track id, as HandResult.id)
    handedness: str  # 'left'/'right', voted across views (and over the track's frames)
    handedness_score: float  # share of the vote, [0.5, 1]
    keypoints_world: np.ndarray  # (21, 3) metres, the calibration's world frame
    keypoint_confidence: np.ndarray  # (21,) [0, 1]
    keypoint_cameras: list[tuple[str, ...]]  # per keypoint, the cameras that contributed
    cameras: tuple[str, ...]  # cameras that contributed to any keypoint
    views: dict[str, int]  # every camera's hand associated with this one: camera -> index
    reprojection_error: dict[str, float]  # per associated camera, RMS pixels (kept or not)
    rejected_cameras: tuple[str, ...] = ()  # associated but dropped by the gate
    method: str = 'triangulation'
    hand_scale: float = 1.0  # palm size against core/metric's canonical palm
    scale_locked: bool = False
    scale_triangulated: bool = False  # hand_scale was measured from triangulated frames
    score: float = 1.0  # mean presence of the contributing views

    @property
    def single_view(self) -> bool:
        return self.method == 'single_view'

    @property
    def wrist(self) -> np.ndarray:
        return self.keypoints_world[0]


@dataclass
class FusionResult:
    """The hands of one synchronized set of frames."""

    timestamp: float
    hands: list[FusedHand] = field(default_factory=list)
    # Hands some camera found that fused into nothing: duplicates of a fused hand (camera,
    # index) and single-view hands left out (no track, or over max_hands).
    duplicates: list[tuple[str, int]] = field(default_factory=list)
    unfused: list[tuple[str, int]] = field(default_factory=list)
