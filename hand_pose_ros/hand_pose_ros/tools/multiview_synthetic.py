"""
Known 3D hands seen by virtual calibrated cameras: the exactness test bench of fusion.

Teleop layouts as issue 20 asks: cameras 0.5 to 1.5 m from the hand, 30 to 120 degrees apart
around it, the hand 100 to 250 px long in a 1280x720 image. The hand is a real one: the
metric world landmarks the full landmark model gave for the first hand of the project's
annotated photos (../shared/data/hands/golden_mediapipe_static.json, rounded to mm). 2D noise
is Gaussian per axis with sigma NOISE_SIGMA hand sizes, chosen so that the mean keypoint
error is the 0.084 hand sizes the full model shows on the annotated photos
(docs/evaluation.md, "mean keypoint error of the found hands").
"""

from __future__ import annotations

import math

import cv2
from hand_pose_ros.core.anatomy import palm_size
from hand_pose_ros.core.fusion.calibration import CameraCalibration, Rig
from hand_pose_ros.core.fusion.results import ViewHand
from hand_pose_ros.core.results import CameraIntrinsics
import numpy as np

# (21, 3) metres, hand-centric, the full model's world landmarks of a real right hand.
HAND_M = np.array([
    [-71, 3, 8], [-51, -12, 21], [-32, -13, 41], [-16, -11, 60], [-1, -2, 62], [1, -20, 16],
    [17, -12, 20], [28, 1, 31], [26, 15, 44], [1, -5, 2], [32, 2, 2], [40, 14, 5],
    [39, 31, 22], [1, 9, -10], [18, 34, -7], [18, 46, 7], [11, 54, 30], [-9, 27, -12],
    [-10, 47, -7], [-13, 60, 7], [-25, 56, 25]], dtype=np.float64) / 1000.0
HAND_M_PALM = palm_size(HAND_M)
# Mean 2D error of a 2D Gaussian with per-axis sigma s is s * sqrt(pi / 2).
MEAN_KEYPOINT_ERROR = 0.084
NOISE_SIGMA = MEAN_KEYPOINT_ERROR / math.sqrt(math.pi / 2.0)
IMAGE_SIZE = (1280, 720)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def random_hand(rng: np.random.Generator, centre: np.ndarray | None = None,
                mirrored: bool = False) -> np.ndarray:
    """(21, 3) world points: the hand turned at random, placed near `centre` (z up)."""
    points = HAND_M * np.array([-1.0, 1.0, 1.0]) if mirrored else HAND_M
    centre = np.zeros(3) if centre is None else np.asarray(centre, dtype=np.float64)
    return points @ random_rotation(rng).T + centre + rng.uniform(-0.02, 0.02, 3)


def look_at(position: np.ndarray, target: np.ndarray) -> np.ndarray:
    """World -> optical rotation of a camera at `position` looking at `target` (z up)."""
    z = target - position
    z /= np.linalg.norm(z)
    x = np.cross(z, [0.0, 0.0, 1.0])
    if np.linalg.norm(x) < 1e-6:
        x = np.array([1.0, 0.0, 0.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return np.stack([x, y, z])


def teleop_rig(n_views: int, rng: np.random.Generator, fisheye: int = -1) -> Rig:
    """n_views cameras around the origin; camera `fisheye` (index) gets an equidistant lens."""
    gaps = rng.uniform(30.0, 120.0, n_views)
    gaps[0] = 0.0
    total = gaps.sum()
    if total > 330.0:
        gaps *= 330.0 / total
    azimuths = np.radians(rng.uniform(0, 360) + np.cumsum(gaps))
    rig = {}
    width, height = IMAGE_SIZE
    for i, az in enumerate(azimuths):
        distance = rng.uniform(0.5, 1.5)
        elevation = np.radians(rng.uniform(-20.0, 40.0))
        position = distance * np.array([math.cos(az) * math.cos(elevation),
                                        math.sin(az) * math.cos(elevation),
                                        math.sin(elevation)])
        rotation = look_at(position, rng.uniform(-0.05, 0.05, 3))
        focal = rng.uniform(100.0, 250.0) * distance / 0.18  # hand ~0.18 m long
        d, model = np.zeros(0), 'plumb_bob'
        if i == fisheye:
            d, model = np.array([0.05, -0.01, 0.002, 0.0]), 'equidistant'
        rig[f'cam{i}'] = CameraCalibration(
            name=f'cam{i}', intrinsics=CameraIntrinsics(focal, focal, width / 2, height / 2, d,
                                                        model),
            rotation=rotation, translation=-rotation @ position, width=width, height=height)
    return rig


def observe(rig: Rig, points: np.ndarray, rng: np.random.Generator, noise: float = NOISE_SIGMA,
            handedness: str = 'right', index: int = 0) -> dict[str, ViewHand]:
    """Each camera's view of the hand, with Gaussian noise of `noise` hand sizes per axis."""
    out = {}
    for name, cam in rig.items():
        px = cam.project(points)
        size = float(np.ptp(px, axis=0).max())
        px = px + rng.normal(scale=noise * size, size=px.shape)
        world = (points - points[[5, 9, 13, 17]].mean(axis=0)) @ random_rotation(rng).T
        out[name] = ViewHand(camera=name, keypoints=px, score=1.0, handedness=handedness,
                             handedness_score=0.95, world=world, index=index)
    return out


def observe_moving(rig: Rig, points: np.ndarray, velocity: np.ndarray,
                   offsets_s: dict[str, float], rng: np.random.Generator,
                   noise: float = NOISE_SIGMA) -> dict[str, ViewHand]:
    """
    Each camera's view of a hand moving at `velocity` (m/s), captured `offsets_s` late.

    Unsynchronized cameras stamp a set with one time while each saw the hand a little
    later (offsets from the set's stamp): the views disagree by velocity x offset, which
    no calibration explains.
    """
    out = {}
    for name, cam in rig.items():
        moved = points + np.asarray(velocity) * offsets_s.get(name, 0.0)
        out.update(observe({name: cam}, moved, rng, noise))
    return out


def rodrigues(rotation: np.ndarray) -> np.ndarray:
    return cv2.Rodrigues(np.asarray(rotation, dtype=np.float64))[0].ravel()
