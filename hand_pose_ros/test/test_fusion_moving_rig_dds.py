"""Fusion over real DDS with cameras on a moving base: poses from /tf at each image's stamp.

Three calibrated cameras of ../shared/data/multiview/pose2sim_single are mounted on a `rig`
frame (calibration_tf with frame:=rig publishes rig -> camera on /tf_static), and the test
moves the rig in `world` by publishing world -> rig on /tf at every set's stamp, as a
robot's odometry or arm joints would. The images stay the same, so the hand is fixed in the
rig: the fused hand in world must follow the rig's pose at each stamp exactly. Right after
each set, a later transform (a far-off pose, half a second on) is published too, while the
node is still tracking: a node that used the latest transform instead of the one at the
image stamp, or a static pose, fails.
"""

from __future__ import annotations

import os

from conftest import shared_path, stop_processes
from geometry_msgs.msg import TransformStamped
from hand_pose_msgs.msg import Hand
from hand_pose_ros.core.fusion.calibration import load_rig
from hand_pose_ros.ros.transport import private_domain_id
import numpy as np
import pytest
import rclpy
from rclpy.duration import Duration
from scipy.spatial.transform import Rotation
from test_fusion_dds import (
    _frames,
    Client,
    node_params,
    start_node_and_calibration,
    wait_until_fusing,
)
from tf2_msgs.msg import TFMessage

CAMERAS = ('cam01', 'cam02', 'cam03')
FRAME = 1  # the video frame every set shows: the right hand triangulated (test_fusion_dds)
# The rig's pose in world per set: turns about the vertical and drives, as a mobile base.
RIG_POSES = [(0.0, (0.0, 0.0, 0.0)), (20.0, (0.5, -0.3, 0.0)), (-35.0, (1.2, 0.4, 0.1)),
             (90.0, (-0.8, 1.5, 0.0)), (180.0, (5.0, 5.0, 0.0))]
LATER = len(RIG_POSES) - 1  # the pose published half a second after each set's stamp
TOLERANCE_M = 0.02  # the same frames each set; the trackers' ROIs move a little between sets


def _rig_transform(set_index: int, stamp) -> TransformStamped:
    yaw, xyz = RIG_POSES[set_index]
    q = Rotation.from_euler('z', yaw, degrees=True).as_quat()  # x, y, z, w
    t = TransformStamped()
    t.header.stamp = stamp
    t.header.frame_id = 'world'
    t.child_frame_id = 'rig'
    t.transform.translation.x, t.transform.translation.y, t.transform.translation.z = xyz
    (t.transform.rotation.x, t.transform.rotation.y, t.transform.rotation.z,
     t.transform.rotation.w) = (float(v) for v in q)
    return t


def _to_rig(set_index: int, point: np.ndarray) -> np.ndarray:
    yaw, xyz = RIG_POSES[set_index]
    return Rotation.from_euler('z', yaw, degrees=True).inv().apply(point - np.asarray(xyz))


def _from_rig(set_index: int, point: np.ndarray) -> np.ndarray:
    yaw, xyz = RIG_POSES[set_index]
    return Rotation.from_euler('z', yaw, degrees=True).apply(point) + np.asarray(xyz)


class RigClient(Client):
    def __init__(self, rig):
        super().__init__(rig)
        self.pub_tf = self.node.create_publisher(TFMessage, '/tf', 100)

    def send_moved_set(self, images: dict[str, np.ndarray], set_index: int) -> int:
        """Publish world -> rig at the set's stamp, then the set (the node looks TF up after
        tracking, and waits a little for a transform not in its buffer yet)."""
        # Each set a little later than the last one's TF, so tf2 never extrapolates back.
        stamp = self.node.get_clock().now() + Duration(seconds=0.001)
        self.pub_tf.publish(TFMessage(transforms=[_rig_transform(set_index, stamp.to_msg())]))
        sent = self.send_set(images, stamp=stamp)
        later = stamp + Duration(seconds=0.5)
        self.pub_tf.publish(TFMessage(transforms=[_rig_transform(LATER, later.to_msg())]))
        return sent


@pytest.fixture(scope='module')
def moving(tmp_path_factory):
    folder = shared_path('multiview', 'pose2sim_single')
    rig = load_rig(folder / 'calibration.yaml')
    frames = {c: _frames(folder / f'{c}.mp4', FRAME + 1)[FRAME] for c in CAMERAS}
    os.environ['ROS_DOMAIN_ID'] = str(private_domain_id(2))
    env = dict(os.environ, PYTHONUNBUFFERED='1', RCUTILS_LOGGING_BUFFERED_STREAM='0')
    logs = tmp_path_factory.mktemp('moving_rig')
    params = logs / 'node.yaml'
    params.write_text(node_params(
        CAMERAS, '    fusion_max_wait_s: 5.0\n'
        # No smoothing: the fused track would lag the rig's jumps in world by design.
        '    smoothing: false\n'))
    procs = start_node_and_calibration(params, folder / 'calibration.yaml', logs, env,
                                       'frame:=rig')
    rclpy.init()
    client = RigClient(rig)
    try:
        black = {c: np.zeros_like(frames[c]) for c in CAMERAS}
        wait_until_fusing(client, CAMERAS, lambda: client.send_moved_set(black, 0), logs)
        yield client, frames, logs
    finally:
        client.close()
        rclpy.shutdown()
        stop_processes(*procs)


def test_fused_hand_follows_the_rig_pose_at_each_stamp(moving):
    client, frames, logs = moving
    per_set: list[list[np.ndarray]] = []
    for i in range(LATER):
        stamp = client.send_moved_set(frames, i)
        client.wait_for(lambda s=stamp: client.fused_at(s),
                        what=f'the fused HandArray of set {i} (node log: {logs})')
        msg = client.fused_at(stamp)[0]
        assert msg.header.frame_id == 'world'
        per_set.append([
            np.array([h.wrist_pose.position.x, h.wrist_pose.position.y, h.wrist_pose.position.z])
            for h in msg.hands if h.camera_method == Hand.METHOD_TRIANGULATED])
    assert all(per_set), f'a set without a triangulated hand: {client.summary([])}'
    # The rig jumps between sets (a mobile base seen at 1 Hz): the fused tracks, associated
    # in world, start anew, so hands are paired by their place in the rig instead of by id.
    for first in per_set[0]:
        in_rig = _to_rig(0, first)
        moved = drift = 0.0
        for i in range(1, LATER):
            here = min((_to_rig(i, w) for w in per_set[i]),
                       key=lambda r: np.linalg.norm(r - in_rig))
            drift = max(drift, float(np.linalg.norm(here - in_rig)))
            moved = max(moved, float(np.linalg.norm(_from_rig(i, in_rig) - first)))
        print(f'\nwrist moved up to {moved:.2f} m in world with the rig; in the rig it '
              f'stays within {drift * 1000:.1f} mm')
        assert moved > 1.0, 'the rig poses move the wrist in world'
        assert drift < TOLERANCE_M, f'a fused wrist does not follow the rig ({drift:.3f} m)'
