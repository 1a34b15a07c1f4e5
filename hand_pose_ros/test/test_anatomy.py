"""core/anatomy.py: landmark order and names, finger chains, bones and the palm frame."""

from __future__ import annotations

import ast
import math
from pathlib import Path

from hand_pose_ros.core.anatomy import (
    FINGER_CHAINS,
    FINGER_MCPS,
    FINGERTIPS,
    HAND_CONNECTIONS,
    handedness_sign,
    HandLandmark,
    KEYPOINT_NAMES,
    MCP_JOINTS,
    MEDIAPIPE_NAMES,
    NUM_KEYPOINTS,
    palm_frame,
    PALM_JOINTS,
    palm_size,
)
import numpy as np
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / 'hand_pose_ros'

# mediapipe.solutions.hands.HandLandmark, in its order.
MEDIAPIPE_HAND_LANDMARKS = (
    'WRIST', 'THUMB_CMC', 'THUMB_MCP', 'THUMB_IP', 'THUMB_TIP',
    'INDEX_FINGER_MCP', 'INDEX_FINGER_PIP', 'INDEX_FINGER_DIP', 'INDEX_FINGER_TIP',
    'MIDDLE_FINGER_MCP', 'MIDDLE_FINGER_PIP', 'MIDDLE_FINGER_DIP', 'MIDDLE_FINGER_TIP',
    'RING_FINGER_MCP', 'RING_FINGER_PIP', 'RING_FINGER_DIP', 'RING_FINGER_TIP',
    'PINKY_MCP', 'PINKY_PIP', 'PINKY_DIP', 'PINKY_TIP',
)
# mediapipe.solutions.hands_connections.HAND_CONNECTIONS.
MEDIAPIPE_HAND_CONNECTIONS = {
    (0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10),
    (10, 11), (11, 12), (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (0, 17), (17, 18),
    (18, 19), (19, 20),
}


def test_enum_order_and_names_match_mediapipe_and_tfjs():
    assert [m.name for m in HandLandmark] == list(MEDIAPIPE_HAND_LANDMARKS)
    assert [int(m) for m in HandLandmark] == list(range(NUM_KEYPOINTS)) == list(range(21))
    assert MEDIAPIPE_NAMES == tuple(n.lower() for n in MEDIAPIPE_HAND_LANDMARKS)
    # TF.js differs only in spelling the pinky like the other fingers.
    assert KEYPOINT_NAMES[:17] == MEDIAPIPE_NAMES[:17]
    assert KEYPOINT_NAMES[17:] == (
        'pinky_finger_mcp', 'pinky_finger_pip', 'pinky_finger_dip', 'pinky_finger_tip')
    assert HandLandmark.PINKY_TIP.keypoint_name == 'pinky_finger_tip'
    assert HandLandmark.WRIST.keypoint_name == 'wrist'


def test_chains_cover_every_joint_but_the_wrist_once():
    joints = [j for chain in FINGER_CHAINS for j in chain]
    assert sorted(joints) == list(range(1, NUM_KEYPOINTS))
    assert all(len(chain) == 4 for chain in FINGER_CHAINS) and len(FINGER_CHAINS) == 5
    assert all(list(chain) == sorted(chain) for chain in FINGER_CHAINS)  # base to tip
    assert FINGERTIPS == tuple(chain[-1] for chain in FINGER_CHAINS)
    assert [t.name for t in FINGERTIPS] == [
        'THUMB_TIP', 'INDEX_FINGER_TIP', 'MIDDLE_FINGER_TIP', 'RING_FINGER_TIP', 'PINKY_TIP']
    assert all(m.name.endswith('_MCP') for m in MCP_JOINTS)
    assert FINGER_MCPS == MCP_JOINTS[1:]
    assert set(PALM_JOINTS) == {HandLandmark.WRIST, HandLandmark.THUMB_CMC, *FINGER_MCPS}


def test_bones_are_mediapipes_and_join_each_joint_to_its_parent():
    assert set(HAND_CONNECTIONS) == MEDIAPIPE_HAND_CONNECTIONS
    assert len(HAND_CONNECTIONS) == len(MEDIAPIPE_HAND_CONNECTIONS)
    bones = set(HAND_CONNECTIONS)
    for chain in FINGER_CHAINS:
        for parent, child in zip(chain, chain[1:]):
            assert (parent, child) in bones


def _right_hand_palm_on() -> np.ndarray:
    """A right hand 50 cm in front of the camera, palm towards it, fingers up, a bit curled.

    Camera optical frame: x right, y down, z forward. Seen palm-on, a right hand's thumb is
    on the image right (+x); curled fingers come towards the camera (-z).
    """
    pts = np.zeros((21, 3))
    pts[HandLandmark.WRIST] = [0.0, 0.05, 0.5]
    for chain, x in zip(FINGER_CHAINS[1:], (0.03, 0.01, -0.01, -0.03)):
        for k, joint in enumerate(chain):
            pts[joint] = [x, -0.04 - 0.025 * k, 0.5 - 0.008 * k * k]
    thumb = FINGER_CHAINS[0]
    pts[list(thumb)] = [[0.03, 0.035, 0.495], [0.05, 0.015, 0.49], [0.06, -0.005, 0.485],
                        [0.065, -0.02, 0.48]]
    return pts


def _rotations(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = [np.eye(3)]
    for _ in range(n):
        q = rng.normal(size=4)
        w, x, y, z = q / np.linalg.norm(q)
        out.append(np.array([
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]]))
    return out


def test_palm_frame_is_right_handed_and_its_axes_point_where_documented():
    right = _right_hand_palm_on()
    left = right * [-1.0, 1.0, 1.0]  # the mirror image: a left hand, also palm-on
    # Right hand palm-on: y towards the pinky (image left); left hand: towards the thumb,
    # also image left, since both frames are right-handed with the same x and z.
    for rot in _rotations(5, seed=3):
        for points, side in ((right, 'right'), (left, 'left')):
            moved = points @ rot.T
            frame = palm_frame(moved, side)
            r = frame.rotation
            np.testing.assert_allclose(r.T @ r, np.eye(3), atol=1e-12)
            assert np.linalg.det(r) == pytest.approx(1.0)
            x, y, z = r.T
            np.testing.assert_allclose(y, np.cross(z, x), atol=1e-12)
            assert x @ (rot @ [0.0, -1.0, 0.0]) > 0.95  # wrist -> middle MCP: fingers up
            assert z @ (rot @ [0.0, 0.0, -1.0]) > 0.95  # out of the palm: at the camera
            assert y @ (rot @ [-1.0, 0.0, 0.0]) > 0.95  # image left
            pinky_side = moved[HandLandmark.PINKY_MCP] - moved[HandLandmark.INDEX_FINGER_MCP]
            assert (y @ pinky_side > 0) == (side == 'right')
            np.testing.assert_array_equal(frame.origin, moved[HandLandmark.WRIST])
            assert np.linalg.norm(frame.normal) == pytest.approx(1.0)
            assert frame.normal @ z > math.cos(math.radians(10.0))
            # Without a label, the side the fingers flex towards decides the same way.
            np.testing.assert_allclose(palm_frame(moved, None).rotation, r, atol=1e-12)


def test_palm_frame_of_a_degenerate_hand_is_the_identity():
    frame = palm_frame(np.zeros((21, 3)), 'right')
    np.testing.assert_array_equal(frame.rotation, np.eye(3))
    np.testing.assert_array_equal(frame.normal, np.zeros(3))


def test_handedness_sign_and_palm_size():
    assert handedness_sign(' Right ') == 1.0 and handedness_sign('LEFT') == -1.0
    with pytest.raises(ValueError):
        handedness_sign('both')
    pts = _right_hand_palm_on()
    expected = np.mean([np.linalg.norm(pts[j] - pts[HandLandmark.WRIST]) for j in FINGER_MCPS])
    assert palm_size(pts) == pytest.approx(expected)
    assert palm_size(2.0 * pts) == pytest.approx(2.0 * palm_size(pts))


# Name parts that mark a constant as joint indices or joint-index lists ('PALM' and
# 'LANDMARK' alone also name the two networks, whose sizes are not joints).
_JOINT_WORDS = {
    'WRIST', 'THUMB', 'INDEX', 'MIDDLE', 'RING', 'PINKY', 'FINGER', 'FINGERS', 'FINGERTIP',
    'FINGERTIPS', 'CMC', 'MCP', 'MCPS', 'PIP', 'DIP', 'IP', 'TIP', 'TIPS', 'KNUCKLES', 'JOINT',
    'JOINTS', 'LANDMARKS', 'KEYPOINT', 'KEYPOINTS', 'CONNECTIONS', 'BONES', 'CHAIN', 'CHAINS',
}
# Name parts of counts, limits, sizes and marker/message ids: integers, but not joints.
_NOT_INDEX_WORDS = {'NUM', 'MIN', 'MAX', 'SIZE', 'ID', 'IDS'}


def _is_int_literal(node: ast.AST) -> bool:
    """An int literal, a (nested) tuple/list/set of them, or range() of them."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, int) and not isinstance(node.value, bool)
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return bool(node.elts) and all(_is_int_literal(e) for e in node.elts)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return node.func.id == 'range' and all(_is_int_literal(a) for a in node.args)
    return False


def _names(target: ast.AST) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [n for e in target.elts for n in _names(e)]
    return []


def _is_joint_constant(name: str) -> bool:
    parts = set(name.split('_'))
    return name.isupper() and bool(parts & _JOINT_WORDS) and not parts & _NOT_INDEX_WORDS


def joint_index_constants(root: Path) -> list[str]:
    """`path:line NAME` for every upper-case joint-named name bound to int literals."""
    found = []
    for path in sorted(root.rglob('*.py')):
        if path.name == 'anatomy.py' and path.parent.name == 'core':
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Assign):
                targets, value = node.targets, node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                targets, value = [node.target], node.value
            else:
                continue
            if not _is_int_literal(value):
                continue
            for name in (n for t in targets for n in _names(t)):
                if _is_joint_constant(name):
                    found.append(f'{path.relative_to(root)}:{node.lineno} {name}')
    return found


def test_the_checker_finds_joint_constants(tmp_path):
    (tmp_path / 'mod.py').write_text(
        'WRIST = 0\nTHUMB_TIP: int = 4\nINDEX_MCP, MIDDLE_MCP = 5, 9\n'
        'FINGERTIPS = (4, 8, 12, 16, 20)\nPALM_JOINTS = [0, 1, 5, 9, 13, 17]\n'
        'FINGER_JOINTS = ((1, 2, 3, 4), (5, 6, 7, 8))\nTHUMB, INDEX = range(2)\n'
        'NUM_PALM_KEYPOINTS = 7\nJOINTS_ID = 1\nMIN_JOINT_READINGS = 8\n'
        'PALM_INPUT_SIZE = 192\nPINCH_RATIO = (0.45, 0.25)\n'
        'TIPS = HandLandmark.THUMB_TIP\nwrist = 0\n')
    assert [f.split(' ')[1] for f in joint_index_constants(tmp_path)] == [
        'WRIST', 'THUMB_TIP', 'INDEX_MCP', 'MIDDLE_MCP', 'FINGERTIPS', 'PALM_JOINTS',
        'FINGER_JOINTS', 'THUMB', 'INDEX']


def test_no_module_but_anatomy_defines_joint_indices():
    assert (PACKAGE / 'core' / 'anatomy.py').is_file()
    assert joint_index_constants(PACKAGE) == [], (
        'joint indices belong in hand_pose_ros/core/anatomy.py; import them from there')
