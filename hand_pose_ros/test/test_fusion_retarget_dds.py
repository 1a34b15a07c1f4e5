"""hand_retarget_node on fused/hands over real DDS: a fused hand drives a robot hand.

Why: fused hands are in fusion_frame (the world), not in a camera, so the retargeting views
must still be hand-centric. The fused HandArray here is built by the node's own fusion code
(core fuser on three calibrated views of a real pinch, then ros/fusion's fused_hand_result
and fused_hand_msg, exactly what fused/hands carries); hand_retarget_node runs unchanged
with its input remapped to fused/hands, and its JointState must be the solve of the hand's
keypoints_mano, and close the robot's pinch.
"""

from __future__ import annotations

import os
from pathlib import Path
import subprocess
import sys
import threading
import time

from conftest import stop_processes, stop_spinning
from hand_pose_ros.core.fusion.fuser import FusionOptions, MultiViewFuser
from hand_pose_ros.core.meaning.hand_frames import mano_keypoints
from hand_pose_ros.ros.transport import private_domain_id
from hand_pose_ros.tools.multiview_synthetic import observe, teleop_rig
import numpy as np
import pytest
from retarget_photos import pose_world
from retarget_robots import require, ROBOTS, URDF_DIR

ROBOT = ROBOTS[0]
START_TIMEOUT_S = 90.0  # loading a robot model on a loaded 2-core machine


@pytest.fixture(scope='module', autouse=True)
def _dex_retargeting():
    require()


def _fused_hand_array(stamp_ns: int):
    """The HandArray fusion publishes for a pinch seen by three cameras, and the hand."""
    from hand_pose_msgs.msg import HandArray
    from hand_pose_ros.ros.fusion import fused_hand_msg, fused_hand_result
    from hand_pose_ros.ros.msg_out import header_msg
    rig = teleop_rig(3, np.random.default_rng(5))
    # The pinch, turned away from the cameras' axes and placed off the world origin.
    angle = np.radians(35.0)
    turn = np.array([[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0],
                     [0.0, 0.0, 1.0]])
    truth = pose_world('pinch', 'right') @ turn.T + np.array([0.02, -0.01, 0.03])
    views = observe(rig, truth, np.random.default_rng(0), noise=0.0)
    fuser = MultiViewFuser(rig, FusionOptions(smoothing=False, skeleton_lock=False))
    (hand,) = fuser.process({c: [v] for c, v in views.items()}, stamp_ns * 1e-9).hands
    msg = HandArray(header=header_msg(stamp_ns, 'world'), width=0, height=0,
                    hands=[fused_hand_msg(hand, fused_hand_result(hand, rig))])
    return msg, hand, truth


def test_fused_hand_message_has_hand_centric_retargeting_views():
    msg, hand, truth = _fused_hand_array(1_000_000_000)
    (h,) = msg.hands
    assert h.handedness == 'right' and len(h.cameras) == 3
    np.testing.assert_allclose(hand.keypoints_world, truth, atol=1e-4)
    mano = np.array([[p.x, p.y, p.z] for p in h.keypoints_mano])
    # The MANO wrist frame comes from the hand alone: the same as from the camera-aligned
    # hand the photo's tracker gave, wherever the world frame puts it.
    np.testing.assert_allclose(mano, mano_keypoints(pose_world('pinch', 'right'), 'right'),
                               atol=1e-3)


def test_retarget_node_consumes_fused_hands_unchanged(tmp_path: Path, monkeypatch):
    from hand_pose_ros.core.meaning.retarget import HandRetargeter
    from hand_pose_ros.ros.msg_in import stamp_to_ns
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import JointState
    monkeypatch.setenv('ROS_DOMAIN_ID', str(private_domain_id(3)))
    node_tmp = tmp_path / 'tmp'
    node_tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(node_tmp))
    log_path = tmp_path / 'node.log'
    log = open(log_path, 'w')
    params = tmp_path / 'retarget.yaml'
    params.write_text(  # the right robot hand only: the fused hand is a right one
        '/**:\n  ros__parameters:\n    left_config: ""\n'
        f'    right_config: {ROBOT}_right_dexpilot\n    right_urdf_dir: {URDF_DIR}\n')
    proc = subprocess.Popen(
        [sys.executable, '-m', 'hand_pose_ros.ros.retarget_node', '--ros-args',
         '-r', 'hands:=fused/hands', '--params-file', str(params)],
        stdout=log, stderr=subprocess.STDOUT, env=env)
    rclpy.init()
    node = rclpy.create_node('fused_retarget_test_client')
    got: list = []
    lock = threading.Lock()

    def on_joints(m) -> None:
        with lock:
            got.append(m)

    node.create_subscription(JointState, '/right/joint_states', on_joints, 10)
    from hand_pose_msgs.msg import HandArray
    pub = node.create_publisher(HandArray, '/fused/hands', 10)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    try:
        sent: dict[int, object] = {}
        stamp = 1_000_000_000
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:  # until the node is up (robot loaded, matched) and answers
            msg, hand, _ = _fused_hand_array(stamp)
            sent[stamp] = hand
            pub.publish(msg)
            stamp += 33_000_000
            end = time.monotonic() + 0.5
            while time.monotonic() < end:
                with lock:
                    if got:
                        break
                time.sleep(0.02)
            with lock:
                if got:
                    break
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, (
                f'no JointState within {START_TIMEOUT_S} s:\n{log_path.read_text()}')
        with lock:
            first = got[0]
        solver = HandRetargeter(f'{ROBOT}_right_dexpilot', URDF_DIR)
        assert list(first.name) == solver.joint_names
        key = stamp_to_ns(first.header.stamp)
        assert key in sent, 'the JointState carries the fused HandArray header'
        assert first.header.frame_id == 'world'
        fused = sent[key]
        # The solve of the fused hand's MANO keypoints, as a new track's first solve.
        want = solver.retarget(mano_keypoints(fused.keypoints_world, 'right'), 0)
        np.testing.assert_allclose(first.position, want, atol=1e-5)
        links = [solver.wrist_link, *solver.fingertip_links]
        tips = solver.link_positions(np.asarray(first.position), links)[1:]
        assert np.linalg.norm(tips[0] - tips[1]) < 0.015, 'the fused pinch closes the robot pinch'
    finally:
        stop_spinning(executor, thread, node)
        rclpy.shutdown()
        stop_processes(proc, timeout_s=20)
        log.close()
