"""The message API survives real DDS: a HandArray with two fully filled hands goes from a
publisher process to a subscriber process and every field arrives as sent.

Run as a script (`python test_messages_dds.py pub|sub TOPIC`) it is one of the two nodes; the
test starts both in separate processes on a domain id and topic of its own, restricted to
localhost discovery, with bounded timeouts.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import subprocess
import sys
import time
import uuid

from conftest import stop_processes
from geometry_msgs.msg import Point, Pose, Vector3
from hand_pose_msgs.msg import Hand, HandArray
from hand_pose_ros.ros.transport import private_domain_id
import pytest

TIMEOUT_S = 60.0
# The 21 names as TF.js writes them, in index order, and the matching constant names.
TFJS_NAMES = (
    'wrist', 'thumb_cmc', 'thumb_mcp', 'thumb_ip', 'thumb_tip',
    'index_finger_mcp', 'index_finger_pip', 'index_finger_dip', 'index_finger_tip',
    'middle_finger_mcp', 'middle_finger_pip', 'middle_finger_dip', 'middle_finger_tip',
    'ring_finger_mcp', 'ring_finger_pip', 'ring_finger_dip', 'ring_finger_tip',
    'pinky_finger_mcp', 'pinky_finger_pip', 'pinky_finger_dip', 'pinky_finger_tip',
)
CONSTANT_NAMES = (
    [name.upper() for name in TFJS_NAMES] + ['NUM_KEYPOINTS', 'LEFT', 'RIGHT', 'METHOD_NONE',
                                             'METHOD_PNP', 'METHOD_DEPTH', 'FINGER_THUMB',
                                             'FINGER_INDEX', 'FINGER_MIDDLE', 'FINGER_RING',
                                             'FINGER_PINKY', 'KEYPOINT_NAMES']
    + [n for n in dir(Hand) if n.startswith('GESTURE_')])


def to_plain(value):
    """A message as nested dicts/lists of Python scalars, so two processes can compare it."""
    if hasattr(value, 'get_fields_and_field_types'):
        return {name: to_plain(getattr(value, name))
                for name in value.get_fields_and_field_types()}
    if hasattr(value, 'tolist'):  # numpy arrays and scalars (fixed-size numeric arrays)
        return to_plain(value.tolist())
    if isinstance(value, (list, tuple)) or type(value).__name__ == 'array':
        return [to_plain(v) for v in value]
    return value


def _points(hand_no: int, scale: float) -> list[Point]:
    # float64 fields: JSON carries them exactly; no coordinate is zero (the default).
    return [Point(x=scale * (i + 1) + hand_no, y=0.3 - scale * (i + 2),
                  z=-scale * (i + 3) - hand_no)
            for i in range(Hand.NUM_KEYPOINTS)]


def make_hand(hand_no: int) -> Hand:
    """A hand whose every field differs from its default (checked by the test)."""
    hand = Hand()
    hand.id = 41 + hand_no
    hand.handedness = (Hand.LEFT, Hand.RIGHT)[hand_no]
    hand.handedness_score = 0.875 + hand_no * 0.0625  # float32 fields: exact in float32
    hand.score = 0.96875 - hand_no * 0.125
    hand.keypoints = _points(hand_no, 16.5)
    hand.keypoints_hand = _points(hand_no, 0.0078125)
    hand.keypoints_camera = _points(hand_no, 0.03125)
    hand.camera_valid = True
    hand.camera_method = (Hand.METHOD_PNP, Hand.METHOD_DEPTH)[hand_no]
    hand.reprojection_error = 1.25 + hand_no
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = 0.0625, -0.125, 0.5 + hand_no
    pose.orientation.x, pose.orientation.y = 0.5, -0.5
    pose.orientation.z, pose.orientation.w = 0.5, 0.5 - hand_no  # unit norm for both hands
    hand.wrist_pose = pose
    hand.hand_scale = 1.125 - 0.25 * hand_no
    hand.scale_source = (Hand.SCALE_USER, Hand.SCALE_DEPTH)[hand_no]
    hand.stale = True
    hand.age = 0.0625 + 0.125 * hand_no
    hand.keypoint_in_image = [bool((i + hand_no) % 3) for i in range(Hand.NUM_KEYPOINTS)]
    hand.gesture = (Hand.GESTURE_THUMB_UP, Hand.GESTURE_PINCH)[hand_no]
    hand.gesture_score = 0.75 + hand_no * 0.125
    hand.gesture_raw = (Hand.GESTURE_VICTORY, Hand.GESTURE_I_LOVE_YOU)[hand_no]
    hand.pinch_distance = 0.03125 + hand_no * 0.015625
    hand.pinch_strength = 0.5 + hand_no * 0.25
    hand.grip_aperture = 0.15625 - hand_no * 0.03125
    hand.finger_curl = [0.125 * (f + 1) + 0.0625 * hand_no for f in range(5)]
    hand.palm_normal = Vector3(x=0.48, y=-0.6 if hand_no else 0.6, z=0.64)
    hand.keypoints_mano = [Point(x=0.001 * i + 0.5, y=-0.002 * i - 0.25 * (hand_no + 1),
                                 z=0.003 * i + 0.125) for i in range(21)]
    hand.joint_angles = [0.03125 * (j + 1) + 0.5 * hand_no for j in range(20)]
    hand.cameras = [['cam_left', 'cam_right'], ['cam_top']][hand_no]
    hand.camera_reprojection_error = [[1.5, 2.25], [0.75]][hand_no]
    hand.keypoint_confidence = [0.03125 * (i + 1) - 0.015625 * hand_no for i in range(21)]
    return hand


def make_hand_array() -> HandArray:
    msg = HandArray()
    msg.header.stamp.sec = 1_700_000_123
    msg.header.stamp.nanosec = 456_789_000
    msg.header.frame_id = 'camera_color_optical_frame'
    msg.width, msg.height = 1280, 720
    msg.hands = [make_hand(0), make_hand(1)]
    return msg


def _leaves(plain, path=''):
    if isinstance(plain, dict):
        for key, value in plain.items():
            yield from _leaves(value, f'{path}.{key}')
    elif isinstance(plain, list) and plain and isinstance(plain[0], (dict, list)):
        for i, value in enumerate(plain):
            yield from _leaves(value, f'{path}[{i}]')
    else:
        yield path, plain


# ---------------------------------------------------------------- the two node processes

def _run_publisher(topic: str) -> int:
    import rclpy

    rclpy.init()
    try:
        node = rclpy.create_node('hand_array_test_publisher')
        publisher = node.create_publisher(HandArray, topic, 10)
        msg = make_hand_array()
        deadline = time.monotonic() + TIMEOUT_S
        # Publish until the parent stops us: the subscriber may discover us late.
        while time.monotonic() < deadline:
            publisher.publish(msg)
            rclpy.spin_once(node, timeout_sec=0.05)
        node.destroy_node()
    finally:
        rclpy.try_shutdown()
    return 0


def _run_subscriber(topic: str) -> int:
    import rclpy

    rclpy.init()
    try:
        node = rclpy.create_node('hand_array_test_subscriber')
        received: list[HandArray] = []
        node.create_subscription(HandArray, topic, received.append, 10)
        deadline = time.monotonic() + TIMEOUT_S
        while not received and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.05)
        node.destroy_node()
    finally:
        rclpy.try_shutdown()
    if not received:
        print('no message received', file=sys.stderr)
        return 1
    constants = {name: getattr(Hand, name) for name in CONSTANT_NAMES}
    print(json.dumps({'msg': to_plain(received[0]), 'constants': constants,
                      'type': type(received[0]).__module__}))
    return 0


# ---------------------------------------------------------------- the tests

def test_sample_message_fills_every_field():
    """Guards the DDS test: a field left at its default would pass unchecked."""
    sent = dict(_leaves(to_plain(make_hand_array())))
    default = to_plain(HandArray(hands=[Hand(), Hand()]))
    unchanged = [path for path, value in _leaves(default)
                 if path in sent and sent[path] == value]
    assert not unchanged, f'fields left at their default: {unchanged}'
    assert set(to_plain(Hand())) == set(to_plain(make_hand(0)))


def test_constants_and_names_match_tfjs():
    names = Hand.KEYPOINT_NAMES.split(',')
    assert tuple(names) == TFJS_NAMES
    assert Hand.NUM_KEYPOINTS == len(names) == 21
    for index, name in enumerate(TFJS_NAMES):
        assert getattr(Hand, name.upper()) == index
    from hand_pose_ros.core.results import KEYPOINT_NAMES
    assert tuple(KEYPOINT_NAMES) == TFJS_NAMES
    assert (Hand.LEFT, Hand.RIGHT) == ('left', 'right')
    assert (Hand.METHOD_NONE, Hand.METHOD_PNP, Hand.METHOD_DEPTH) == (0, 1, 2)
    from hand_pose_ros.core.results import Method3D, ScaleSource
    assert (Hand.METHOD_TRIANGULATED, Hand.METHOD_SINGLE_VIEW) == (
        Method3D.TRIANGULATED, Method3D.SINGLE_VIEW)
    assert Hand.SCALE_TRIANGULATION == ScaleSource.TRIANGULATION
    assert len(Hand().keypoints) == len(Hand().keypoints_hand) == 21
    assert len(Hand().keypoints_camera) == 21 and len(Hand().finger_curl) == 5


def test_hand_array_roundtrip_over_dds(tmp_path: Path):
    env = dict(os.environ)
    # A domain and topic of our own so parallel runs never cross; discovery stays on this
    # machine (Jazzy+: ROS_AUTOMATIC_DISCOVERY_RANGE; Humble: ROS_LOCALHOST_ONLY).
    env['ROS_DOMAIN_ID'] = str(private_domain_id(4))
    env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    if 'humble' in env.get('ROS_DISTRO', ''):
        env['ROS_LOCALHOST_ONLY'] = '1'
    env['PYTHONPATH'] = os.pathsep.join(
        [str(Path(__file__).resolve().parents[1])] + env.get('PYTHONPATH', '').split(os.pathsep))
    topic = f'hands_test_{uuid.uuid4().hex[:12]}'
    script = str(Path(__file__).resolve())
    sub_out = tmp_path / 'sub.json'
    with open(sub_out, 'w') as out, open(tmp_path / 'sub.err', 'w') as sub_err, \
            open(tmp_path / 'pub.err', 'w') as pub_err:
        subscriber = subprocess.Popen([sys.executable, script, 'sub', topic], env=env,
                                      stdout=out, stderr=sub_err)
        publisher = subprocess.Popen([sys.executable, script, 'pub', topic], env=env,
                                     stdout=subprocess.DEVNULL, stderr=pub_err)
        try:
            sub_rc = subscriber.wait(timeout=TIMEOUT_S + 30)
        finally:
            stop_processes(subscriber, publisher)
    assert sub_rc == 0, (f'subscriber failed ({sub_rc}): {(tmp_path / "sub.err").read_text()}'
                         f'\npublisher: {(tmp_path / "pub.err").read_text()}')
    result = json.loads(sub_out.read_text())
    assert result['type'] == 'hand_pose_msgs.msg._hand_array'

    sent = to_plain(make_hand_array())
    got = result['msg']
    # Field by field, for a readable failure; then the whole tree.
    for (path, expected), (got_path, value) in zip(_leaves(sent), _leaves(got)):
        assert got_path == path
        assert value == expected, f'{path}: sent {expected!r}, received {value!r}'
    assert got == sent
    assert len(got['hands']) == 2
    assert got['hands'][1]['keypoints'][Hand.INDEX_FINGER_TIP] == sent['hands'][1]['keypoints'][8]

    constants = result['constants']
    assert constants['KEYPOINT_NAMES'].split(',') == list(TFJS_NAMES)
    for name in CONSTANT_NAMES:
        assert constants[name] == getattr(Hand, name), name


if __name__ == '__main__':
    if len(sys.argv) != 3 or sys.argv[1] not in ('pub', 'sub'):
        pytest.exit('usage: test_messages_dds.py pub|sub TOPIC', returncode=2)
    role, topic_name = sys.argv[1:]
    sys.exit(_run_publisher(topic_name) if role == 'pub' else _run_subscriber(topic_name))
