"""Geometry of the pipeline: anchors, crops, ROI rules and NMS, on hand-computed cases."""

from __future__ import annotations

import math

from hand_pose_ros.core.detection.anchors import ssd_anchors
from hand_pose_ros.core.detection.landmarks import project_landmarks, rotate_world
from hand_pose_ros.core.detection.palm import weighted_nms
from hand_pose_ros.core.detection.roi import (
    apply_affine,
    full_image_roi,
    invert_affine,
    roi_affine,
    roi_from_detection,
    roi_from_landmarks,
    roi_iou,
)
from hand_pose_ros.core.results import PalmDetection, Roi
import numpy as np
import pytest


def test_anchors() -> None:
    anchors = ssd_anchors()
    assert anchors.shape == (2016, 2)
    np.testing.assert_allclose(anchors[0], anchors[1])
    np.testing.assert_allclose(anchors[0], [0.5 / 24, 0.5 / 24])
    np.testing.assert_allclose(anchors[1152], [0.5 / 12, 0.5 / 12])
    np.testing.assert_allclose(anchors[-1], [11.5 / 12, 11.5 / 12])


def test_letterbox_keeps_aspect_and_centres() -> None:
    affine, padding = roi_affine(full_image_roi(640, 480), 192)
    corners = apply_affine(affine, np.array([[0, 0], [640, 480]], float))
    np.testing.assert_allclose(corners, [[0, 24], [192, 168]])
    np.testing.assert_allclose(padding, [0, 0.125, 0, 0.125])


def test_rotated_crop_maps_rect_corners() -> None:
    roi = Roi(100, 80, 50, 50, math.pi / 2)
    affine, padding = roi_affine(roi, 224)
    # Rotated a quarter turn clockwise: the rect's top-left corner is at image (125, 55).
    np.testing.assert_allclose(apply_affine(affine, np.array([[125.0, 55.0]])), [[0, 0]],
                               atol=1e-9)
    np.testing.assert_allclose(apply_affine(invert_affine(affine), [[112, 112]]), [[100, 80]])
    assert not padding.any()
    # Landmark projection is the inverse of the crop.
    raw = np.array([[0.0, 0.0, 0.0], [224.0, 112.0, 22.4]])
    px = project_landmarks(raw, roi)
    np.testing.assert_allclose(px[:, :2], apply_affine(invert_affine(affine), raw[:, :2]))
    assert px[1, 2] == pytest.approx(22.4 / 224 / 0.4 * 50)


def test_detection_roi_points_up_from_wrist() -> None:
    # Palm upright: wrist below the middle MCP -> no rotation, ROI shifted up, 2.6x.
    kps = np.zeros((7, 2))
    kps[0], kps[2] = [50, 100], [50, 60]
    roi = roi_from_detection(PalmDetection(0.9, np.array([30.0, 60, 70, 100]), kps))
    assert roi.rotation == pytest.approx(0.0)
    assert (roi.cx, roi.cy, roi.width, roi.height) == pytest.approx((50, 60, 104, 104))
    # Fingers pointing right -> rotation +90 degrees (clockwise on screen).
    kps[0], kps[2] = [10, 50], [50, 50]
    roi = roi_from_detection(PalmDetection(0.9, np.array([10.0, 30, 50, 70]), kps))
    assert roi.rotation == pytest.approx(math.pi / 2)
    assert roi.cx == pytest.approx(30 + 20)  # shifted towards the fingers
    np.testing.assert_allclose(rotate_world(np.array([[0.0, -1.0, 0.3]]), roi.rotation),
                               [[1.0, 0.0, 0.3]], atol=1e-12)


def test_landmark_roi_is_rotation_equivariant() -> None:
    rng = np.random.default_rng(1)
    pts = rng.uniform(-30, 30, size=(21, 2))
    pts[0] = [0, 40]
    pts[[5, 9, 13]] = [[-10, -20], [0, -22], [10, -20]]
    base = roi_from_landmarks(pts + 200)
    angle = 0.7
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    turned = roi_from_landmarks(pts @ rot.T + 200)
    assert turned.rotation == pytest.approx(base.rotation + angle)
    assert turned.width == pytest.approx(base.width)
    centre = (np.array([base.cx, base.cy]) - 200) @ rot.T + 200
    np.testing.assert_allclose([turned.cx, turned.cy], centre)


def test_roi_iou() -> None:
    a = Roi(10, 10, 10, 10, 0.3)
    assert roi_iou(a, a) == pytest.approx(1.0)
    assert roi_iou(a, Roi(15, 10, 10, 10, 0.0)) == pytest.approx(50 / 150)
    assert roi_iou(a, Roi(40, 40, 10, 10, 0.0)) == 0.0


def test_weighted_nms_averages_clusters() -> None:
    rows = np.zeros((3, 18))
    rows[0, :4] = [0, 0, 1, 1]
    rows[1, :4] = [0.1, 0, 1.1, 1]
    rows[2, :4] = [5, 5, 6, 6]
    out = weighted_nms(rows, np.array([0.9, 0.6, 0.7]))
    assert [s for s, _ in out] == pytest.approx([0.9, 0.7])
    np.testing.assert_allclose(out[0][1][:4], [0.04, 0, 1.04, 1])
    np.testing.assert_allclose(out[1][1][:4], [5, 5, 6, 6])
