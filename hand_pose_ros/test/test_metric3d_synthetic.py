"""Camera-frame PnP on a real hand shape placed at known poses in a virtual camera.

The shape is the full model's world landmarks of one shared photo (the official MediaPipe
output); poses, camera and noise are synthetic, so the ground truth is exact.
"""

from __future__ import annotations

from hand_pose_ros.core.metric.camera import normalize_points, project_points
from hand_pose_ros.core.metric.metric3d import (
    CANONICAL_PALM_SIZE_M,
    Metric3DOptions,
    palm_size,
    solve_camera_frame,
    wrist_frame,
)
from hand_pose_ros.core.results import CameraIntrinsics, Method3D
from hand_pose_ros.tools.eval_metric3d import (
    camera_with,
    noise_curve,
    random_pose,
    rotation_error_deg,
    synthetic_shape,
    SYNTHETIC_SIZE,
    synthetic_trial,
)
import numpy as np
import pytest

DISTORTIONS = ('none', 'plumb_bob', 'rational_polynomial')


@pytest.fixture(scope='module')
def shape(golden_static) -> np.ndarray:
    return synthetic_shape(golden_static)


@pytest.mark.parametrize('distortion', DISTORTIONS)
def test_distortion_round_trip(distortion):
    camera = camera_with(distortion)
    rng = np.random.default_rng(1)
    points = np.column_stack([rng.uniform(-0.3, 0.3, 50), rng.uniform(-0.2, 0.2, 50),
                              rng.uniform(0.5, 1.0, 50)])
    normalized = normalize_points(project_points(points, camera), camera)
    np.testing.assert_allclose(normalized, points[:, :2] / points[:, 2:], atol=1e-9)


@pytest.mark.parametrize('distortion', DISTORTIONS)
def test_exact_without_noise(shape, distortion):
    camera = camera_with(distortion)
    rng = np.random.default_rng(7)
    for _ in range(20):
        rotation, translation = random_pose(rng)
        err_mm, err_deg = synthetic_trial(shape, camera, rotation, translation, 0.0, rng)
        assert err_mm < 1.0
        assert err_deg < 0.5


# A wide-angle fisheye (about 150 degrees across the 640 px width) in the equidistant model.
FISHEYE = CameraIntrinsics(fx=250.0, fy=250.0, cx=319.5, cy=239.5,
                           d=np.array([0.05, -0.01, 0.003, -0.0005]),
                           distortion_model='equidistant')


def test_fisheye_round_trip_and_exact_fit(shape):
    """equidistant CameraInfo: pixels from cv2.fisheye (independent of the code under test)
    undistort exactly, and the fit recovers the pose as for the pinhole models."""
    import cv2
    rng = np.random.default_rng(5)
    points = np.column_stack([rng.uniform(-0.6, 0.6, 50), rng.uniform(-0.4, 0.4, 50),
                              rng.uniform(0.3, 1.0, 50)])
    k, d = FISHEYE.matrix, FISHEYE.d.reshape(4, 1)
    pixels = cv2.fisheye.projectPoints(points.reshape(-1, 1, 3), np.zeros(3), np.zeros(3),
                                       k, d)[0].reshape(-1, 2)
    np.testing.assert_allclose(project_points(points, FISHEYE), pixels, atol=1e-9)
    np.testing.assert_allclose(normalize_points(pixels, FISHEYE), points[:, :2] / points[:, 2:],
                               atol=1e-9)
    # A strided view, as the tracker passes keypoints[:, :2] (cv2.fisheye misreads those).
    strided = np.column_stack([pixels, np.zeros(len(pixels))])[:, :2]
    np.testing.assert_allclose(normalize_points(strided, FISHEYE), points[:, :2] / points[:, 2:],
                               atol=1e-9)
    np.testing.assert_allclose(project_points(np.hstack([points, points])[:, :3], FISHEYE),
                               pixels, atol=1e-9)
    for _ in range(20):
        rotation, translation = random_pose(rng)
        truth = shape @ rotation.T + translation
        px = cv2.fisheye.projectPoints(truth.reshape(-1, 1, 3), np.zeros(3), np.zeros(3),
                                       k, d)[0].reshape(-1, 2)
        out = solve_camera_frame(px, shape, FISHEYE, image_size=SYNTHETIC_SIZE,
                                 handedness='right',
                                 options=Metric3DOptions(normalize_palm_size=False))
        assert out.valid
        assert np.linalg.norm(out.wrist_position - truth[0]) < 1e-3
        assert rotation_error_deg(out.wrist_rotation, wrist_frame(truth, 'right')) < 0.5


def test_hand_scale_recovers_metric_size(shape):
    """With the size prior on, hand_scale = true palm / canonical palm gives the exact pose."""
    camera = camera_with('plumb_bob')
    rotation, translation = random_pose(np.random.default_rng(3))
    truth = shape @ rotation.T + translation
    pixels = project_points(truth, camera)
    scale = palm_size(shape) / CANONICAL_PALM_SIZE_M
    exact = solve_camera_frame(pixels, shape * 1.3, camera, hand_scale=scale)
    assert np.linalg.norm(exact.wrist_position - truth[0]) < 1e-3
    # Without the right hand_scale the distance is off by the size ratio, as it must be.
    prior = solve_camera_frame(pixels, shape, camera)
    np.testing.assert_allclose(prior.keypoints[:, 2] / truth[:, 2], 1.0 / scale, rtol=1e-3)


def test_noise_degrades_gracefully(shape):
    rows = noise_curve(shape, (0.5, 1.0, 2.0), trials=60, distortion='rational_polynomial')
    half, one, two = rows
    # Errors grow with the noise, roughly linearly, and stay usable at 2 px
    # (at 0.3-1.0 m with f = 600 px; measured medians ~3 mm / 1 deg at 1 px).
    assert half['median_mm'] < one['median_mm'] < two['median_mm']
    assert one['median_mm'] < 10.0 and one['median_deg'] < 2.0
    assert two['median_mm'] < 20.0 and two['median_deg'] < 4.0
    assert two['median_mm'] < 3.0 * one['median_mm']


def test_a_few_bad_joints_are_tolerated(shape):
    camera = camera_with('plumb_bob')
    rng = np.random.default_rng(11)
    rotation, translation = random_pose(rng)
    truth = shape @ rotation.T + translation
    pixels = project_points(truth, camera)
    pixels[[8, 12, 20]] += [[40.0, -35.0], [-30.0, 45.0], [50.0, 20.0]]  # three fingertips
    result = solve_camera_frame(pixels, shape, camera,
                                options=Metric3DOptions(normalize_palm_size=False))
    assert np.linalg.norm(result.wrist_position - truth[0]) < 3e-3
    assert rotation_error_deg(result.wrist_rotation, wrist_frame(truth, 'right')) < 1.0


def test_validity(shape):
    camera = camera_with('none')
    translation = np.array([0.0, 0.0, 0.5])
    truth = shape + translation
    pixels = project_points(truth, camera)
    good = solve_camera_frame(pixels, shape, camera, image_size=SYNTHETIC_SIZE)
    assert good.valid and good.method == Method3D.PNP
    assert good.reprojection_error < 1e-3
    # Partly out of view: the same hand moved so its fingertips leave the image.
    shifted = pixels + [SYNTHETIC_SIZE[0] - pixels[:, 0].max() + 20.0, 0.0]
    out = solve_camera_frame(shifted, shape, camera, image_size=SYNTHETIC_SIZE)
    assert not out.valid
    # A bad fit: 2D keypoints that belong to no rigid hand (joints shuffled).
    shuffled = pixels[np.random.default_rng(0).permutation(21)]
    bad = solve_camera_frame(shuffled, shape, camera, image_size=SYNTHETIC_SIZE)
    assert not bad.valid
    assert bad.reprojection_error > 5.0


@pytest.mark.parametrize('intrinsics, message', [
    (CameraIntrinsics(0.0, 0.0, 0.0, 0.0), 'focal'),
    (CameraIntrinsics(float('nan'), 600.0, 320.0, 240.0), 'NaN'),
    (CameraIntrinsics(600.0, 600.0, 320.0, 240.0, d=np.zeros(3)), 'coefficients'),
    (CameraIntrinsics(600.0, 600.0, 320.0, 240.0, distortion_model='fisheye'), 'model'),
])
def test_bad_intrinsics_raise(shape, intrinsics, message):
    with pytest.raises(ValueError, match=message):
        solve_camera_frame(np.zeros((21, 2)) + 100.0, shape, intrinsics)


def _right_hand_palm_on() -> np.ndarray:
    """A right hand 0.5 m in front of the camera, palm towards it, fingers up, a bit curled.

    Camera optical frame: x right, y down, z forward. Seen palm-on, a right hand has its
    thumb on the image's right. Fingers curl towards the palm side, i.e. towards the camera.
    """
    pts = np.zeros((21, 3))
    pts[0] = [0.0, 0.05, 0.5]
    mcps = {5: 0.03, 9: 0.0, 13: -0.02, 17: -0.038}
    for mcp, x in mcps.items():
        pts[mcp] = [x, -0.035 if mcp != 17 else -0.025, 0.5]
        for k in range(1, 4):
            pts[mcp + k] = pts[mcp] + [0.0, -0.025 * k, -0.008 * k * k]
    pts[1:5] = [[0.03, 0.035, 0.495], [0.05, 0.015, 0.49], [0.06, -0.005, 0.485],
                [0.065, -0.02, 0.48]]
    return pts


def test_wrist_frame_convention():
    right = _right_hand_palm_on()
    left = right * [-1.0, 1.0, 1.0]  # the mirror image: a left hand, also palm-on
    for points, side in ((right, 'right'), (left, 'left')):
        frame = wrist_frame(points, side)
        np.testing.assert_allclose(frame.T @ frame, np.eye(3), atol=1e-12)
        assert np.linalg.det(frame) == pytest.approx(1.0)
        x, y, z = frame.T
        assert x @ [0.0, -1.0, 0.0] > 0.95  # towards the middle MCP: up in the image
        assert z @ [0.0, 0.0, -1.0] > 0.95  # out of the palm: towards the camera
        np.testing.assert_allclose(y, np.cross(z, x), atol=1e-12)
        # The flexion fallback agrees when handedness is unknown.
        np.testing.assert_allclose(wrist_frame(points, None), frame, atol=1e-12)
    # Right hand palm-on: y points to the image left (the pinky side).
    assert wrist_frame(right, 'RIGHT')[:, 1] @ [-1.0, 0.0, 0.0] > 0.95
    with pytest.raises(ValueError):
        wrist_frame(right, 'both')


def test_wrist_frame_flexion_matches_handedness_on_model_outputs(golden_static):
    """On every hand of the official outputs, finger flexion picks the labelled palm side."""
    for model in ('full', 'lite'):
        for entry in golden_static['models'][model]:
            for hand in entry['hands']:
                world = np.array(hand['world_m'])
                # handedness_raw assumes a mirrored image: the anatomical side is the other.
                side = 'left' if hand['handedness_raw'] == 'Right' else 'right'
                np.testing.assert_allclose(wrist_frame(world, None), wrist_frame(world, side))
