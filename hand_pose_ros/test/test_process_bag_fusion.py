"""
`process-bag --fusion-frame world` on a bag of the real multi-camera recording.

The bag is written here with rosbags' writer from the first frames of
../shared/data/multiview/pose2sim_single: cam01..cam03 as JPEG CompressedImage with their
CameraInfo from calibration.yaml (msg_out.intrinsics_to_camera_info) and their poses on
/tf_static as calibration_tf latches them (its camera_transform). Two small black cameras
are left out of fusion, one per cause: cam04 has a pose but no CameraInfo
(fusion_no_camera_info), cam05 CameraInfo but no pose (fusion_no_tf). The fused hands must
be in world at the set stamps, one at least triangulated, equal to core fusion run directly
on the per-camera HandArrays the runner wrote, and the output byte-identical on a second
run. The detection settings are test_fusion_dds.py's (the hands are 50-120 px in 1920-px
frames).
"""

from __future__ import annotations

from pathlib import Path

from conftest import shared_path
from hand_pose_ros.bags.cdr import to_cdr
from hand_pose_ros.bags.typestore import typestore
from hand_pose_ros.cli.process_bag import main
from hand_pose_ros.core.fusion.calibration import load_rig
from hand_pose_ros.core.fusion.fuser import MultiViewFuser
from hand_pose_ros.core.fusion.results import ViewHand
from hand_pose_ros.core.options import tracker_options
from hand_pose_ros.core.results import CameraIntrinsics
from hand_pose_ros.core.settings import RunningMode
from hand_pose_ros.ros import msg_in, msg_out
from hand_pose_ros.ros.calibration_tf import camera_transform
from hand_pose_ros.ros.fusion import fusion_options
import numpy as np
import pytest
from test_fusion_dds import _frames
from test_process_bag import read_bag

SETS = 3
FUSED = ('cam01', 'cam02', 'cam03')
NO_INFO, NO_TF = 'cam04', 'cam05'  # cam05: not in the calibration
START_NS = 1_700_000_000 * 1_000_000_000
PERIOD_NS = 33_333_333
DETECTION = ['--detection-tiles', '1', '--body-rois', '--body-every-n-frames', '1']
TRIANGULATED = 3  # Hand.METHOD_TRIANGULATED
BLACK_INTR = CameraIntrinsics(fx=100.0, fy=100.0, cx=80.0, cy=60.0)


def write_bag(path: Path, rig, frames: dict[str, list[np.ndarray]], moving: bool = False
              ) -> None:
    """
    The cameras' JPEG images and CameraInfo per set (one stamp each), poses on /tf_static.

    moving: the poses on /tf instead, at each set's stamp, recorded 20 ms after its images
    (a moving camera's TF comes after its image).
    """
    from rosbags.rosbag2 import StoragePlugin, Writer
    from tf2_msgs.msg import TFMessage
    ts = typestore()
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        static = writer.add_connection('/tf' if moving else '/tf_static',
                                       'tf2_msgs/msg/TFMessage', typestore=ts)
        conns = {c: (writer.add_connection(f'/{c}/image_raw/compressed',
                                           'sensor_msgs/msg/CompressedImage', typestore=ts),
                     writer.add_connection(f'/{c}/camera_info', 'sensor_msgs/msg/CameraInfo',
                                           typestore=ts))
                 for c in frames}
        def poses(stamp_ns: int) -> bytes:
            stamp = msg_out.header_msg(stamp_ns, 'world').stamp
            return to_cdr(TFMessage(transforms=[
                camera_transform(rig[c], 'world', f'{c}_optical_frame', stamp)
                for c in FUSED + (NO_INFO,)]), 'tf2_msgs/msg/TFMessage')

        if not moving:
            writer.write(static, START_NS - 10**9, poses(START_NS))
        for k in range(SETS):
            stamp_ns = START_NS + k * PERIOD_NS
            for j, (cam, images) in enumerate(frames.items()):
                header = msg_out.header_msg(stamp_ns, f'{cam}_optical_frame')
                rgb = images[k]
                image_conn, info_conn = conns[cam]
                log = stamp_ns + 1000 * j
                if cam != NO_INFO:
                    intr = rig[cam].intrinsics if cam in rig else BLACK_INTR
                    info = msg_out.intrinsics_to_camera_info(
                        intr, rgb.shape[1], rgb.shape[0], header)
                    writer.write(info_conn, log, to_cdr(info, 'sensor_msgs/msg/CameraInfo'))
                image = msg_out.rgb_to_compressed(rgb, header, quality=95)
                writer.write(image_conn, log + 1,
                             to_cdr(image, 'sensor_msgs/msg/CompressedImage'))
            if moving:
                writer.write(static, stamp_ns + 20_000_000, poses(stamp_ns))


def _points(points) -> np.ndarray:
    return np.array([[p.x, p.y, p.z] for p in points], dtype=np.float64)


def core_fusion(rig, per_camera: dict[str, list]) -> list[tuple[int, list]]:
    """Core fusion on the runner's per-camera HandArrays: per set, (stamp, fused hands)."""
    fuser = MultiViewFuser({c: rig[c] for c in FUSED}, fusion_options(
        tracker_options({}, running_mode=RunningMode.VIDEO)))
    out = []
    for k in range(SETS):
        views = {}
        stamps = set()
        for cam in FUSED:
            msg = per_camera[cam][k]
            stamps.add(msg_in.stamp_to_ns(msg.header.stamp))
            views[cam] = [ViewHand(camera=cam, keypoints=_points(h.keypoints)[:, :2],
                                   score=float(h.score), handedness=h.handedness,
                                   handedness_score=float(h.handedness_score),
                                   world=_points(h.keypoints_hand), index=int(h.id))
                          for h in msg.hands]
        (stamp,) = stamps
        out.append((stamp, fuser.process(views, stamp * 1e-9).hands))
    return out


@pytest.fixture(scope='module')
def bag(tmp_path_factory):
    folder = shared_path('multiview', 'pose2sim_single')
    rig = load_rig(folder / 'calibration.yaml')
    frames = {c: _frames(folder / f'{c}.mp4', SETS) for c in FUSED}
    black = [np.zeros((120, 160, 3), np.uint8)] * SETS
    frames[NO_TF], frames[NO_INFO] = black, black
    path = tmp_path_factory.mktemp('fusion_bag') / 'in'
    write_bag(path, rig, frames)
    return path, rig


def test_fused_hands_of_the_bag_equal_core_fusion_and_are_deterministic(bag, tmp_path, capsys):
    path, rig = bag
    first, second = tmp_path / '1' / 'out', tmp_path / '2' / 'out'
    args = ['--fusion-frame', 'world', '--no-progress', *DETECTION]
    assert main([str(path), '--out', str(first), *args]) == 0
    err = capsys.readouterr().err
    cameras = len(FUSED) + 2
    assert f'{cameras * SETS} frames, {cameras * SETS} processed' in err
    assert f'{SETS} fused sets' in err
    # Left out of fusion, counted per cause as the node's diagnostics count them.
    assert f'fusion_no_tf {SETS}' in err and f'fusion_no_camera_info {SETS}' in err
    typed = read_bag(first, typed=True)
    assert {'/fused/hands', '/fused/hand_markers', '/tf_static'} <= set(typed)
    fused = typed['/fused/hands']
    stamps = [START_NS + k * PERIOD_NS for k in range(SETS)]
    assert [msg_in.stamp_to_ns(m.header.stamp) for m in fused] == stamps
    assert all(m.header.frame_id == 'world' for m in fused)
    hands = [h for m in fused for h in m.hands]
    several = [h for h in hands if h.camera_method == TRIANGULATED]
    assert several, f'no triangulated hand: {[(h.camera_method, h.cameras) for h in hands]}'
    assert all(len(h.cameras) >= 2 for h in several)
    assert all(set(h.cameras) <= set(FUSED) for h in hands)
    # The same fused hands as core fusion on the per-camera HandArrays the runner wrote.
    per_camera = {c: typed[f'/{c}/hands'] for c in FUSED}
    expected = core_fusion(rig, per_camera)
    for msg, (stamp, want) in zip(fused, expected):
        assert msg_in.stamp_to_ns(msg.header.stamp) == stamp
        assert len(msg.hands) == len(want)
        for got, hand in zip(msg.hands, want):
            assert list(got.cameras) == list(hand.cameras)
            np.testing.assert_allclose(_points(got.keypoints_camera), hand.keypoints_world,
                                       atol=1e-6)
    # The fused wrist frames on /tf under world, at the set stamps.
    wrists = [t for m in typed['/tf'] for t in m.transforms
              if t.child_frame_id.startswith('fused_') and t.child_frame_id.endswith('_wrist')]
    assert wrists and all(t.header.frame_id == 'world' for t in wrists)
    assert {msg_in.stamp_to_ns(t.header.stamp) for t in wrists} <= set(stamps)
    # Deterministic: a second run writes the same bytes.
    assert main([str(path), '--out', str(second), *args]) == 0
    for name in ('out.mcap', 'metadata.yaml'):
        assert (first / name).read_bytes() == (second / name).read_bytes()


def test_fusion_with_ray_is_refused(bag, tmp_path, capsys):
    path, _ = bag
    with pytest.raises(SystemExit) as exc:
        main([str(path), '--out', str(tmp_path / 'out'), '--fusion-frame', 'world', '--ray'])
    assert exc.value.code == 2
    assert 'does not run with --ray' in capsys.readouterr().err


def test_poses_on_tf_recorded_after_the_images_give_the_same_fused_hands(bag, tmp_path,
                                                                         capsys):
    """A set waits 0.1 s of the bag's receive time for its poses, as the node waits for TF."""
    path, rig = bag
    folder = shared_path('multiview', 'pose2sim_single')
    frames = {c: _frames(folder / f'{c}.mp4', SETS) for c in FUSED}
    black = [np.zeros((120, 160, 3), np.uint8)] * SETS
    frames[NO_TF], frames[NO_INFO] = black, black
    moving = tmp_path / 'moving'
    write_bag(moving, rig, frames, moving=True)
    args = ['--fusion-frame', 'world', '--no-progress', '--no-copy', *DETECTION]
    assert main([str(path), '--out', str(tmp_path / 'static'), *args]) == 0
    assert main([str(moving), '--out', str(tmp_path / 'moved'), *args]) == 0
    err = capsys.readouterr().err
    assert f'fusion_no_tf {SETS}' in err.splitlines()[-1]  # cam05 only
    static = read_bag(tmp_path / 'static', typed=True)['/fused/hands']
    moved = read_bag(tmp_path / 'moved', typed=True)['/fused/hands']
    assert len(static) == len(moved) == SETS
    for a, b in zip(static, moved):
        assert msg_in.stamp_to_ns(a.header.stamp) == msg_in.stamp_to_ns(b.header.stamp)
        assert a.header.frame_id == b.header.frame_id == 'world'
        assert len(a.hands) == len(b.hands) > 0
        for ha, hb in zip(a.hands, b.hands):
            assert list(ha.cameras) == list(hb.cameras)
            np.testing.assert_allclose(_points(ha.keypoints_camera),
                                       _points(hb.keypoints_camera), atol=1e-6)
