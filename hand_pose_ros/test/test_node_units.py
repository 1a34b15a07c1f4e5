"""The ROS layer's pure pieces: image/CameraInfo/depth decoding, HandArray/TF/marker building,
the newest-frame slots and parameter validation (real ROS message classes, no DDS).

Hands are hand-made FrameResults with a known camera-frame pose, so every expected value
(quaternion, wrist translation, marker points) follows from the input by construction.
"""

from __future__ import annotations

import array
import math
import threading
import time
from types import SimpleNamespace

import cv2
from hand_pose_ros.core.results import (
    CameraFrame3D,
    FrameResult,
    GestureResult,
    HAND_CONNECTIONS,
    HandResult,
    Method3D,
    Roi,
)
from hand_pose_ros.ros import diagnostics as diag
from hand_pose_ros.ros import msg_in, msg_out, parameters, stamp_match
from hand_pose_ros.ros.frame_queue import FrameWorker, LatestFrameSlots
from hand_pose_ros.ros.markers import MarkerTracker
from hand_pose_ros.ros.stamp_match import StampBuffer
from hand_pose_ros.ros.tf import camera_tf_prefix, hand_transforms, wrist_frame_names
import numpy as np
import pytest
from std_msgs.msg import Header

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
        out = msg_in.image_to_rgb(_image_msg(np.ascontiguousarray(make(rgb)), encoding, pad))
        np.testing.assert_array_equal(out, rgb)


def test_outgoing_images_use_array_data_and_round_trip():
    """array('B') skips rosidl's per-byte check of bytes (about 0.1 s per VGA image)."""
    rgb = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    for enc in ('rgb8', 'bgr8'):
        msg = msg_out.rgb_to_image(rgb, _header(), enc)
        assert isinstance(msg.data, array.array) and msg.data.typecode == 'B'
        np.testing.assert_array_equal(msg_in.image_to_rgb(msg), rgb)
    flat = np.zeros((16, 16, 3), np.uint8)
    flat[:] = (200, 30, 30)  # one colour: JPEG keeps it within rounding
    jpeg = msg_out.rgb_to_compressed(flat, _header(), quality=100)
    assert isinstance(jpeg.data, array.array) and jpeg.data.typecode == 'B'
    assert np.abs(msg_in.compressed_to_rgb(jpeg).astype(int) - flat).max() <= 3


def test_mono_and_yuv422_decode_to_rgb():
    grey = RNG.integers(0, 256, (4, 6), dtype=np.uint8)
    out = msg_in.image_to_rgb(_image_msg(grey, 'mono8'))
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
        out = msg_in.image_to_rgb(_image_msg(np.ascontiguousarray(arr), enc))
        assert np.abs(out.astype(int) - rgb).max() <= 3, enc


def test_mono16_and_ir_16uc1_are_stretched_to_8_bits():
    # A 12-bit sensor's values (0-4095) and an IR stream's (low thousands, one hot pixel):
    # the frame's 0.5th and 99.5th percentiles map to 0 and 255, whatever the bit depth.
    ramp = np.tile(np.linspace(1000, 3000, 128).astype(np.uint16), (64, 1))
    ramp[0, 0] = 65535  # a projector dot or specular hot pixel saturates, not the frame
    for encoding in ('mono16', '16UC1'):
        for big in (False, True):
            raw = ramp.astype('>u2' if big else '<u2')
            msg = SimpleNamespace(height=64, width=128, encoding=encoding, step=256,
                                  is_bigendian=int(big), data=raw.tobytes())
            assert msg_in.check_image(msg) == 2
            out = msg_in.image_to_rgb(msg)
            assert out.shape == (64, 128, 3) and out.dtype == np.uint8
            np.testing.assert_array_equal(out[..., 0], out[..., 2])
            assert out[5, 0, 0] == 0 and out[5, -1, 0] == 255
            assert 120 <= out[5, 64, 0] <= 140  # linear in between
            assert out[0, 0, 0] == 255
    flat = SimpleNamespace(height=4, width=4, encoding='mono16', step=8, is_bigendian=0,
                           data=np.full((4, 4), 500, np.uint16).tobytes())
    assert msg_in.image_to_rgb(flat).max() == 0  # no division by zero on a flat frame
    odd = SimpleNamespace(height=2, width=3, encoding='mono16', step=5, is_bigendian=0,
                          data=bytes(10))
    with pytest.raises(msg_in.InputError, match='bad_step'):
        msg_in.check_image(odd)


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
    with pytest.raises(msg_in.InputError) as err:
        msg_in.image_to_rgb(msg)
    assert err.value.cause == cause


def test_compressed_decodes_and_corrupt_jpeg_is_rejected():
    rgb = np.zeros((32, 48, 3), np.uint8)
    rgb[:, :24] = (250, 10, 10)
    ok, png = cv2.imencode('.png', rgb[:, :, ::-1])
    out = msg_in.compressed_to_rgb(SimpleNamespace(format='png', data=png.tobytes()))
    np.testing.assert_array_equal(out, rgb)
    ok, jpg = cv2.imencode('.jpg', rgb[:, :, ::-1])
    broken = b'\xff\xd8\xff' + bytes(RNG.integers(0, 256, 200, dtype=np.uint8))
    with pytest.raises(msg_in.InputError) as err:
        msg_in.compressed_to_rgb(SimpleNamespace(format='jpeg', data=broken))
    assert err.value.cause == 'corrupt_compressed'


def test_depth_units_invalid_pixels_and_size_check():
    mm = np.array([[0, 500], [1500, 65535]], np.uint16)
    msg = _image_msg(mm.view(np.uint8).reshape(2, 4), '16UC1')
    msg.width = 2
    out = msg_in.depth_to_metres(msg, expected_shape=(2, 2))
    assert math.isnan(out[0, 0]) and out[0, 1] == pytest.approx(0.5)
    assert out[1, 0] == pytest.approx(1.5)
    m = np.array([[np.nan, 0.75]], np.float32)
    msg = _image_msg(m.view(np.uint8).reshape(1, 8), '32FC1')
    msg.width = 2
    out = msg_in.depth_to_metres(msg)
    assert math.isnan(out[0, 0]) and out[0, 1] == pytest.approx(0.75)
    with pytest.raises(msg_in.InputError) as err:
        msg_in.depth_to_metres(msg, expected_shape=(480, 640))
    assert err.value.cause == 'depth_size'


def test_camera_info_validation():
    from sensor_msgs.msg import CameraInfo
    info = CameraInfo(k=[500.0, 0, 320, 0, 510, 240, 0, 0, 1], d=[0.1, 0, 0, 0, 0],
                      distortion_model='plumb_bob')
    intr = msg_in.camera_info_to_intrinsics(info)
    assert (intr.fx, intr.fy, intr.cx, intr.cy) == (500, 510, 320, 240)
    for k in ([0.0] * 9, [math.nan, 0, 320, 0, 500, 240, 0, 0, 1]):
        with pytest.raises(msg_in.InputError) as err:
            msg_in.camera_info_to_intrinsics(CameraInfo(k=k))
        assert err.value.cause == 'bad_camera_info'


# ------------------------------------------------------------------------ results out

def test_hand_array_tf_and_markers_agree_with_the_result():
    rot = _rot([0.3, -1.0, 0.2], 1.1)
    pos = np.array([0.05, -0.02, 0.6])
    result = FrameResult(640, 480, [_hand(3, 'right', rot, pos),
                                    _hand(5, 'left', rot.T, pos + 0.1, valid=False)])
    header = _header()
    msg = msg_out.frame_result_to_msg(result, header)
    assert msg.header.frame_id == 'cam_optical' and msg.header.stamp.nanosec == 345
    h0, h1 = msg.hands
    assert h0.camera_valid and not h1.camera_valid and h1.wrist_pose.orientation.w == 1.0
    np.testing.assert_allclose(msg_out.hand_array_keypoints(msg)[0], result.hands[0].keypoints)
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
    msg = msg_out.frame_result_to_msg(result, _header())
    assert not msg.hands[0].camera_valid


def test_two_hands_on_one_side_get_track_id_suffixes():
    a = _hand(4, 'left', np.eye(3), np.array([0, 0, 0.5]))
    b = _hand(9, 'left', np.eye(3), np.array([0.1, 0, 0.5]))
    c = _hand(2, 'right', np.eye(3), np.array([0.2, 0, 0.5]))
    names = wrist_frame_names(FrameResult(640, 480, [a, b, c]), 'p_')
    assert names == {4: 'p_left_wrist_4', 9: 'p_left_wrist_9', 2: 'p_right_wrist'}


def test_several_cameras_get_their_namespace_in_tf_frame_names():
    result = FrameResult(640, 480, [_hand(1, 'left', np.eye(3), np.array([0, 0, 0.5]))])
    one = camera_tf_prefix('robot/', 'cam_a', several_cameras=False)
    a = camera_tf_prefix('robot/', '/cam_a/', several_cameras=True)
    b = camera_tf_prefix('robot/', 'cam_b', several_cameras=True)
    assert [t.child_frame_id for t in hand_transforms(result, _header(), one)] == [
        'robot/left_wrist']
    names = [t.child_frame_id for p in (a, b)
             for t in hand_transforms(result, _header(), p, fingertips=True)]
    assert names[0] == 'robot/cam_a_left_wrist' and 'robot/cam_b_left_index_finger_tip' in names
    assert len(set(names)) == len(names) == 12  # no frame is shared by the two cameras
    assert camera_tf_prefix('', '', several_cameras=True) == ''


# ------------------------------------------------------------------------ stamp matching

def test_stamp_match_exact_late_and_no_wait_when_a_newer_one_is_there():
    buf = StampBuffer(5)
    ms = 1_000_000
    buf.add(100 * ms, 'a')
    m = buf.match(105 * ms, 10 * ms, wait_s=5.0)
    assert (m.item, m.exact, m.waited) == ('a', True, False)
    # The matching message arrives while the image waits for it.
    threading.Timer(0.05, buf.add, (200 * ms, 'b')).start()
    m = buf.match(200 * ms, 10 * ms, wait_s=5.0)
    assert (m.item, m.exact, m.waited, m.first_mismatch) == ('b', True, True, False)
    # A message newer than the image is here: the matching one is not coming, no wait
    # (a 5 s wait would time the test out on the join below).
    buf.add(400 * ms, 'c')
    done: list = []
    t = threading.Thread(target=lambda: done.append(buf.match(330 * ms, 10 * ms, 5.0)))
    t.start()
    t.join(2.0)
    assert done and (done[0].item, done[0].exact, done[0].waited) == ('c', False, False)
    assert done[0].first_mismatch
    assert not buf.match(310 * ms, 10 * ms, 0.0).first_mismatch  # reported once per buffer
    assert buf.latest() == 'c'


def test_stamp_match_stops_waiting_for_stamps_that_never_match():
    """Side-topic stamps always older than the image (another clock): after MAX_MISSES
    fruitless waits, only every PROBE_EVERY-th frame waits; a match restores waiting."""
    buf = StampBuffer(5)
    buf.add(0, 'old')
    waits = [buf.match(10**9 * (k + 1), 1000, wait_s=0.001).waited for k in range(65)]
    first = stamp_match.MAX_MISSES
    assert waits[:first] == [True] * first
    rest = waits[first:]
    assert sum(rest) == len(rest) // stamp_match.PROBE_EVERY
    assert all(w == ((i + 1) % stamp_match.PROBE_EVERY == 0) for i, w in enumerate(rest))
    assert not buf.match(10**12, 1000, 0.0, startup=True).exact
    buf.add(10**12, 'now')
    assert buf.match(10**12, 1000, 0.001).exact
    assert buf.match(2 * 10**12, 1000, 0.001).waited  # waiting again after a match
    empty = StampBuffer(5)
    assert empty.match(0, 1000, 0.001, startup=True).waited
    assert not empty.match(0, 1000, 0.001, startup=False).waited


# ------------------------------------------------------------------------ diagnostics

def test_diagnostic_level_forgets_old_errors_but_counts_stay():
    stats = diag.CameraStats('cam', dropped=lambda: 2)
    for k in range(101):  # 10 Hz input for 10 s, one bad frame at 0.5 s
        stats.on_input(now=k * 0.1)
    stats.on_error('bad_step', now=0.5)
    early = stats.snapshot(now=1.0)
    assert diag.status_level(early) == 1 and 'bad_step x1' in diag.status_message(early)
    late = stats.snapshot(now=10.0)
    assert late['errors'] == {'bad_step': 1} and late['dropped'] == 2
    assert diag.status_level(late) == 0 and 'Hz processed' in diag.status_message(late)
    stats.on_error('bad_step', now=9.9)
    again = stats.snapshot(now=10.0)
    assert diag.status_level(again) == 1 and again['errors'] == {'bad_step': 2}
    assert diag.status_message(again).endswith('bad_step x1')


def _frames_at_10_hz(stats: diag.CameraStats, first: int, last: int, lost_every: int = 0
                     ) -> float:
    """CameraInfo and image of frames first..last-1 (stamp k, time k/10 s); every
    `lost_every`-th image lost. Returns the time of the last frame."""
    for k in range(first, last):
        stats.on_info_stamp(k, now=k * 0.1)
        if not lost_every or k % lost_every:
            stats.on_image_stamp(k, now=k * 0.1)
    return (last - 1) * 0.1


def test_transport_loss_is_reported_while_over_a_tenth_of_the_recent_frames():
    stats = diag.CameraStats('cam')
    now = _frames_at_10_hz(stats, 0, 30)  # 3 s, every frame arrives
    assert stats.transport_loss_to_report(now=now) is None
    now = _frames_at_10_hz(stats, 30, 90, lost_every=3)  # 6 s, a third of the images lost
    lost, frames = stats.transport_loss_to_report(now=now)
    assert 0.25 < lost / frames < 0.4 and frames >= 40
    assert stats.snapshot(now=now)['lost_transport'] == 20 - 3  # the last 3 not settled yet
    now = _frames_at_10_hz(stats, 90, 160)  # 7 s without loss: the window forgets
    assert stats.transport_loss_to_report(now=now) is None
    now = _frames_at_10_hz(stats, 160, 200, lost_every=20)  # 1 of 20: below a tenth
    assert stats.transport_loss_to_report(now=now) is None


def test_camera_info_before_the_first_image_is_not_counted_lost():
    """At start-up the CameraInfo subscription is often matched before the image one."""
    stats = diag.CameraStats('cam')
    for k in range(10):
        stats.on_info_stamp(k, now=k * 0.1)
    now = _frames_at_10_hz(stats, 10, 60)
    assert stats.snapshot(now=now)['lost_transport'] == 0
    assert stats.transport_loss_to_report(now=now) is None


def test_transport_loss_is_not_reported_before_any_image_matched_its_camera_info():
    """A camera stamping CameraInfo differently (or only images lost): no estimate, no
    warning."""
    stats = diag.CameraStats('cam')
    for k in range(50):
        stats.on_info_stamp(k, now=k * 0.1)
        stats.on_image_stamp(10**12 + k, now=k * 0.1)
    assert stats.transport_loss_to_report(now=5.0) is None


def test_transport_loss_message_names_the_cause_and_the_export(monkeypatch):
    from hand_pose_ros.ros import transport
    for var in transport.PROFILE_VARS:
        monkeypatch.delenv(var, raising=False)
    text = diag.transport_loss_message('/cam', 12, 40)
    assert text.startswith('camera /cam: 12 of 40 frames in the last 5 s were lost')
    assert "Fast DDS's default transport" in text and 'camera driver' in text
    assert 'this node (which runs without one)' in text
    export = transport.export_command()
    assert export in text and transport.PROFILE_FILE in export
    assert all(f'{var}=' in export for var in transport.PROFILE_VARS)
    monkeypatch.setenv(transport.PROFILE_VARS[0], '/etc/my_profile.xml')
    text = diag.transport_loss_message('/cam', 12, 40)
    assert "this node's transport profile" in text and '=/etc/my_profile.xml ' in text


def test_side_inputs_report_their_count_and_last_stamp():
    stats = diag.CameraStats('cam', side_topics=('camera_info', 'depth'))
    stats.on_side_input('camera_info', 5_000_000_001)
    stats.on_side_input('camera_info', 7_000_000_002)
    arr = diag.build_diagnostic_array({'cam': stats}, 'node', Header().stamp)
    values = diag.diagnostic_values(arr.status[0])
    assert values['camera_info_received'] == '2'
    assert values['camera_info_last_stamp'] == '7.000000002'
    assert values['depth_received'] == '0' and values['depth_last_stamp'] == 'n/a'
    assert 'depth_received' not in diag.diagnostic_values(diag.build_diagnostic_array(
        {'cam': diag.CameraStats('cam')}, 'node', Header().stamp).status[0])


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


def test_numbers_need_a_range_which_also_rejects_nan():
    assert 'outside' in parameters.validate('sync_tolerance_s', math.nan)
    assert 'outside' in parameters.validate('hand_scale', math.inf)
    with pytest.raises(ValueError, match='range'):
        parameters.ParamSpec('unbounded', 1.0, 'A number without a range.')
    with pytest.raises(ValueError, match='empty'):
        parameters.ParamSpec('names', [], 'An empty list default.')


# ------------------------------------------------------------------------ replay

def _folder(tmp_path, sizes: list[tuple[int, int]], broken: tuple[int, ...] = ()):
    for k, (w, h) in enumerate(sizes):
        path = tmp_path / f'{k:03d}.png'
        if k in broken:
            path.write_bytes(b'not a png')
        else:
            cv2.imwrite(str(path), np.full((h, w, 3), k * 20, np.uint8))
    return tmp_path


def test_replay_source_skips_unreadable_files(tmp_path):
    from hand_pose_ros.ros.replay import FrameSource
    src = FrameSource(str(_folder(tmp_path, [(8, 6)] * 4, broken=(1, 2))), loop=True)
    values = [int(src.next()[0, 0, 0]) for _ in range(4)]
    assert values == [0, 60, 0, 60]  # frames 1 and 2 skipped on every pass
    assert [p.name for p in src.unreadable] == ['001.png', '002.png'] * 2
    once = FrameSource(str(tmp_path), loop=False)
    assert [int(once.next()[0, 0, 0]), int(once.next()[0, 0, 0])] == [0, 60]
    assert once.next() is None


def test_replay_rejects_bad_rate_and_camera_info_size_at_start_up(tmp_path):
    from hand_pose_ros.ros.replay import _node_class
    import rclpy
    (tmp_path / 'frames').mkdir()
    folder = _folder(tmp_path / 'frames', [(8, 6)] * 2)
    calib = tmp_path / 'cam.yaml'
    calib.write_text('image_width: 640\nimage_height: 480\ncamera_matrix:\n  data: '
                     '[500.0, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0]\n')
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    try:
        node_class = _node_class()

        def make(**params):
            overrides = [rclpy.parameter.Parameter(k, value=v) for k, v in params.items()]
            return node_class(context=ctx, parameter_overrides=overrides)
        with pytest.raises(ValueError, match='rate_hz must be > 0'):
            make(source=str(folder), rate_hz=0.0)
        with pytest.raises(ValueError, match='640x480, the frames are 8x6'):
            make(source=str(folder), camera_info_file=str(calib))
        node = make(source=str(folder), camera_info_file=str(calib), width=640, height=480)
        assert node.first_size == (640, 480)
        node.destroy_node()
    finally:
        rclpy.shutdown(context=ctx)


def test_replay_with_a_stamp_start_publishes_each_frame_at_its_stamp(tmp_path):
    """A replay that starts after stamp_start_s begins at the next frame due, frame i stamped
    start + i / rate_hz and sent no earlier than that: replays started apart deliver frame i
    of every camera together."""
    from hand_pose_ros.ros import msg_in
    from hand_pose_ros.ros.replay import _node_class
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import Image
    folder = _folder(tmp_path, [(8, 6)] * 8)
    rate = 10.0
    start_s = time.time() - 8.25  # 82.5 frame periods ago: frame 83 (folder frame 3) is next
    start_ns = round(start_s * 1e9)  # as the replay reads the parameter
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    try:
        node = _node_class()(context=ctx, parameter_overrides=[
            rclpy.parameter.Parameter('source', value=str(folder)),
            rclpy.parameter.Parameter('rate_hz', value=rate),
            rclpy.parameter.Parameter('stamp_start_s', value=start_s)])
        got = []
        node.create_subscription(
            Image, 'image_raw', lambda m: got.append((msg_in.stamp_to_ns(m.header.stamp),
                                                      time.time_ns(), m.data[0])), 10)
        executor = SingleThreadedExecutor(context=ctx)
        executor.add_node(node)
        end = time.monotonic() + 60.0
        while len(got) < 3 and time.monotonic() < end:
            executor.spin_once(timeout_sec=0.1)
        executor.shutdown()
        node.destroy_node()
    finally:
        rclpy.shutdown(context=ctx)
    assert len(got) >= 3, got
    period_ns = round(1e9 / rate)
    indices = [round((stamp - start_ns) / period_ns) for stamp, _, _ in got[:3]]
    assert indices[0] >= 83 and indices == list(range(indices[0], indices[0] + 3)), indices
    for (stamp, received, value), index in zip(got, indices):
        assert stamp == start_ns + index * period_ns
        assert value == (index % 8) * 20, (index, value)  # frame i carries frame i's image
        assert received >= stamp - 5_000_000, (received - stamp) * 1e-6  # not before its time


def test_a_silent_camera_is_said_out_loud_with_the_likely_cause():
    """No image for NO_INPUT_WARN_S: a warning naming the resolved topic and telling a topic
    nobody publishes from publishers whose images do not arrive; quiet again once images
    come."""
    from hand_pose_ros.ros.diagnostics import NO_INPUT_LOG_PERIOD_S, NO_INPUT_WARN_S
    from hand_pose_ros.ros.node import HandPoseNode
    import rclpy
    from sensor_msgs.msg import Image
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    try:
        node = HandPoseNode(context=ctx, parameter_overrides=[
            rclpy.parameter.Parameter('cameras', value=['/silent_cam'])])
        other = rclpy.create_node('silent_cam_driver', context=ctx)
        try:
            (io,) = node.cameras.values()
            t0 = time.monotonic()
            assert io.check_input(t0 + NO_INPUT_WARN_S - 1.0) is None
            text = io.check_input(t0 + NO_INPUT_WARN_S + 1.0)
            assert 'no image on /silent_cam/image_raw' in text, text
            assert 'nothing publishes that topic' in text and 'since the node started' in text
            assert io.check_input(t0 + NO_INPUT_WARN_S + 2.0) is None  # throttled
            other.create_publisher(Image, '/silent_cam/image_raw', 10)
            end = time.monotonic() + 30.0
            while node.count_publishers('/silent_cam/image_raw') < 1:
                assert time.monotonic() < end, 'the publisher never showed in the graph'
                time.sleep(0.05)
            io.stats.on_side_input('camera_info', 1)
            later = t0 + NO_INPUT_WARN_S + NO_INPUT_LOG_PERIOD_S + 5.0
            text = io.check_input(later)
            assert '1 publisher(s) on it, but no image arrived' in text, text
            assert '1 CameraInfo message(s) arrived' in text and 'export ' in text
            io.stats.on_input(later)
            assert io.check_input(later + 1.0) is None  # images again: nothing to say
        finally:
            other.destroy_node()
            node.destroy_node()
    finally:
        rclpy.shutdown(context=ctx)


def test_raised_max_image_pixels_admits_a_40_mp_camera():
    """The node's max_image_pixels is the one limit: raised to 50 MP, a 40 MP raw image is
    checked on receipt, decoded and tracked on the worker (a second, hard-coded 34 MP check
    in the decoder used to reject it)."""
    from hand_pose_ros.ros.node import HandPoseNode
    import rclpy
    from sensor_msgs.msg import Image
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    try:
        node = HandPoseNode(context=ctx, parameter_overrides=[
            rclpy.parameter.Parameter('max_image_pixels', value=50_000_000)])
        try:
            width, height = 8000, 5000  # 40 MP
            msg = Image(header=Header(frame_id='cam'), height=height, width=width,
                        encoding='mono8', step=width)
            msg.data = np.zeros(width * height, np.uint8).tobytes()
            io = node.cameras['/']
            io.on_image(msg, False)
            end = time.monotonic() + 120.0
            while (io.stats.processed_total < 1 and not io.stats.errors
                   and time.monotonic() < end):
                time.sleep(0.05)
            assert io.stats.errors == {} and io.stats.processed_total == 1, (
                io.stats.snapshot())
        finally:
            node.destroy_node()
    finally:
        rclpy.shutdown(context=ctx)
