"""Retargeting-ready frames (core/meaning/hand_frames.py) on the shared photos, via the tracker.

The MANO keypoints are checked against dex-retargeting's definition re-implemented here in a
different way (normal from the eigenvectors of the scatter matrix, explicit basis change),
and against what dex-retargeting itself solves for a robot hand from its example pipeline.
"""

from __future__ import annotations

from hand_pose_ros.core.meaning import hand_frames as hf
import numpy as np
import pytest
from retarget_photos import pose_world, tracked_photos

# dex-retargeting constants.OPERATOR2MANO_{RIGHT,LEFT}, written out again on purpose.
MANO_RIGHT = np.array([[0, 0, -1], [-1, 0, 0], [0, 1, 0]], dtype=np.float64)
MANO_LEFT = np.array([[0, 0, -1], [1, 0, 0], [0, -1, 0]], dtype=np.float64)


def reference_mano(world: np.ndarray, side: str) -> np.ndarray:
    """The example's transform: wrist to origin, wrist frame from joints 0/5/9, OPERATOR2MANO."""
    p = world - world[0]
    wrist, index, middle = p[0], p[5], p[9]
    centred = np.stack([wrist, index, middle]) - (wrist + index + middle) / 3.0
    normal = np.linalg.eigh(centred.T @ centred)[1][:, 0]  # smallest eigenvalue
    x = (wrist - middle) - np.dot(wrist - middle, normal) * normal
    x /= np.linalg.norm(x)
    z = np.cross(x, normal)
    if np.dot(z, index - middle) < 0:
        normal, z = -normal, -z
    frame = np.column_stack([x, normal, z])
    return p @ frame @ (MANO_RIGHT if side == 'right' else MANO_LEFT)


def all_hands():
    hands = [(f'{name}#{i}', h) for name, found in tracked_photos().items()
             for i, h in enumerate(found)]
    assert len(hands) >= 15, 'the tracker should find hands on most shared photos'
    return hands


def test_mano_keypoints_are_dex_retargetings_transform_on_the_photos():
    for name, hand in all_hands():
        for side in ('left', 'right'):  # the real side, and the other matrix as well
            got = hf.mano_keypoints(hand.world, side)
            want = reference_mano(np.asarray(hand.world, dtype=np.float64), side)
            assert np.max(np.abs(got - want)) < 1e-6, (name, side)
        got = hf.mano_keypoints(hand.world, hand.handedness)
        assert np.allclose(got[0], 0.0)
        # In the MANO frame the fingers point along +z (MCPs ahead of the wrist).
        assert np.all(got[[5, 9, 13, 17], 2] > 0.02), name


def test_operator2mano_matrices_are_dex_retargetings_and_proper_rotations():
    for side, want in (('right', MANO_RIGHT), ('left', MANO_LEFT)):
        got = hf.operator2mano(side)
        assert np.array_equal(got, want)
        assert np.allclose(got @ got.T, np.eye(3)) and np.isclose(np.linalg.det(got), 1.0)


def test_message_carries_the_mano_keypoints_and_joint_angles():
    from hand_pose_msgs.msg import Hand
    from hand_pose_ros.ros.msg_out import hand_to_msg
    assert tuple(Hand.JOINT_ANGLE_NAMES.split(',')) == hf.JOINT_ANGLE_NAMES
    assert Hand.NUM_JOINT_ANGLES == hf.NUM_JOINT_ANGLES == 20
    name, hand = all_hands()[0]
    msg = hand_to_msg(hand)
    mano = np.array([[p.x, p.y, p.z] for p in msg.keypoints_mano])
    assert np.max(np.abs(mano - hf.mano_keypoints(hand.world, hand.handedness))) < 1e-9
    angles = np.asarray(msg.joint_angles, dtype=np.float64)
    assert np.allclose(angles, hf.joint_angles(hand.world, hand.handedness), atol=1e-6)


def _flat_right_hand() -> np.ndarray:
    """A flat right hand, back to the camera (palm normal +z), fingers up (-y) and continuing
    their metacarpals (index on the image left), thumb out in the palm plane."""
    w = np.zeros((21, 3))
    for f, x in enumerate((-0.03, -0.01, 0.01, 0.03)):  # index..pinky
        mcp = np.array([x, -0.09, 0.0])
        for j in range(4):
            w[5 + 4 * f + j] = mcp * (1.0 + j / 3.0)
    for j in range(4):
        w[1 + j] = (-0.03 - 0.02 * (j + 1), -0.02 - 0.015 * j, 0.0)
    return w


def _rotate_finger(w: np.ndarray, joint: int, axis: np.ndarray, angle: float) -> np.ndarray:
    """The finger's joints beyond `joint` rotated about `axis` through it (Rodrigues)."""
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rot = np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k
    out = w.copy()
    for j in range(joint + 1, ((joint - 1) // 4 + 1) * 4 + 1):  # up to the finger's tip
        out[j] = w[joint] + rot @ (w[j] - w[joint])
    return out


def test_joint_angles_of_a_flat_hand_and_a_bent_finger():
    flat = _flat_right_hand()
    a = dict(zip(hf.JOINT_ANGLE_NAMES, hf.joint_angles(flat, 'right')))
    for f in ('index', 'middle', 'ring', 'pinky'):
        for j in ('mcp_flexion', 'mcp_abduction', 'pip_flexion', 'dip_flexion'):
            assert abs(a[f'{f}_{j}']) < 1e-9, (f, j)
    assert abs(a['thumb_cmc_flexion']) < 1e-9 and a['thumb_cmc_abduction'] > 0.3
    index_dir = flat[5] / np.linalg.norm(flat[5])
    # Bend the index PIP by 60 deg toward the palm (+z): about index_dir x z.
    bent = _rotate_finger(flat, 6, np.cross(index_dir, np.array([0.0, 0.0, 1.0])), np.pi / 3)
    assert bent[8, 2] > 0  # the tip moved toward the palm side
    b = dict(zip(hf.JOINT_ANGLE_NAMES, hf.joint_angles(bent, 'right')))
    assert b['index_pip_flexion'] == pytest.approx(np.pi / 3, abs=1e-9)
    assert abs(b['index_dip_flexion']) < 1e-9 and abs(b['index_mcp_flexion']) < 1e-9
    # Spread the index 10 deg toward the thumb (image left, -x): about -z here.
    ang = np.radians(10)
    spread = _rotate_finger(flat, 5, np.array([0.0, 0.0, -1.0]), ang)
    assert spread[8, 0] < flat[8, 0]  # moved toward the thumb side
    c = dict(zip(hf.JOINT_ANGLE_NAMES, hf.joint_angles(spread, 'right')))
    assert c['index_mcp_abduction'] == pytest.approx(ang, abs=1e-9)
    assert abs(c['index_mcp_flexion']) < 1e-9
    # The mirrored (left) hand has the same angles.
    mirrored = spread * np.array([-1.0, 1.0, 1.0])
    assert np.allclose(hf.joint_angles(mirrored, 'left'), hf.joint_angles(spread, 'right'))


def test_joint_angles_on_a_fist_and_an_open_hand_photo():
    names = hf.JOINT_ANGLE_NAMES
    for side in ('left', 'right'):
        fist = dict(zip(names, hf.joint_angles(pose_world('fist', side), side)))
        open_ = dict(zip(names, hf.joint_angles(pose_world('open', side), side)))
        for f in ('index', 'middle', 'ring', 'pinky'):
            total_fist = sum(fist[f'{f}_{j}_flexion'] for j in ('mcp', 'pip', 'dip'))
            total_open = sum(open_[f'{f}_{j}_flexion'] for j in ('mcp', 'pip', 'dip'))
            # MediaPipe's world landmarks of this flat hand keep ~40 deg at each MCP (as
            # hand_signals notes for curl); a fist adds ~60 deg or more per finger on top.
            assert total_fist > np.radians(120), (side, f, np.degrees(total_fist))
            assert total_open < np.radians(90), (side, f, np.degrees(total_open))
            assert total_fist - total_open > np.radians(45), (side, f)


def _example_qpos(retargeting, world: np.ndarray, side: str) -> np.ndarray:
    """dex-retargeting's example pipeline: its transform, its reference vectors, one solve."""
    joint_pos = reference_mano(world, side)
    indices = retargeting.optimizer.target_link_human_indices
    ref = joint_pos[indices[1], :] - joint_pos[indices[0], :]
    return retargeting.retarget(ref)


@pytest.mark.parametrize('robot', ['allegro_hand', 'leap_hand', 'inspire_hand'])
def test_dex_retargeting_gives_the_example_pipelines_joints(robot):
    from hand_pose_ros.core.meaning.retarget import HandRetargeter
    from retarget_robots import build_example_retargeting, URDF_DIR
    for side in ('left', 'right'):
        ours = HandRetargeter(f'{robot}_{side}', URDF_DIR)
        example = build_example_retargeting(f'{robot}_{side}')
        for pose in ('pinch', 'fist', 'open'):
            world = pose_world(pose, side)
            got = ours.retarget(hf.mano_keypoints(world, side), track=hash(pose))
            want = _example_qpos(example, world, side)
            example.reset()
            example.filter.reset()
            assert np.max(np.abs(got - want)) < 1e-4, (robot, side, pose)
