"""The ROS layer's pure pieces: image/CameraInfo/depth decoding, HandArray/TF/marker building,
the newest-frame slots and parameter validation (real ROS message classes, no DDS).

Hands are hand-made FrameResults with a known camera-frame pose, so every expected value
(quaternion, wrist translation, marker points) follows from the input by construction.
"""

from __future__ import annotations

import math
import threading
import time
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from std_msgs.msg import Header

from hand_pose_ros.core.types import (
    HAND_CONNECTIONS,
    CameraFrame3D,
    FrameResult,
    GestureResult,
    HandResult,
    Method3D,
    Roi,
)
from hand_pose_ros.ros import conversions as conv
from hand_pose_ros.ros import parameters
from hand_pose_ros.ros.frame_queue import FrameWorker, LatestFrameSlots
from hand_pose_ros.ros.markers import MarkerTracker
from hand_pose_ros.ros.tf import hand_transforms, wrist_frame_names

RNG = np.random.default_rng(7)


def _image_msg(arr: np.ndarray, encoding: str, pad: int = 0) -> SimpleNamespace:
    h, w = arr.shape[:2]
    row = arr.reshape(h, -1)
    rows = np.concatenate([row, np.zeros((h, pad), np.uint8)], axis=1) if pad else row
    return SimpleNamespace(height=h, width=w, encoding=encoding, step=rows.shape[1],
                           is_bigendian=0, data=rows.tobytes())


def _rot(axis: np.ndarray, angle: float) -> np.ndarray:
    rvec = np.asarray(axis, np.float64) / np.linalg.norm(axis) * angle
    return cv2.Rodrigues(rvec)[0]


def _hand(hid: int, side: str, rot: np.ndarray, pos: np.ndarray, valid: bool = True) -> HandResult:
    local = RNG.normal(0, 0.04, (21, 3))
    local[0] = 0
    cam_kp = local @ rot.T + pos
    return HandResult(
        id=hid, handedness=side, handedness_score=0.9, raw_handedness='Left', score=0.95,
        keypoints=RNG.uniform(0, 400, (21, 3)), world=local, roi=Roi(1, 2, 3, 4, 0.0),
        camera=CameraFrame3D(cam_kp, pos.copy(), rot, valid, Method3D.PNP, 1.5),
        gesture=GestureResult('open_palm', 0.8, 'open_palm', 0.8, 0.05, 0.2, 0.15,
                              np.linspace(0, 1, 5), np.array([0, 0, 1.0])))


def _header(frame: str = 'cam_optical') -> Header:
    h = Header(frame_id=frame)
    h.stamp.sec, h.stamp.nanosec = 12, 345
    return h


# ------------------------------------------------------------------------ images

@pytest.mark.parametrize('encoding,make', [
    ('rgb8', lambda rgb: rgb),
    ('bgr8', lambda rgb: rgb[:, :, ::-1]),
    ('rgba8', lambda rgb: np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])),
    ('bgra8', lambda rgb: np.dstack([rgb[:, :, ::-1], np.zeros(rgb.shape[:2], np.uint8)])),
])
def test_colour_encodings_round_trip_with_row_padding(encoding, make):
    rgb = RNG.integers(0, 256, (6, 10, 3), dtype=np.uint8)
    for pad in (0, 13):  # a padded step is legal and must be honoured
        out = conv.image_to_rgb(_image_msg(np.ascontiguousarray(make(rgb)), encoding, pad))
        np.testing.assert_array_equal(out, rgb)


def test_mono_and_yuv422_decode_to_rgb():
    grey = RNG.integers(0, 256, (4, 6), dtype=np.uint8)
    out = conv.image_to_rgb(_image_msg(grey, 'mono8'))
    np.testing.assert_array_equal(out, np.dstack([grey] * 3))
    # A flat colour survives YUV 4:2:2 (BT.601 studio range, as camera drivers send it) in
    # both byte orders within rounding.
    rgb = np.zeros((4, 8, 3), np.uint8)
    rgb[:] = (200, 80, 40)
    r, g, b = 200.0, 80.0, 40.0
    y = np.full((4, 8), round(16 + 0.257 * r + 0.504 * g + 0.098 * b), np.uint8)
    u = np.full((4, 4), round(128 - 0.148 * r - 0.291 * g + 0.439 * b), np.uint8)
    v = np.full((4, 4), round(128 + 0.439 * r - 0.368 * g - 0.071 * b), np.uint8)
    uyvy = np.zeros((4, 8, 2), np.uint8)
    uyvy[:, :, 1] = y
    uyvy[:, 0::2, 0], uyvy[:, 1::2, 0] = u, v
    yuyv = uyvy[:, :, ::-1].copy()
    for enc, arr in (('yuv422', uyvy), ('uyvy', uyvy), ('yuyv', yuyv), ('yuv422_yuy2', yuyv)):
        out = conv.image_to_rgb(_image_msg(np.ascontiguousarray(arr), enc))
        assert np.abs(out.astype(int) - rgb).max() <= 3, enc


@pytest.mark.parametrize('mutate,cause', [
    (lambda m: setattr(m, 'encoding', 'bayer_rggb8'), 'unsupported_encoding'),
    (lambda m: setattr(m, 'step', m.step - 1), 'bad_step'),
    (lambda m: setattr(m, 'data', m.data[:-3]), 'bad_step'),
    (lambda m: (setattr(m, 'width', 0), setattr(m, 'step', 0), setattr(m, 'data', b'')),
     'empty_image'),
])
def test_bad_images_are_rejected_with_their_cause(mutate, cause):
    msg = _image_msg(RNG.integers(0, 256, (4, 6, 3), dtype=np.uint8), 'rgb8')
    mutate(msg)
    with pytest.raises(conv.InputError) as err:
        conv.image_to_rgb(msg)
    assert err.value.cause == cause


def test_compressed_decodes_and_corrupt_jpeg_is_rejected():
    rgb = np.zeros((32, 48, 3), np.uint8)
    rgb[:, :24] = (250, 10, 10)
    ok, png = cv2.imencode('.png', rgb[:, :, ::-1])
    out = conv.compressed_to_rgb(SimpleNamespace(format='png', data=png.tobytes()))
    np.testing.assert_array_equal(out, rgb)
    ok, jpg = cv2.imencode('.jpg', rgb[:, :, ::-1])
    broken = b'\xff\xd8\xff' + bytes(RNG.integers(0, 256, 200, dtype=np.uint8))
    with pytest.raises(conv.InputError) as err:
        conv.compressed_to_rgb(SimpleNamespace(format='jpeg', data=broken))
    assert err.value.cause == 'corrupt_compressed'


def test_depth_units_invalid_pixels_and_size_check():
    mm = np.array([[0, 500], [1500, 65535]], np.uint16)
    msg = _image_msg(mm.view(np.uint8).reshape(2, 4), '16UC1')
    msg.width = 2
    out = conv.depth_to_metres(msg, expected_shape=(2, 2))
    assert math.isnan(out[0, 0]) and out[0, 1] == pytest.approx(0.5)
    assert out[1, 0] == pytest.approx(1.5)
    m = np.array([[np.nan, 0.75]], np.float32)
    msg = _image_msg(m.view(np.uint8).reshape(1, 8), '32FC1')
    msg.width = 2
    out = conv.depth_to_metres(msg)
    assert math.isnan(out[0, 0]) and out[0, 1] == pytest.approx(0.75)
    with pytest.raises(conv.InputError) as err:
        conv.depth_to_metres(msg, expected_shape=(480, 640))
    assert err.value.cause == 'depth_size'


def test_camera_info_validation():
    from sensor_msgs.msg import CameraInfo
    info = CameraInfo(k=[500.0, 0, 320, 0, 510, 240, 0, 0, 1], d=[0.1, 0, 0, 0, 0],
                      distortion_model='plumb_bob')
    intr = conv.camera_info_to_intrinsics(info)
    assert (intr.fx, intr.fy, intr.cx, intr.cy) == (500, 510, 320, 240)
    for k in ([0.0] * 9, [math.nan, 0, 320, 0, 500, 240, 0, 0, 1]):
        with pytest.raises(conv.InputError) as err:
            conv.camera_info_to_intrinsics(CameraInfo(k=k))
        assert err.value.cause == 'bad_camera_info'


# ------------------------------------------------------------------------ results out

def test_hand_array_tf_and_markers_agree_with_the_result():
    rot = _rot([0.3, -1.0, 0.2], 1.1)
    pos = np.array([0.05, -0.02, 0.6])
    result = FrameResult(640, 480, [_hand(3, 'right', rot, pos),
                                    _hand(5, 'left', rot.T, pos + 0.1, valid=False)])
    header = _header()
    msg = conv.frame_result_to_msg(result, header)
    assert msg.header.frame_id == 'cam_optical' and msg.header.stamp.nanosec == 345
    h0, h1 = msg.hands
    assert h0.camera_valid and not h1.camera_valid and h1.wrist_pose.orientation.w == 1.0
    np.testing.assert_allclose(conv.hand_array_keypoints(msg)[0], result.hands[0].keypoints)
    q = h0.wrist_pose.orientation
    back = cv2.Rodrigues(cv2.Rodrigues(rot)[0])[0]
    # Quaternion -> matrix must give the input rotation back.
    x, y, z, w = q.x, q.y, q.z, q.w
    qm = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                   [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                   [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
    np.testing.assert_allclose(qm, back, atol=1e-9)
    assert h0.gesture == 'open_palm' and list(h0.finger_curl) == pytest.approx(
        np.linspace(0, 1, 5))
    np.testing.assert_allclose([h0.palm_normal.x, h0.palm_normal.y, h0.palm_normal.z],
                               rot[:, 2])

    tfs = hand_transforms(result, header, prefix='robot/', fingertips=True)
    assert [t.child_frame_id for t in tfs][:2] == ['robot/right_wrist', 'robot/right_thumb_tip']
    tr = tfs[0].transform.translation
    np.testing.assert_allclose([tr.x, tr.y, tr.z], pos)
    assert tfs[0].header.frame_id == 'cam_optical'

    tracker = MarkerTracker()
    arr = tracker.update(result, header)
    assert {(m.ns, m.id) for m in arr.markers} == {('hand_3', 0), ('hand_3', 1), ('hand_3', 2)}
    joints = [m for m in arr.markers if m.id == 1][0]
    np.testing.assert_allclose([[p.x, p.y, p.z] for p in joints.points],
                               result.hands[0].camera.keypoints)
    lines = [m for m in arr.markers if m.id == 0][0]
    assert len(lines.points) == 2 * len(HAND_CONNECTIONS)
    # The hand vanishes: its three markers are deleted, nothing else is sent.
    arr = tracker.update(FrameResult(640, 480, []), header)
    assert sorted((m.ns, m.id, m.action) for m in arr.markers) == [
        ('hand_3', i, 2) for i in range(3)]


def test_nan_3d_gives_no_marker_no_tf_and_finite_message():
    hand = _hand(1, 'left', np.eye(3), np.array([0, 0, 0.5]))
    hand.camera.keypoints[4] = np.nan
    result = FrameResult(640, 480, [hand])
    assert MarkerTracker().update(result, _header()).markers == []
    assert hand_transforms(result, _header()) == []
    msg = conv.frame_result_to_msg(result, _header())
    assert not msg.hands[0].camera_valid


def test_two_hands_on_one_side_get_track_id_suffixes():
    a = _hand(4, 'left', np.eye(3), np.array([0, 0, 0.5]))
    b = _hand(9, 'left', np.eye(3), np.array([0.1, 0, 0.5]))
    c = _hand(2, 'right', np.eye(3), np.array([0.2, 0, 0.5]))
    names = wrist_frame_names(FrameResult(640, 480, [a, b, c]), 'p_')
    assert names == {4: 'p_left_wrist_4', 9: 'p_left_wrist_9', 2: 'p_right_wrist'}


# ------------------------------------------------------------------------ queue, parameters

def test_slots_keep_only_the_newest_frame_and_count_drops():
    slots: LatestFrameSlots[int] = LatestFrameSlots(['a', 'b'])
    assert not slots.put('a', 1)
    assert slots.put('a', 2)
    slots.put('b', 10)
    assert slots.take_all(0.0) == {'a': 2, 'b': 10}
    assert slots.dropped('a') == 1 and slots.dropped('b') == 0
    seen: list[dict] = []
    done = threading.Event()

    def handler(batch: dict) -> None:
        seen.append(batch)
        if batch.get('a') == 'boom':
            raise RuntimeError('bad frame')
        done.set()

    errors: list[BaseException] = []
    worker = FrameWorker(slots, handler, errors.append)
    worker.start()
    slots.put('a', 'boom')
    time.sleep(0.3)
    slots.put('a', 3)  # the worker survived the exception
    assert done.wait(2.0)
    worker.stop()
    assert isinstance(errors[0], RuntimeError) and seen[-1] == {'a': 3}


def test_parameter_validation_reasons():
    assert parameters.validate('min_detection_confidence', 0.7) is None
    assert 'outside' in parameters.validate('min_detection_confidence', 1.5)
    assert 'restart' in parameters.validate('model', 'lite')
    assert parameters.validate('model', 'lite', running=False) is None
    assert 'one of' in parameters.validate('model', 'huge', running=False)
    assert 'integer' in parameters.validate('detect_every_n_frames', 2.5)
    assert 'bool' in parameters.validate('publish_tf', 1)
    assert 'device' in parameters.validate('device', 'gpu', running=False)
    assert parameters.validate('qos_overrides./image.subscription.depth', 3) is None
