"""A small kinematic hand for the gesture tests: joint angles per finger -> 21 keypoints.

Adult bone lengths (metres) from anthropometric tables; the hand is built in a local frame
where the fingers point to image up (-y), the palm faces the camera (-z) and, for a right
hand, the thumb is on +x. A left hand is its mirror image (x -> -x). Keypoints are returned
in MediaPipe order, centred like the world landmarks (mean of the four finger MCPs at 0).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

# Finger MCP positions relative to the wrist, and segment lengths (proximal, middle, distal
# to the fingertip), index..pinky.
_MCP = np.array([[0.022, -0.082, 0.0], [0.002, -0.085, 0.0],
                 [-0.016, -0.080, 0.0], [-0.032, -0.070, 0.0]])
_SEGMENTS = ((0.039, 0.023, 0.019), (0.044, 0.027, 0.020),
             (0.041, 0.026, 0.020), (0.032, 0.019, 0.018))
_SPLAY_DEG = (8.0, 0.0, -7.0, -15.0)
_THUMB_CMC = np.array([0.018, -0.018, -0.008])
_THUMB_SEGMENTS = (0.043, 0.033, 0.027)  # metacarpal, proximal, distal to the tip
_PALM_OUT = np.array([0.0, 0.0, -1.0])  # right hand, local frame


@dataclass(frozen=True)
class Finger:
    """Flexion at MCP, PIP, DIP and extra sideways spread, degrees."""

    mcp: float = 5.0
    pip: float = 5.0
    dip: float = 3.0
    spread: float = 0.0


@dataclass(frozen=True)
class Thumb:
    """Thumb metacarpal direction (abduction from the fingers in the palm plane, palmar tilt
    out of it) and MCP / IP flexion, degrees."""

    abduction: float = 35.0
    palmar: float = 15.0
    mcp: float = 5.0
    ip: float = 5.0


STRAIGHT = Finger()
CURLED = Finger(85.0, 100.0, 55.0)
HALF = Finger(35.0, 45.0, 30.0)  # a finger neither extended nor curled
THUMB_OUT = Thumb()
THUMB_TUCKED = Thumb(abduction=5.0, palmar=50.0, mcp=40.0, ip=55.0)
THUMB_ALONG = Thumb(abduction=20.0, palmar=10.0, mcp=5.0, ip=5.0)  # thumbs-up thumb
THUMB_WIDE = Thumb(abduction=65.0, palmar=10.0, mcp=5.0, ip=5.0)


@dataclass(frozen=True)
class HandPose:
    thumb: Thumb = THUMB_OUT
    index: Finger = STRAIGHT
    middle: Finger = STRAIGHT
    ring: Finger = STRAIGHT
    pinky: Finger = STRAIGHT

    def with_(self, **kw) -> HandPose:
        return replace(self, **kw)


def _rad(deg: float) -> float:
    return float(np.radians(deg))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _finger(mcp: np.ndarray, lengths: tuple[float, ...], splay: float, f: Finger) -> list:
    base = np.array([np.sin(_rad(splay + f.spread)), -np.cos(_rad(splay + f.spread)), 0.0])
    points, p, angle = [mcp], mcp, 0.0
    for length, flex in zip(lengths, (f.mcp, f.pip, f.dip)):
        angle += _rad(flex)
        p = p + length * (np.cos(angle) * base + np.sin(angle) * _PALM_OUT)
        points.append(p)
    return points


def _thumb_chain(t: np.ndarray) -> np.ndarray:
    """Thumb CMC, MCP, IP, tip for N thumb poses (N, 4 degrees) at once: (N, 4, 3)."""
    a, p, f_mcp, f_ip = np.radians(np.atleast_2d(t)).T
    base = (np.stack([np.sin(a) * np.cos(p), -np.cos(a) * np.cos(p), np.zeros_like(a)], 1)
            + np.sin(p)[:, None] * _PALM_OUT)
    # The thumb flexes across the palm, toward the pinky side and the palm's front.
    toward = np.array([-0.7, 0.0, 0.0]) + 0.7 * _PALM_OUT
    bend = toward - (base @ toward)[:, None] * base
    bend /= np.linalg.norm(bend, axis=1, keepdims=True)
    cmc = np.broadcast_to(_THUMB_CMC, base.shape)
    mcp = cmc + _THUMB_SEGMENTS[0] * base
    ip = mcp + _THUMB_SEGMENTS[1] * (np.cos(f_mcp)[:, None] * base + np.sin(f_mcp)[:, None] * bend)
    angle = (f_mcp + f_ip)[:, None]
    tip = ip + _THUMB_SEGMENTS[2] * (np.cos(angle) * base + np.sin(angle) * bend)
    return np.stack([cmc, mcp, ip, tip], axis=1)


def thumb_reaching(target: np.ndarray) -> Thumb:
    """The thumb pose (5 degree grid) whose tip lands closest to `target` (right-hand local
    frame, unscaled): how the tests place a thumb on the fingers or at a pinch aperture."""
    lo, hi = np.array([-10.0, 0.0, 0.0, 0.0]), np.array([70.0, 80.0, 60.0, 80.0])
    best = (lo + hi) / 2
    for step, half in ((5.0, None), (1.0, 5.0)):  # coarse grid, then a 1 degree refinement
        a, b = (lo, hi) if half is None else (np.maximum(best - half, lo),
                                              np.minimum(best + half, hi))
        axes = [np.arange(a[i], b[i] + 1e-9, step) for i in range(4)]
        grid = np.stack(np.meshgrid(*axes, indexing='ij'), -1).reshape(-1, 4)
        tips = _thumb_chain(grid)[:, 3]
        best = grid[int(np.argmin(np.linalg.norm(tips - target, axis=1)))]
    return Thumb(*(float(v) for v in best))


def local_hand(pose: HandPose) -> np.ndarray:
    """(21, 3) keypoints of a right hand in the unscaled, uncentred local frame."""
    t = pose.thumb
    points = [np.zeros(3)] + list(_thumb_chain(np.array([t.abduction, t.palmar, t.mcp, t.ip]))[0])
    for i, f in enumerate((pose.index, pose.middle, pose.ring, pose.pinky)):
        points += _finger(_MCP[i], _SEGMENTS[i], _SPLAY_DEG[i], f)
    return np.array(points)


def thumb_on_fingers(pose: HandPose) -> Thumb:
    """Thumb wrapped over the index and middle middle phalanges, as in a fist."""
    p = local_hand(pose)
    return thumb_reaching((p[7] + p[11]) / 2 + 0.012 * _PALM_OUT)


def thumb_pinching(pose: HandPose, aperture: float) -> Thumb:
    """Thumb whose tip is `aperture` metres from the index tip, on the side of the thumb."""
    p = local_hand(pose)
    toward_thumb = _unit(p[2] - p[8])
    return thumb_reaching(p[8] + aperture * toward_thumb)


def build_hand(pose: HandPose, handedness: str = 'right', scale: float = 1.0,
               rotation: np.ndarray | None = None) -> np.ndarray:
    """(21, 3) metric keypoints of `pose`, scaled, mirrored for a left hand, then rotated."""
    world = local_hand(pose) * scale
    if handedness == 'left':
        world[:, 0] *= -1.0
    world -= world[[5, 9, 13, 17]].mean(axis=0)
    if rotation is not None:
        world = world @ rotation.T
    return world


def rotation_about(axis: np.ndarray, deg: float) -> np.ndarray:
    """Rodrigues rotation matrix."""
    k = _unit(np.asarray(axis, dtype=np.float64))
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    a = _rad(deg)
    return np.eye(3) + np.sin(a) * kx + (1.0 - np.cos(a)) * kx @ kx


def rotation_aligning(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Smallest rotation taking direction src to direction dst."""
    s, d = _unit(np.asarray(src, float)), _unit(np.asarray(dst, float))
    axis = np.cross(s, d)
    if np.linalg.norm(axis) < 1e-9:
        if s @ d > 0:
            return np.eye(3)
        axis = np.cross(s, [1.0, 0.0, 0.0] if abs(s[0]) < 0.9 else [0.0, 1.0, 0.0])
    return rotation_about(axis, float(np.degrees(np.arccos(np.clip(s @ d, -1.0, 1.0)))))


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """Uniform random 3D rotation (from a random unit quaternion)."""
    q = _unit(rng.normal(size=4))
    w, x, y, z = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])
