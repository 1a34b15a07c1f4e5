"""
One Euro filtering of landmarks, to cut jitter for teleoperation without much lag.

The One Euro filter (Casiez et al., CHI 2012) is a low-pass whose cutoff rises with speed:
slow motion is smoothed hard (jitter gone), fast motion barely (lag stays small). Speeds are
measured in hand sizes per second so one set of parameters works for near and far hands.
"""

from __future__ import annotations

from dataclasses import dataclass
import math

from hand_pose_ros.core.results import HandResult
import numpy as np


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


@dataclass
class OneEuroParams:
    min_cutoff: float = 1.0  # Hz, cutoff at rest
    beta: float = 10.0  # cutoff increase per (scale unit / s) of speed
    d_cutoff: float = 1.0  # Hz, cutoff of the speed estimate


class OneEuroFilter:
    """One Euro filter over an array of any shape, each element filtered independently."""

    def __init__(self, params: OneEuroParams):
        self.params = params
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    def reset(self) -> None:
        self._x = self._dx = self._t = None

    def __call__(self, x: np.ndarray, t: float, scale: float = 1.0) -> np.ndarray:
        """Return the filtered value of sample `x` at time `t` (s); speed is divided by `scale`."""
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._t is None or t <= self._t:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x.copy()
        dt = t - self._t
        p = self.params
        dx = (x - self._x) / dt
        a_d = _alpha(p.d_cutoff, dt)
        self._dx = a_d * dx + (1 - a_d) * self._dx
        cutoff = p.min_cutoff + p.beta * np.abs(self._dx) / max(scale, 1e-9)
        a = _alpha(cutoff, dt)
        self._x = a * x + (1 - a) * self._x
        self._t = t
        return self._x.copy()


class LandmarkSmoother:
    """One Euro filters per track id for 2D keypoints (px) and world landmarks (m)."""

    def __init__(self, params: OneEuroParams):
        self.params = params
        self._filters: dict[int, tuple[OneEuroFilter, OneEuroFilter]] = {}

    def smooth(
        self, track_id: int, keypoints: np.ndarray, world: np.ndarray, t: float,
        hand_size_px: float,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return filtered (keypoints, world); a new id starts from its first sample unfiltered."""
        if track_id not in self._filters:
            self._filters[track_id] = (OneEuroFilter(self.params), OneEuroFilter(self.params))
        f2d, f3d = self._filters[track_id]
        # Pixels scaled by hand size; metres by a nominal 0.1 m hand.
        return f2d(keypoints, t, scale=hand_size_px), f3d(world, t, scale=0.1)

    def smooth_hands(self, hands: list[HandResult], t: float) -> None:
        """Filter each hand's keypoints and world landmarks in place; forget ended tracks."""
        for hand in hands:
            size = float(np.ptp(hand.keypoints[:, :2], axis=0).max())
            hand.keypoints, hand.world = self.smooth(hand.id, hand.keypoints, hand.world, t,
                                                     size)
        self.forget_except({hand.id for hand in hands})

    def forget_except(self, live_ids: set[int]) -> None:
        """Drop the filters of ended tracks so a reused slot never inherits old state."""
        for track_id in list(self._filters):
            if track_id not in live_ids:
                del self._filters[track_id]


def _similarity_align(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """`src` points moved onto `dst` by the least-squares similarity (Umeyama)."""
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(d.T @ s)
    sign = np.eye(src.shape[1])
    sign[-1, -1] = np.sign(np.linalg.det(u @ vt)) or 1.0
    rot = u @ sign @ vt
    scale = (sig * np.diag(sign)).sum() / max((s ** 2).sum(), 1e-12)
    return scale * s @ rot.T + mu_d


def shape_jitter(sequence: np.ndarray) -> float:
    """
    Jitter of a (T, K, D) keypoint track with whole-hand motion removed.

    The neighbours of each frame are aligned onto it by a similarity transform before the
    second difference, so a hand that moves, turns or approaches rigidly scores zero and
    what is left is the keypoints trembling relative to each other.
    """
    seq = np.asarray(sequence, dtype=np.float64)
    if len(seq) < 3:
        return 0.0
    acc = [
        _similarity_align(seq[t - 1], seq[t]) - 2 * seq[t] + _similarity_align(seq[t + 1], seq[t])
        for t in range(1, len(seq) - 1)]
    return float(np.linalg.norm(np.asarray(acc), axis=-1).mean())
