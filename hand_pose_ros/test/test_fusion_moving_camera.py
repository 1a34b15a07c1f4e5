"""A moving camera: the node's fusion must use each camera's pose at its image's stamp.

The fusion glue of hand_pose_node (ros/fusion.NodeFusion: TF lookup at the image stamp,
calibration from TF, stamp groups, the fuser, the fused HandArray) runs on a real tf2 Buffer
filled by set_transform: cam0 is static, cam1 is on /tf (not static) with a different pose
at each of three stamps. The hand's images at stamp 1 and 2 are exact projections through
the camera's pose at that stamp, so only the pose at the stamp triangulates them back to the
hand; the latest pose (stamp 3) or the first one would put it elsewhere, which the test
checks too, so it can tell the difference. Without DDS: the node's own DDS tests run the
same class end to end with static poses (test_fusion_dds.py).
"""

from __future__ import annotations

import threading
from types import SimpleNamespace

from hand_pose_msgs.msg import HandArray
from hand_pose_ros.core.fusion.calibration import CameraCalibration
from hand_pose_ros.core.fusion.fuser import FusionOptions, MultiViewFuser
from hand_pose_ros.core.results import FrameResult, HandResult, Roi
from hand_pose_ros.ros.calibration_tf import camera_transform
from hand_pose_ros.ros.diagnostics import LogThrottle
from hand_pose_ros.ros.fusion import NodeFusion, StampGroups
from hand_pose_ros.ros.markers import MarkerTracker
from hand_pose_ros.ros.msg_out import ns_to_stamp
from hand_pose_ros.tools.multiview_synthetic import HAND_M, look_at, observe, teleop_rig
import numpy as np
import pytest
from rclpy.time import Time
from std_msgs.msg import Header
import tf2_ros

S = 1_000_000_000
STAMPS = (10 * S, 11 * S, 12 * S)  # cam1's TF samples; images at the first two
HAND_AT = (np.array([0.0, 0.0, 0.0]), np.array([0.05, -0.03, 0.02]))  # the hand, per image


def _moved(cam: CameraCalibration, position: np.ndarray) -> CameraCalibration:
    """The camera at another place, looking at the origin (where the hand is)."""
    rotation = look_at(position, np.zeros(3))
    return CameraCalibration(name=cam.name, intrinsics=cam.intrinsics, rotation=rotation,
                             translation=-rotation @ position, width=cam.width,
                             height=cam.height)


class _Io:
    """A camera as NodeFusion sees it: a name and the diagnostics its rejections go to."""

    def __init__(self, name: str):
        self.name = name
        self.rejected: list = []

    def reject(self, error) -> None:
        self.rejected.append(error)


class _Publisher:
    def __init__(self):
        self.sent: list = []

    def publish(self, msg) -> None:
        self.sent.append(msg)


def _node_fusion(buffer: tf2_ros.Buffer, cameras: list[str]) -> NodeFusion:
    """NodeFusion on a tf2 Buffer, with the node's settings it reads (no rclpy node)."""
    fusion = NodeFusion.__new__(NodeFusion)
    fusion.node = SimpleNamespace(
        config=SimpleNamespace(fusion_frame='world', fusion_sync_tolerance_s=0.01,
                               fusion_max_wait_s=0.3, publish_tf=False, publish_markers=False),
        tracker=SimpleNamespace(options=SimpleNamespace(
            max_num_hands=2, hand_scale=1.0, smoothing=False, skeleton_lock=False,
            skeleton_lock_frames=10)),
        slots=SimpleNamespace(has_pending=lambda: False),
        context=SimpleNamespace(ok=lambda: True))
    fusion.cameras = dict.fromkeys(cameras)
    fusion.buffer = buffer
    fusion.groups = StampGroups(cameras)
    fusion.lock = threading.Lock()
    fusion.sets = None
    fusion.markers = MarkerTracker()
    fusion.fused_sets = 0
    fusion.last_fused_ns = None
    fusion.busy = False
    fusion.errors = 0
    fusion.error_log = LogThrottle()
    fusion.pub_hands = _Publisher()
    fusion.pub_markers = _Publisher()
    return fusion


def _frame(cam: CameraCalibration, points: np.ndarray) -> FrameResult:
    """The camera's tracked frame of the hand: exact pixels, hand-centric world."""
    (view,) = observe({cam.name: cam}, points, np.random.default_rng(0), noise=0.0).values()
    hand = HandResult(id=0, handedness='right', handedness_score=0.95, raw_handedness='Right',
                      score=1.0, keypoints=np.column_stack([view.keypoints, np.zeros(21)]),
                      world=view.world, roi=Roi(0.0, 0.0, 1.0, 1.0, 0.0))
    return FrameResult(cam.width, cam.height, [hand])


def _two_view_errors(rig: dict, frames: dict[str, FrameResult], truth: np.ndarray) -> list:
    """The core fuser alone on the given poses: each hand resting on both cameras, its
    largest keypoint error (metres); a wrong pose either keeps the views apart (no such
    hand) or triangulates them elsewhere."""
    from hand_pose_ros.core.fusion.results import ViewHand
    fuser = MultiViewFuser(rig, FusionOptions(smoothing=False, skeleton_lock=False))
    views = {c: [ViewHand.from_hand(c, f.hands[0])] for c, f in frames.items()}
    return [float(np.linalg.norm(h.keypoints_world - truth, axis=1).max())
            for h in fuser.process(views, 0.0).hands if len(h.cameras) == 2]


@pytest.fixture
def rig_and_buffer():
    rig = teleop_rig(2, np.random.default_rng(3))
    cam0, cam1 = rig['cam0'], rig['cam1']
    # cam1 on a rig arm: three places 20-40 cm apart, each looking at the hand.
    poses = [cam1, _moved(cam1, cam1.centre + np.array([0.0, 0.3, 0.1])),
             _moved(cam1, cam1.centre + np.array([-0.2, -0.3, 0.2]))]
    buffer = tf2_ros.Buffer()
    buffer.set_transform_static(
        camera_transform(cam0, 'world', 'cam0_optical_frame', ns_to_stamp(0)), 'test')
    for stamp, pose in zip(STAMPS, poses):
        buffer.set_transform(
            camera_transform(pose, 'world', 'cam1_optical_frame', ns_to_stamp(stamp)), 'test')
    return cam0, poses, buffer


def test_tf_buffer_holds_a_different_cam1_pose_per_stamp(rig_and_buffer):
    _, poses, buffer = rig_and_buffer
    for stamp, pose in zip(STAMPS, poses):
        t = buffer.lookup_transform('cam1_optical_frame', 'world', Time(nanoseconds=stamp))
        tr = t.transform.translation
        np.testing.assert_allclose([tr.x, tr.y, tr.z], pose.translation, atol=1e-9)


def test_fused_hand_follows_the_moving_camera_pose_at_each_image_stamp(rig_and_buffer):
    cam0, poses, buffer = rig_and_buffer
    fusion = _node_fusion(buffer, ['cam0', 'cam1'])
    ios = {'cam0': _Io('cam0'), 'cam1': _Io('cam1')}
    for i, (stamp, centre) in enumerate(zip(STAMPS[:2], HAND_AT)):
        truth = HAND_M + centre
        frames = {'cam0': _frame(cam0, truth), 'cam1': _frame(poses[i], truth)}
        for cam, frame in frames.items():
            header = Header(frame_id=f'{cam}_optical_frame', stamp=ns_to_stamp(stamp))
            fusion.add(ios[cam], header, (cam0 if cam == 'cam0' else poses[i]).intrinsics,
                       frame)
        assert not ios['cam1'].rejected, ios['cam1'].rejected
        assert len(fusion.pub_hands.sent) == i + 1, 'one fused HandArray per set'
        msg: HandArray = fusion.pub_hands.sent[-1]
        assert msg.header.frame_id == 'world'
        (hand,) = msg.hands
        got = np.array([[p.x, p.y, p.z] for p in hand.keypoints_camera])
        error = np.linalg.norm(got - truth, axis=1).max()
        assert error < 1e-3, f'image {i}: fused hand {error * 1000:.1f} mm off the hand'
        # The other poses of cam1 triangulate these same pixels elsewhere: the pose at the
        # stamp, not the latest or the first one, is what put the hand right.
        right = _two_view_errors({'cam0': cam0, 'cam1': poses[i]}, frames, truth)
        assert len(right) == 1 and right[0] < 1e-3, right
        for j, wrong in enumerate(poses):
            if j != i:
                errors = _two_view_errors({'cam0': cam0, 'cam1': wrong}, frames, truth)
                assert all(e > 0.02 for e in errors), (i, j, errors)


def test_a_stamp_past_the_last_moving_pose_is_reported_not_guessed(rig_and_buffer):
    """No TF for cam1 after its last sample: left out of fusion (fusion_no_tf)."""
    cam0, poses, buffer = rig_and_buffer
    fusion = _node_fusion(buffer, ['cam0', 'cam1'])
    io = _Io('cam1')
    late = STAMPS[-1] + 5 * S
    header = Header(frame_id='cam1_optical_frame', stamp=ns_to_stamp(late))
    fusion.add(io, header, poses[-1].intrinsics, _frame(poses[-1], HAND_M))
    assert [e.cause for e in io.rejected] == ['fusion_no_tf']
