"""Checks against hostile input (issue 13), without ROS middleware: compressed headers read
before decoding, image size limits, CameraInfo sanity (REP 104 binning/ROI, D lengths,
plausible K and D), depth with no reading on the hands, time-throttled logging and outputs
that never carry NaN/inf. test_node_dds.py runs the same attacks against the real node.
"""

from __future__ import annotations

import math
import time
from types import SimpleNamespace

import cv2
from hand_pose_ros.core.metric.depth import hand_depth_missing
from hand_pose_ros.core.results import (
    CameraFrame3D,
    FrameResult,
    GestureResult,
    HandResult,
    Method3D,
    Roi,
)
from hand_pose_ros.ros import diagnostics as diag
from hand_pose_ros.ros import msg_in, msg_out
from hand_pose_ros.ros.markers import MarkerTracker
from hand_pose_ros.ros.tf import hand_transforms
from hostile_inputs import bomb_jpeg, bomb_png
import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, RegionOfInterest
from std_msgs.msg import Header

MAX = msg_in.DEFAULT_MAX_IMAGE_PIXELS


def _cause(fn, *args) -> str:
    with pytest.raises(msg_in.InputError) as err:
        fn(*args)
    return err.value.cause


# ------------------------------------------------------------------------ compressed

def test_compressed_headers_give_the_size_without_decoding():
    img = np.zeros((48, 64, 3), np.uint8)
    for ext, params in (('.jpg', []), ('.jpg', [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
                        ('.png', [])):
        ok, buf = cv2.imencode(ext, img, params)
        assert msg_in.compressed_image_size(buf.tobytes()) == (64, 48)
    assert msg_in.compressed_image_size(bomb_jpeg()) == (30000, 30000)
    assert msg_in.compressed_image_size(bomb_png(40000, 2)) == (40000, 2)


def test_decompression_bombs_are_rejected_before_decoding():
    bomb = SimpleNamespace(format='jpeg', data=bomb_jpeg())
    assert len(bomb.data) < 1000
    start = time.perf_counter()
    assert _cause(msg_in.compressed_to_rgb, bomb) == 'image_too_large'
    assert time.perf_counter() - start < 0.05  # decoding it takes seconds and 2.7 GB
    assert _cause(msg_in.check_compressed, bomb, MAX) == 'image_too_large'
    png = SimpleNamespace(format='png', data=bomb_png(40000, 2))
    assert _cause(msg_in.check_compressed, png, MAX) == 'image_side_too_large'
    # The limit is the node's max_image_pixels.
    ok, small = cv2.imencode('.jpg', np.zeros((48, 64, 3), np.uint8))
    msg = SimpleNamespace(format='jpeg', data=small.tobytes())
    assert msg_in.compressed_to_rgb(msg, 64 * 48).shape == (48, 64, 3)
    assert _cause(msg_in.compressed_to_rgb, msg, 64 * 48 - 1) == 'image_too_large'


def test_unreadable_compressed_headers_are_rejected():
    for data, cause in ((b'BM' + bytes(60), 'unsupported_compressed'),
                        (b'\xff\xd8\xff\xe0\x00\x01' + bytes(30), 'corrupt_compressed'),
                        (b'\xff\xd8\xff\xda\x00\x08' + bytes(30), 'corrupt_compressed'),
                        (bomb_jpeg()[:40], 'corrupt_compressed'),
                        (b'\x89PNG\r\n\x1a\n' + bytes(4), 'corrupt_compressed'),
                        (bomb_jpeg(64, 0), 'empty_image'),
                        (b'', 'empty_image')):
        assert _cause(msg_in.compressed_to_rgb, SimpleNamespace(format='x', data=data)) == cause


# ------------------------------------------------------------------------ raw images

def test_raw_image_size_limits_come_before_any_pixel_work():
    w, h = 8000, 4300  # 34.4 MP: just above the default (8K UHD is 33.2 MP)
    big = SimpleNamespace(height=h, width=w, encoding='mono8', step=w, is_bigendian=0,
                          data=np.zeros(w * h, np.uint8).data)
    assert _cause(msg_in.check_image, big) == 'image_too_large'
    assert _cause(msg_in.image_to_rgb, big) == 'image_too_large'
    # The declared size decides, even before the data length is checked.
    big.data = b''
    assert _cause(msg_in.check_image, big) == 'image_too_large'
    wide = SimpleNamespace(height=1, width=40000, encoding='mono8', step=40000,
                           is_bigendian=0, data=bytes(40000))
    assert _cause(msg_in.check_image, wide) == 'image_side_too_large'
    msg_in.check_image_size(7680, 4320, MAX)  # 8K UHD passes
    msg_in.check_image_size(msg_in.MAX_IMAGE_SIDE, 1, MAX)
    small = SimpleNamespace(height=4, width=4, encoding='mono8', step=4, is_bigendian=0,
                            data=bytes(16))
    assert _cause(msg_in.check_image, small, 15) == 'image_too_large'


# ------------------------------------------------------------------------ CameraInfo

def _info(k=(500.0, 0, 320, 0, 500, 240, 0, 0, 1), d=(0.1, -0.05, 0, 0, 0),
          model='plumb_bob', width=640, height=480, **kw) -> CameraInfo:
    return CameraInfo(k=list(k), d=list(d), distortion_model=model, width=width,
                      height=height, **kw)


@pytest.mark.parametrize('info', [
    _info(k=(1e300, 0, 320, 0, 1e300, 240, 0, 0, 1)),  # finite but absurd focal length
    _info(k=(500, 0, 1e9, 0, 500, 240, 0, 0, 1)),  # principal point far off the image
    _info(k=(500, 0, 320, 0, 10, 240, 0, 0, 1)),  # fx/fy = 50
    _info(k=(500, 0, 320, 0, 500, 240, 0, 0, 7)),  # not a camera matrix
    _info(d=(1e6, 0, 0, 0, 0)),  # k1 = 1e6
    _info(d=(0.1, 0, 5.0, 0, 0)),  # tangential 5
    _info(d=(0.1, 0.01, 0.001)),  # plumb_bob needs 5
    _info(d=(0.1, 0.01, 0.001, 0, 0), model='rational_polynomial'),  # needs 8
    _info(d=(0.1, 0.01, 0.001, 0, 0), model='equidistant'),  # needs 4
    _info(d=(0.1, 0, 0, 0), model='kannala_brandt'),  # unknown model
])
def test_implausible_camera_info_is_rejected(info):
    assert _cause(msg_in.camera_info_to_intrinsics, info) == 'bad_camera_info'


def test_camera_info_without_size_is_checked_against_the_image():
    info = _info(k=(1e300, 0, 320, 0, 1e300, 240, 0, 0, 1), width=0, height=0)
    intr = msg_in.camera_info_to_intrinsics(info)  # no size: nothing to compare with yet
    assert msg_in.camera_info_image_size(info) is None
    assert _cause(msg_in.check_camera_info_for_image, intr, None, 640, 480) == 'bad_camera_info'
    good = msg_in.camera_info_to_intrinsics(_info(width=0, height=0))
    msg_in.check_camera_info_for_image(good, None, 640, 480)


def test_camera_info_size_must_match_the_image_after_binning_and_roi():
    info = _info()
    intr = msg_in.camera_info_to_intrinsics(info)
    size = msg_in.camera_info_image_size(info)
    msg_in.check_camera_info_for_image(intr, size, 640, 480)
    cause = _cause(msg_in.check_camera_info_for_image, intr, size, 1280, 720)
    assert cause == 'bad_camera_info'
    # REP 104: a full-resolution calibration published with binning 2 and an ROI describes
    # the binned crop; K follows (as image_geometry's PinholeCameraModel does).
    full = _info(k=(1000.0, 0, 640, 0, 1000, 480, 0, 0, 1), width=1280, height=960,
                 binning_x=2, binning_y=2,
                 roi=RegionOfInterest(x_offset=320, y_offset=240, width=640, height=480))
    intr = msg_in.camera_info_to_intrinsics(full)
    assert msg_in.camera_info_image_size(full) == (320, 240)
    assert (intr.fx, intr.fy, intr.cx, intr.cy) == (500.0, 500.0, 160.0, 120.0)
    msg_in.check_camera_info_for_image(intr, (320, 240), 320, 240)
    assert _cause(msg_in.check_camera_info_for_image, intr, (320, 240), 1280, 960) == (
        'bad_camera_info')


def test_fisheye_and_zero_distortion_camera_info_are_accepted():
    fish = msg_in.camera_info_to_intrinsics(
        _info(k=(250.0, 0, 320, 0, 250, 240, 0, 0, 1), d=(0.05, -0.01, 0.003, -0.0005),
              model='equidistant'))
    assert fish.distortion_model == 'equidistant' and fish.d.size == 4
    msg_in.check_camera_info_for_image(fish, (640, 480), 640, 480)
    for d in ((), (0.0,) * 3, (0.0,) * 14):  # all-zero D of any length: no distortion
        intr = msg_in.camera_info_to_intrinsics(_info(d=d))
        assert intr.d.size == 0
    rational = (0.45, -2.5, 0.0006, -0.0002, 1.4, 0.33, -2.3, 1.3)
    msg_in.camera_info_to_intrinsics(_info(d=rational, model='rational_polynomial'))


# ------------------------------------------------------------------------ depth, logging

def test_depth_missing_on_a_hand():
    kp = np.array([[10.0, 20.0], [30.0, 40.0]])
    depth = np.full((60, 80), np.nan, np.float32)
    assert hand_depth_missing(kp, depth)
    depth[0:5, :] = 0.8  # valid depth elsewhere, none on the hand
    assert hand_depth_missing(kp, depth)
    depth[40, 30] = 0.6  # one reading inside the hand's box is enough
    assert not hand_depth_missing(kp, depth)
    assert not hand_depth_missing(kp + 500.0, depth)  # hand out of the image: no claim


def test_log_throttle_logs_first_then_every_period_with_counts():
    t = diag.LogThrottle(period_s=5.0)
    first = t.note('a', now=0.0)
    assert first.first and first.count == 1
    assert all(t.note('a', now=x) is None for x in (1.0, 2.0, 4.9))
    assert t.note('b', now=3.0).first  # each cause on its own
    again = t.note('a', now=6.0)
    assert not again.first and again.count == 4 and again.elapsed_s == 6.0
    assert t.note('a', now=7.0) is None
    later = t.note('a', now=100.0)  # a fault that comes back much later is logged again
    assert later.count == 2 and not later.first


# ------------------------------------------------------------------------ outputs finite

def _hand(hid: int, rot: np.ndarray, keypoints: np.ndarray | None = None) -> HandResult:
    world = np.random.default_rng(3).normal(0, 0.04, (21, 3))
    cam = world + [0.0, 0.0, 0.5]
    return HandResult(
        id=hid, handedness='left', handedness_score=0.9, raw_handedness='Right', score=0.95,
        keypoints=np.full((21, 3), 100.0) if keypoints is None else keypoints, world=world,
        roi=Roi(1, 2, 3, 4, 0.0),
        camera=CameraFrame3D(cam, cam[0].copy(), rot, True, Method3D.PNP, 1.0))


def _numbers(msg) -> list[float]:
    """Every float in a Hand message."""
    out = [msg.handedness_score, msg.score, msg.reprojection_error, msg.gesture_score,
           msg.pinch_distance, msg.pinch_strength, msg.grip_aperture, *msg.finger_curl]
    for pts in (msg.keypoints, msg.keypoints_hand, msg.keypoints_camera):
        out += [v for p in pts for v in (p.x, p.y, p.z)]
    p, o, n = msg.wrist_pose.position, msg.wrist_pose.orientation, msg.palm_normal
    return out + [p.x, p.y, p.z, o.x, o.y, o.z, o.w, n.x, n.y, n.z]


def test_non_finite_values_never_reach_a_message():
    header = Header(frame_id='cam')
    nan_2d = np.full((21, 3), 100.0)
    nan_2d[3, 0] = np.inf
    sheared = np.array([[1.0, 5.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # not a rotation
    hands = [_hand(1, np.eye(3)), _hand(2, np.eye(3), nan_2d), _hand(3, sheared)]
    hands[0].gesture = GestureResult('pinch', math.nan, 'pinch', math.inf, 0.0, 0.0, 0.0,
                                     np.array([0, math.nan, 0, 0, 0]), np.array([0, 0, 1.0]))
    result = FrameResult(640, 480, hands)
    msg = msg_out.frame_result_to_msg(result, header)
    assert len(msg.hands) == 2  # the hand with an infinite 2D keypoint is left out
    good, sheared_msg = msg.hands
    assert good.camera_valid and not sheared_msg.camera_valid
    assert sheared_msg.wrist_pose.orientation.w == 1.0
    for hand in msg.hands:
        assert all(math.isfinite(v) for v in _numbers(hand))
    assert good.gesture_score == 0.0 and good.finger_curl[1] == 0.0
    # TF and markers: only the good hand.
    assert len(hand_transforms(result, header)) == 1
    assert {m.ns for m in MarkerTracker().update(result, header).markers} == {'hand_1'}
