"""
Calibrated cameras in one world frame, and the calibration files users already have.

A camera is its intrinsics (core/results.CameraIntrinsics: K, D and the distortion model,
fisheye included, through core/metric/camera.py) and its pose as world -> camera optical
frame (X_cam = R X_world + t), the convention OpenCV, anipose and Pose2Sim share. Two file
layouts are read:

- the plain YAML of ../shared/data/multiview/*/calibration.yaml (``cameras: {name: {width,
  height, K, D, R_world_to_cam, t_world_to_cam}}``, optional ``distortion_model``);
- the anipose / Pose2Sim TOML (one table per camera with ``name``, ``size`` [w, h],
  ``matrix``, ``distortions``, ``rotation`` as a Rodrigues vector, ``translation``, and
  Pose2Sim's ``fisheye`` flag), read with the standard library's tomllib.

A camera_calibration (camera_info_manager) YAML gives one camera's intrinsics only
(`intrinsics_from_camera_info`); its pose must come from elsewhere (TF, a rig file).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
from hand_pose_ros.core.metric.camera import (
    normalize_points,
    project_points,
    validate_intrinsics,
)
from hand_pose_ros.core.results import CameraIntrinsics
import numpy as np


@dataclass
class CameraCalibration:
    """One calibrated camera: intrinsics, image size and the world -> camera pose."""

    name: str
    intrinsics: CameraIntrinsics
    rotation: np.ndarray  # (3, 3) world -> camera optical frame
    translation: np.ndarray  # (3,) metres, X_cam = rotation @ X_world + translation
    width: int
    height: int

    def __post_init__(self) -> None:
        validate_intrinsics(self.intrinsics)
        self.rotation = np.asarray(self.rotation, dtype=np.float64).reshape(3, 3)
        self.translation = np.asarray(self.translation, dtype=np.float64).reshape(3)
        if not np.allclose(self.rotation @ self.rotation.T, np.eye(3), atol=1e-4):
            raise ValueError(f'camera {self.name}: rotation is not orthonormal')

    @property
    def centre(self) -> np.ndarray:
        """Camera centre in the world frame (metres)."""
        return -self.rotation.T @ self.translation

    @property
    def focal(self) -> float:
        """Mean focal length (px): converts normalized-coordinate errors to pixels."""
        return 0.5 * (self.intrinsics.fx + self.intrinsics.fy)

    @property
    def pose(self) -> np.ndarray:
        """(3, 4) [R | t], the projection matrix for undistorted normalized coordinates."""
        return np.hstack([self.rotation, self.translation[:, None]])

    def to_camera(self, points_world: np.ndarray) -> np.ndarray:
        return np.asarray(points_world, dtype=np.float64) @ self.rotation.T + self.translation

    def to_world(self, points_camera: np.ndarray) -> np.ndarray:
        return (np.asarray(points_camera, dtype=np.float64) - self.translation) @ self.rotation

    def project(self, points_world: np.ndarray) -> np.ndarray:
        """World points (N, 3) -> image pixels (N, 2), with distortion (NaN behind the camera)."""
        cam = self.to_camera(np.asarray(points_world, dtype=np.float64).reshape(-1, 3))
        px = project_points(cam, self.intrinsics)
        px[cam[:, 2] <= 1e-9] = np.nan
        return px

    def normalize(self, pixels: np.ndarray) -> np.ndarray:
        """Image pixels (N, 2) -> undistorted normalized coordinates (N, 2)."""
        return normalize_points(np.asarray(pixels, dtype=np.float64)[:, :2], self.intrinsics)


Rig = dict[str, CameraCalibration]


def _matrix(value: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.size != int(np.prod(shape)):
        raise ValueError(f'{what}: expected {shape} values, got {array.shape}')
    return array.reshape(shape)


def _intrinsics(k: np.ndarray, d: Any, model: str) -> CameraIntrinsics:
    d = np.asarray(d if d is not None else [], dtype=np.float64).ravel()
    if model == 'equidistant' and d.size > 4:
        d = d[:4]
    return CameraIntrinsics(fx=float(k[0, 0]), fy=float(k[1, 1]), cx=float(k[0, 2]),
                            cy=float(k[1, 2]), d=d, distortion_model=model)


def rig_from_yaml(data: dict) -> Rig:
    """Parse the plain YAML layout (../shared/data/multiview/*/calibration.yaml)."""
    cameras = data.get('cameras')
    if not isinstance(cameras, dict) or not cameras:
        raise ValueError("calibration YAML needs a non-empty 'cameras' mapping")
    rig = {}
    for name, cam in cameras.items():
        try:
            k = _matrix(cam['K'], (3, 3), f'{name}.K')
            rig[str(name)] = CameraCalibration(
                name=str(name),
                intrinsics=_intrinsics(k, cam.get('D'), cam.get('distortion_model', 'plumb_bob')),
                rotation=_matrix(cam['R_world_to_cam'], (3, 3), f'{name}.R_world_to_cam'),
                translation=_matrix(cam['t_world_to_cam'], (3,), f'{name}.t_world_to_cam'),
                width=int(cam['width']), height=int(cam['height']))
        except KeyError as exc:
            raise ValueError(f'calibration YAML: camera {name} lacks {exc}') from None
    return rig


def rig_from_toml(data: dict) -> Rig:
    """
    Parse the anipose / Pose2Sim TOML layout.

    Every table with a ``matrix`` is a camera, named by its ``name`` (else its table key);
    ``rotation`` is a Rodrigues vector (or a 3x3 matrix), world -> camera; Pose2Sim's
    ``fisheye = true`` selects the equidistant model. Other tables (``metadata``) are skipped.
    """
    rig = {}
    for key, cam in data.items():
        if not isinstance(cam, dict) or 'matrix' not in cam:
            continue
        name = str(cam.get('name', key))
        try:
            k = _matrix(cam['matrix'], (3, 3), f'{name}.matrix')
            rotation = np.asarray(cam['rotation'], dtype=np.float64)
            if rotation.size == 3:
                rotation = cv2.Rodrigues(rotation.reshape(3, 1))[0]
            model = 'equidistant' if cam.get('fisheye', False) else 'plumb_bob'
            width, height = (int(v) for v in cam['size'])
            rig[name] = CameraCalibration(
                name=name, intrinsics=_intrinsics(k, cam.get('distortions'), model),
                rotation=_matrix(rotation, (3, 3), f'{name}.rotation'),
                translation=_matrix(cam['translation'], (3,), f'{name}.translation'),
                width=width, height=height)
        except KeyError as exc:
            raise ValueError(f'calibration TOML: camera {name} lacks {exc}') from None
    if not rig:
        raise ValueError('calibration TOML holds no camera table (one with a matrix)')
    return rig


def intrinsics_from_camera_info(data: dict) -> tuple[CameraIntrinsics, int, int]:
    """
    Read (intrinsics, width, height) from a parsed camera_calibration / camera_info YAML.

    The layout camera_calibration writes and camera_info_manager loads: ``image_width``,
    ``image_height``, ``camera_matrix: {data: [9]}``, ``distortion_model``,
    ``distortion_coefficients: {data: [...]}``.
    """
    try:
        k = _matrix(data['camera_matrix']['data'], (3, 3), 'camera_matrix')
        model = str(data.get('distortion_model', 'plumb_bob'))
        d = (data.get('distortion_coefficients') or {}).get('data', [])
        intrinsics = _intrinsics(k, d, model)
        validate_intrinsics(intrinsics)
        return intrinsics, int(data['image_width']), int(data['image_height'])
    except (KeyError, TypeError) as exc:
        raise ValueError(f'camera_info YAML lacks {exc}') from None


def load_rig(path: Path | str) -> Rig:
    """Read a calibration file: ``.toml`` (anipose / Pose2Sim) or ``.yaml``/``.yml``."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f'calibration {path} does not exist')
    if path.suffix.lower() == '.toml':
        import tomllib  # stdlib; imported here as ament_flake8 does not know it yet
        with path.open('rb') as stream:
            return rig_from_toml(tomllib.load(stream))
    if path.suffix.lower() in ('.yaml', '.yml'):
        import yaml
        return rig_from_yaml(yaml.safe_load(path.read_text()))
    raise ValueError(f'{path}: calibration must be .toml (anipose/Pose2Sim) or .yaml')


def rig_to_toml(rig: Rig) -> str:
    """Write a rig in the anipose / Pose2Sim TOML layout (what load_rig reads back)."""
    lines = []
    for name, cam in rig.items():
        rvec = cv2.Rodrigues(cam.rotation)[0].ravel()
        k = cam.intrinsics.matrix
        d = np.asarray(cam.intrinsics.d, dtype=np.float64).ravel()
        lines += [
            f'[{name}]', f'name = "{name}"', f'size = [ {cam.width}, {cam.height} ]',
            'matrix = [ ' + ', '.join('[ ' + ', '.join(repr(float(v)) for v in row) + ' ]'
                                      for row in k) + ' ]',
            'distortions = [ ' + ', '.join(repr(float(v)) for v in d) + ' ]',
            'rotation = [ ' + ', '.join(repr(float(v)) for v in rvec) + ' ]',
            'translation = [ ' + ', '.join(repr(float(v)) for v in cam.translation) + ' ]',
            f'fisheye = {"true" if cam.intrinsics.distortion_model == "equidistant" else "false"}',
            '']
    return '\n'.join(lines)
