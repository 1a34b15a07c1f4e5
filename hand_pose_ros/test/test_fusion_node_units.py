"""The node's fusion glue without DDS: approximate sync of views by stamp, TF to calibration,
fused hands as Hand messages (ros/fusion.py). The DDS and launch tests run it end to end."""

from __future__ import annotations

from conftest import shared_path
from geometry_msgs.msg import TransformStamped
from hand_pose_msgs.msg import Hand
from hand_pose_ros.core.fusion.calibration import load_rig
from hand_pose_ros.core.fusion.results import FusedHand
from hand_pose_ros.ros.calibration_tf import camera_transform
from hand_pose_ros.ros.fusion import (
    calibration_from_tf,
    CameraView,
    fused_hand_msg,
    fused_hand_result,
    StampGroups,
)
from hand_pose_ros.ros.msg_out import rotation_to_quaternion
import numpy as np

MS = 1_000_000
TOL = 10 * MS


def _view(cam: str, stamp_ms: int) -> CameraView:
    return CameraView(cam, stamp_ms * MS, [], None)


def test_sets_complete_when_every_camera_is_in():
    groups = StampGroups(['a', 'b', 'c'])
    groups.add(_view('a', 100), TOL, 0.0)
    groups.add(_view('b', 105), TOL, 0.0)
    assert groups.ready(TOL, 1.0, 0.1) == []
    groups.add(_view('c', 96), TOL, 0.0)
    (done,) = groups.ready(TOL, 1.0, 0.1)
    assert set(done.views) == {'a', 'b', 'c'} and done.capture_ns == 96 * MS


def test_a_camera_that_moved_past_is_left_out_and_sets_come_in_order():
    groups = StampGroups(['a', 'b'])
    groups.add(_view('a', 100), TOL, 0.0)  # b's frame 100 was dropped
    groups.add(_view('a', 133), TOL, 0.0)
    groups.add(_view('b', 134), TOL, 0.0)  # b is past 100 + tolerance: set 100 is done
    done = groups.ready(TOL, 1.0, 0.1)
    assert [(d.stamp_ns, set(d.views)) for d in done] == [(100 * MS, {'a'}),
                                                        (133 * MS, {'a', 'b'})]
    groups.add(_view('b', 99), TOL, 0.2)  # too late: its set was fused
    assert groups.late == 1 and groups.pending == []


def test_a_silent_camera_holds_a_set_only_max_wait():
    groups = StampGroups(['a', 'b'])
    groups.add(_view('a', 100), TOL, 5.0)
    assert groups.ready(TOL, 0.3, 5.2) == []
    (done,) = groups.ready(TOL, 0.3, 5.31)
    assert set(done.views) == {'a'}


def test_no_set_is_given_up_on_for_time_while_the_worker_is_busy():
    groups = StampGroups(['a', 'b'])
    groups.add(_view('a', 100), TOL, 0.0)
    assert groups.ready(TOL, None, 100.0) == []  # b's frame is still being tracked
    groups.add(_view('b', 100), TOL, 100.0)
    assert len(groups.ready(TOL, None, 100.0)) == 1


def test_views_outside_the_tolerance_open_their_own_set():
    groups = StampGroups(['a', 'b'])
    groups.add(_view('a', 100), TOL, 0.0)
    groups.add(_view('b', 111), TOL, 0.0)
    assert len(groups.pending) == 2


def test_tf_of_calibration_tf_gives_back_the_file_pose():
    rig = load_rig(shared_path('multiview', 'pose2sim_single', 'calibration.yaml'))
    for name, cam in rig.items():
        # calibration_tf: world -> camera's pose; the node looks up the inverse (camera <-
        # world), as tf2 would return it.
        parent_to_child = camera_transform(cam, 'world', f'{name}_optical_frame', None)
        q = parent_to_child.transform.rotation
        x, y, z, w = q.x, q.y, q.z, q.w
        r_pose = np.array([
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
        t_pose = np.array([parent_to_child.transform.translation.x,
                           parent_to_child.transform.translation.y,
                           parent_to_child.transform.translation.z])
        np.testing.assert_allclose(t_pose, cam.centre, atol=1e-9)
        lookup = TransformStamped()
        rot, trans = r_pose.T, -r_pose.T @ t_pose
        o = lookup.transform.rotation
        o.x, o.y, o.z, o.w = rotation_to_quaternion(rot)
        tr = lookup.transform.translation
        tr.x, tr.y, tr.z = (float(v) for v in trans)
        got = calibration_from_tf(name, lookup, cam.intrinsics, cam.width, cam.height)
        np.testing.assert_allclose(got.rotation, cam.rotation, atol=1e-9)
        np.testing.assert_allclose(got.translation, cam.translation, atol=1e-9)


def test_fused_hand_message_keeps_every_field_meaningful():
    rig = load_rig(shared_path('multiview', 'pose2sim_single', 'calibration.yaml'))
    # A hand 30 cm in front of cam01, in world coordinates.
    cam = rig['cam01']
    local = np.zeros((21, 3))
    local[:, 0] = np.linspace(0.0, 0.08, 21)
    local[1:5, 1] = 0.03
    local[17:, 1] = -0.03
    local[:, 2] = 3.0
    world = cam.to_world(local)
    hand = FusedHand(
        id=7, handedness='right', handedness_score=0.9, keypoints_world=world,
        keypoint_confidence=np.linspace(0.2, 0.9, 21),
        keypoint_cameras=[('cam01', 'cam02')] * 21, cameras=('cam01', 'cam02'),
        views={'cam01': 0, 'cam02': 1}, reprojection_error={'cam01': 1.5, 'cam02': 2.5},
        hand_scale=1.1, scale_locked=True, score=0.8)
    result = fused_hand_result(hand, rig)
    msg = fused_hand_msg(hand, result)
    assert msg.camera_method == Hand.METHOD_TRIANGULATED and msg.camera_valid
    assert msg.scale_source == Hand.SCALE_TRIANGULATION
    assert list(msg.cameras) == ['cam01', 'cam02']
    np.testing.assert_allclose(msg.camera_reprojection_error, [1.5, 2.5])
    assert msg.reprojection_error == np.float32(2.0)
    np.testing.assert_allclose(msg.keypoint_confidence, hand.keypoint_confidence, atol=1e-6)
    kp = np.array([[p.x, p.y, p.z] for p in msg.keypoints_camera])
    np.testing.assert_allclose(kp, world, atol=1e-6)  # metric, in fusion_frame
    p = msg.wrist_pose.position
    np.testing.assert_allclose([p.x, p.y, p.z], world[0], atol=1e-6)
    # keypoints: the hand reprojected into its first camera (near that image's centre here).
    px = np.array([[q.x, q.y] for q in msg.keypoints])
    np.testing.assert_allclose(px, cam.project(world), atol=1e-3)
    assert all(msg.keypoint_in_image)
    assert np.any(np.array(msg.joint_angles) != 0.0)  # the retargeting views are filled
