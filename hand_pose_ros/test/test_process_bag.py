"""
`hand-pose-ros process-bag` on bags written here with rosbags' writer from the motion frames.

Raw and compressed images, one and two cameras, MCAP and sqlite3, with and without
CameraInfo: per frame the output HandArray is byte for byte what running the core directly
on those frames and converting with msg_out gives; two runs give identical files. The
output is read back with a reader that knows only the definitions embedded in the bag.
rosbag2's own CLI (`ros2 bag info`) is not in the venv (../shared/ros2-src has no rosbag2),
so rosbags' reader lists the topics instead. The real rosbag2 bags of ../shared/data/bags
(dummy image payloads) run to the end with every image counted as bad input.
"""

from __future__ import annotations

import json
from pathlib import Path
import shutil

from conftest import shared_path
import cv2
from hand_pose_ros.bags.cdr import to_cdr
from hand_pose_ros.bags.typestore import typestore
from hand_pose_ros.cli.process_bag import main
from hand_pose_ros.core.options import tracker_options
from hand_pose_ros.core.results import CameraIntrinsics
from hand_pose_ros.core.settings import RunningMode
from hand_pose_ros.core.tracker import HandTracker
from hand_pose_ros.ros import msg_out
import numpy as np
import pytest

FRAMES = 10
PERIOD_NS = 33_333_333
START_NS = 1_700_000_000 * 1_000_000_000
INTR = CameraIntrinsics(fx=500.0, fy=500.0, cx=320.0, cy=240.0)


def _frames(seq: str) -> list[np.ndarray]:
    paths = sorted(shared_path('motion', seq).glob('*.jpg'))[:FRAMES]
    return [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in paths]


def _header(ts, ns: int, frame_id: str):
    return ts.types['std_msgs/msg/Header'](
        stamp=ts.types['builtin_interfaces/msg/Time'](sec=ns // 10**9, nanosec=ns % 10**9),
        frame_id=frame_id)


def write_bag(path: Path, cameras: dict[str, tuple[list[np.ndarray], bool, bool]],
              storage: str, extra: list[tuple[str, str, bytes]] = (), depth_mm: int = 0
              ) -> None:
    """
    Write a bag: cameras: namespace -> (RGB frames, compressed, with CameraInfo).

    extra: raw messages written after the frames; depth_mm: a registered 16UC1 depth image
    of that constant value before each image.
    """
    from rosbags.rosbag2 import StoragePlugin, Writer
    ts = typestore()
    plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
    image_t, comp_t, info_t = (ts.types[f'sensor_msgs/msg/{n}']
                               for n in ('Image', 'CompressedImage', 'CameraInfo'))
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        conns = {}
        for ns, (_, compressed, info) in cameras.items():
            kind = 'CompressedImage' if compressed else 'Image'
            topic = f'{ns}/image_raw' + ('/compressed' if compressed else '')
            conns[ns] = (writer.add_connection(topic, f'sensor_msgs/msg/{kind}', typestore=ts),
                         writer.add_connection(f'{ns}/camera_info', 'sensor_msgs/msg/CameraInfo',
                                               typestore=ts) if info else None)
            if depth_mm:
                conns[ns + '/depth'] = writer.add_connection(
                    f'{ns}/depth/image_raw', 'sensor_msgs/msg/Image', typestore=ts)
        for k in range(min(len(c[0]) for c in cameras.values())):
            for j, (ns, (frames, compressed, _)) in enumerate(cameras.items()):
                stamp = START_NS + k * PERIOD_NS
                log = stamp + 1000 * j
                header = _header(ts, stamp, ns.strip('/') + '_optical_frame')
                rgb = frames[k]
                h, w = rgb.shape[:2]
                img_conn, info_conn = conns[ns]
                if info_conn is not None:
                    msg = info_t(
                        header=header, height=h, width=w, distortion_model='plumb_bob',
                        d=np.zeros(5), k=INTR.matrix.reshape(-1).astype(np.float64),
                        r=np.eye(3).reshape(-1), p=np.zeros(12), binning_x=0, binning_y=0,
                        roi=ts.types['sensor_msgs/msg/RegionOfInterest'](
                            x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
                    writer.write(info_conn, log, ts.serialize_cdr(msg, info_t.__msgtype__))
                if depth_mm:
                    depth = np.full((h, w), depth_mm, np.uint16)
                    msg = image_t(header=header, height=h, width=w, encoding='16UC1',
                                  is_bigendian=0, step=w * 2,
                                  data=depth.view(np.uint8).reshape(-1))
                    writer.write(conns[ns + '/depth'], log,
                                 ts.serialize_cdr(msg, msg.__msgtype__))
                if compressed:
                    ok, buf = cv2.imencode('.jpg', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
                    assert ok
                    msg = comp_t(header=header, format='jpeg', data=buf.reshape(-1))
                else:
                    msg = image_t(header=header, height=h, width=w, encoding='rgb8',
                                  is_bigendian=0, step=w * 3, data=rgb.reshape(-1))
                writer.write(img_conn, log + 1, ts.serialize_cdr(msg, msg.__msgtype__))
        added = {c.topic: c for c in writer.connections}
        for k, (topic, msgtype, raw) in enumerate(extra):
            if topic not in added:
                added[topic] = writer.add_connection(topic, msgtype, typestore=ts)
            writer.write(added[topic], START_NS + 10**9 + k, raw)


def read_bag(path: Path, typed: bool = False) -> dict[str, list[bytes]]:
    """Topic -> raw messages; typed: decoded with only the bag's embedded definitions."""
    from rosbags.highlevel import AnyReader
    out: dict[str, list] = {}
    with AnyReader([path]) as reader:
        for conn in reader.connections:
            out.setdefault(conn.topic, [])
        for conn, _, raw in reader.messages():
            out[conn.topic].append(reader.deserialize(raw, conn.msgtype) if typed else raw)
    return out


def core_hand_arrays(frames: list[np.ndarray], info: bool, compressed: bool, ns: str,
                     depth_mm: int = 0) -> list[bytes]:
    """The HandArrays of the core run directly on the frames, serialized like the node's."""
    tracker = HandTracker(tracker_options({}, running_mode=RunningMode.VIDEO))
    out = []
    try:
        for k, rgb in enumerate(frames):
            if compressed:  # the bag holds the JPEG: compare on what it decodes to
                ok, buf = cv2.imencode('.jpg', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
                rgb = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            stamp = START_NS + k * PERIOD_NS
            depth = np.full(rgb.shape[:2], depth_mm, np.uint16) if depth_mm else None
            result = tracker.process(rgb, 'rgb', camera=INTR if info else None, depth=depth,
                                     timestamp=stamp * 1e-9)
            header = msg_out.header_msg(stamp, ns.strip('/') + '_optical_frame')
            out.append(to_cdr(msg_out.frame_result_to_msg(result, header),
                              'hand_pose_msgs/msg/HandArray'))
    finally:
        tracker.close()
    return out


@pytest.fixture(scope='module')
def seqs() -> dict[str, list[np.ndarray]]:
    return {s: _frames(s) for s in ('seq0', 'seq1')}


def test_raw_mcap_one_camera_equals_the_core_and_is_deterministic(tmp_path, seqs, capsys):
    bag = tmp_path / 'in'
    write_bag(bag, {'/cam': (seqs['seq0'], False, True)}, 'mcap')
    first, second = tmp_path / '1' / 'out', tmp_path / '2' / 'out'
    assert main([str(bag), '--out', str(first), '--no-progress']) == 0
    err = capsys.readouterr().err
    assert f'{FRAMES} frames, {FRAMES} processed' in err and 'bad input: none' in err
    assert main([str(bag), '--out', str(second), '--no-progress']) == 0
    # Byte for byte (the bag's name is written inside it: both are called out).
    for name in ('out.mcap', 'metadata.yaml'):
        assert (first / name).read_bytes() == (second / name).read_bytes()
    raw = read_bag(first)
    # Input topics copied, outputs listed even when empty (gestures may not change).
    assert {'/cam/image_raw', '/cam/camera_info', '/cam/hands', '/cam/gestures',
            '/cam/hand_markers', '/tf'} <= set(raw)
    assert [bytes(b) for b in raw['/cam/hands']] == core_hand_arrays(
        seqs['seq0'], True, False, '/cam')
    typed = read_bag(first, typed=True)
    hands = typed['/cam/hands']
    assert sum(len(m.hands) for m in hands) >= FRAMES - 1
    assert any(h.camera_valid for m in hands for h in m.hands)
    assert hands[0].header.stamp.sec == START_NS // 10**9
    assert len(typed['/tf']) >= FRAMES - 1
    assert typed['/tf'][0].transforms[0].child_frame_id.endswith('_wrist')


def test_compressed_sqlite3_two_cameras_one_without_info(tmp_path, seqs, capsys):
    bag = tmp_path / 'in'
    write_bag(bag, {'/left': (seqs['seq0'], True, True), '/right': (seqs['seq1'], True, False)},
              'sqlite3')
    assert main([str(bag), '--out', str(tmp_path / 'out'), '--no-progress']) == 0
    err = capsys.readouterr().err
    assert f'{2 * FRAMES} frames, {2 * FRAMES} processed' in err
    assert f'no_camera_info {FRAMES}' in err
    raw = read_bag(tmp_path / 'out')
    assert [bytes(b) for b in raw['/left/hands']] == core_hand_arrays(
        seqs['seq0'], True, True, '/left')
    assert [bytes(b) for b in raw['/right/hands']] == core_hand_arrays(
        seqs['seq1'], False, True, '/right')
    # Two cameras: TF frames carry the camera name, so they never collide.
    typed = read_bag(tmp_path / 'out', typed=True)
    names = {t.child_frame_id for m in typed['/tf'] for t in m.transforms}
    assert names and all(n.startswith('left_') for n in names)


def test_camera_selection_no_copy_and_depth(tmp_path, seqs):
    bag = tmp_path / 'in'
    write_bag(bag, {'/a': (seqs['seq0'], False, True), '/b': (seqs['seq1'], False, True)},
              'mcap', depth_mm=600)
    assert main([str(bag), '--out', str(tmp_path / 'out'), '--camera', 'b', '--no-copy',
                 '--no-progress']) == 0
    raw = read_bag(tmp_path / 'out')
    assert '/b/hands' in raw and '/a/hands' not in raw and '/b/image_raw' not in raw
    # The depth image is found in the namespace and used as the core uses it.
    assert [bytes(b) for b in raw['/b/hands']] == core_hand_arrays(
        seqs['seq1'], True, False, '/b', depth_mm=600)
    typed = read_bag(tmp_path / 'out', typed=True)
    assert any(h.camera_method == 2 for m in typed['/b/hands'] for h in m.hands)


def test_bad_input_is_counted_not_fatal(tmp_path, seqs, capsys):
    ts = typestore()
    text = ts.serialize_cdr(ts.types['std_msgs/msg/String'](data='not an image'),
                            'std_msgs/msg/String')
    rgb = seqs['seq0'][0]
    good = ts.serialize_cdr(ts.types['sensor_msgs/msg/Image'](
        header=_header(ts, START_NS, 'cam'), height=480, width=640, encoding='rgb8',
        is_bigendian=0, step=1920, data=rgb.reshape(-1)), 'sensor_msgs/msg/Image')
    bag = tmp_path / 'in'
    write_bag(bag, {'/cam': (seqs['seq0'][:3], False, True)}, 'mcap', extra=[
        ('/cam/image_raw', 'sensor_msgs/msg/Image', good[:1000]),  # cut CDR
        ('/cam/image_raw', 'sensor_msgs/msg/Image', good),  # stamp before the last frame
        ('/text', 'std_msgs/msg/String', text)])
    params = Path(__file__).resolve().parents[1] / 'config' / 'hands.yaml'
    assert main([str(bag), '--out', str(tmp_path / 'out'), '--image-topic', '/cam/image_raw',
                 '--image-topic', '/text', '--params-file', str(params), '--no-progress']) == 0
    err = capsys.readouterr().err
    assert 'Traceback' not in err
    assert '6 frames, 3 processed' in err
    for cause in ('corrupt_message 1', 'stamp_out_of_order 1', 'unexpected_type 1'):
        assert cause in err
    assert len(read_bag(tmp_path / 'out')['/cam/hands']) == 3


@pytest.mark.parametrize('storage', ['test_bag_mcap', 'test_bag_sqlite3'])
def test_real_bags_every_image_is_bad_input(tmp_path, storage, capsys):
    bag = shared_path('bags', 'rosbags_rs', storage)
    assert main([str(bag), '--out', str(tmp_path / 'out'), '--no-progress']) == 0
    err = capsys.readouterr().err
    assert 'Traceback' not in err
    # 2 raw (30 bytes for 640x480 rgb8) and 2 compressed (10 bytes) dummy images.
    assert '4 frames, 0 processed' in err
    assert 'bad_step 2' in err and 'corrupt_compressed 2' in err
    assert 'every image was bad input' in err
    raw = read_bag(tmp_path / 'out')
    assert len(raw) >= 94 and sum(len(v) for v in raw.values()) >= 188


def test_truncated_mcap_is_a_clear_error(tmp_path, seqs, capsys):
    good = tmp_path / 'good'
    write_bag(good, {'/cam': (seqs['seq0'][:3], False, False)}, 'mcap')
    bad = tmp_path / 'bad'  # a truncated copy of the real rosbag2 MCAP bag
    shutil.copytree(shared_path('bags', 'rosbags_rs', 'test_bag_mcap'), bad)
    bad.chmod(0o755)
    mcap = next(bad.glob('*.mcap'))
    mcap.chmod(0o644)
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 2])
    unknown = tmp_path / 'unknown'
    unknown.mkdir()
    (unknown / 'metadata.yaml').write_text('not: a rosbag2 bag\n')
    status = main([str(good), str(bad), str(unknown), '--out', str(tmp_path / 'out'),
                   '--no-progress'])
    err = capsys.readouterr().err
    assert status == 1 and 'Traceback' not in err
    assert f'{bad}: cannot open it' in err and 'truncated' in err
    assert f'{unknown}: cannot open it' in err
    assert 'unreadable_bag 2' in err
    # The readable bag's output is kept.
    assert len(read_bag(tmp_path / 'out' / 'good')['/cam/hands']) == 3


def test_ray_gives_the_serial_outputs(tmp_path, seqs):
    """Three bags as tasks of a local 2-worker Ray: the same bytes as the serial run."""
    pytest.importorskip('ray', reason='ray extra not installed (WITH_RAY=0)')
    bags = []
    for k, seq in enumerate(('seq0', 'seq1', 'seq0')):
        bags.append(tmp_path / f'bag{k}')
        write_bag(bags[-1], {'/cam': (seqs[seq][k:k + 4], False, True)}, 'mcap')
    serial, on_ray = tmp_path / 'serial' / 'out', tmp_path / 'ray' / 'out'
    assert main([*map(str, bags), '--out', str(serial), '--no-progress']) == 0
    assert main([*map(str, bags), '--out', str(on_ray), '--no-progress', '--ray',
                 '--ray-workers', '2']) == 0
    for k in range(3):
        for name in (f'bag{k}.mcap', 'metadata.yaml'):
            assert (serial / f'bag{k}' / name).read_bytes() == \
                (on_ray / f'bag{k}' / name).read_bytes()


def test_camera_streams_recorded_apart_merge_to_the_serial_output(tmp_path, seqs):
    """Each camera tracked alone into a record file, then merged: the serial run's bytes."""
    from hand_pose_ros.cli.process_bag import bag_runner
    bag = tmp_path / 'in'
    write_bag(bag, {'/left': (seqs['seq0'][:5], False, True),
                    '/right': (seqs['seq1'][:5], True, False)}, 'mcap')
    serial, merged = tmp_path / 'serial' / 'out', tmp_path / 'merged' / 'out'
    assert main([str(bag), '--out', str(serial), '--no-progress']) == 0
    records = [tmp_path / 'records' / f'{k}.records' for k in range(2)]
    with bag_runner({}) as runner:
        alone = [runner.record(bag, k, path) for k, path in enumerate(records)]
    assert [(s.frames, s.processed, s.bad['no_camera_info']) for s in alone] == [
        (5, 5, 0), (5, 5, 5)]
    with bag_runner({}, track=False) as runner:
        assert runner.tracker is None
        summary = runner.run(bag, merged, records)
    assert (summary.frames, summary.processed, summary.bad['no_camera_info']) == (10, 10, 5)
    assert summary.hands == sum(s.hands for s in alone) > 0
    for name in ('out.mcap', 'metadata.yaml'):
        assert (serial / name).read_bytes() == (merged / name).read_bytes()
    # Record files of another bag are refused, not merged shifted.
    other = tmp_path / 'other'
    write_bag(other, {'/left': (seqs['seq0'][:3], False, True),
                      '/right': (seqs['seq1'][:3], True, False)}, 'mcap')
    from hand_pose_ros.bags.runner import StreamMismatchError
    with bag_runner({}, track=False) as runner, pytest.raises(StreamMismatchError):
        runner.run(other, tmp_path / 'mismatch', records[::-1])


def test_ray_runs_the_cameras_of_one_bag_as_tasks(tmp_path, seqs):
    """A two-camera bag: one Ray task per camera and a merge task; the serial run's bytes."""
    pytest.importorskip('ray', reason='ray extra not installed (WITH_RAY=0)')
    from hand_pose_ros.bags.ray_runner import camera_counts, records_dir
    bag = tmp_path / 'in'
    write_bag(bag, {'/left': (seqs['seq0'][:4], False, True),
                    '/right': (seqs['seq1'][:4], False, True)}, 'sqlite3')
    assert camera_counts([bag], {'values': {}}) == [2]
    serial, on_ray = tmp_path / 'serial' / 'out', tmp_path / 'ray' / 'out'
    assert main([str(bag), '--out', str(serial), '--no-progress']) == 0
    assert main([str(bag), '--out', str(on_ray), '--no-progress', '--ray',
                 '--ray-workers', '2']) == 0
    for name in ('out.mcap', 'metadata.yaml'):
        assert (serial / name).read_bytes() == (on_ray / name).read_bytes()
    assert not records_dir(on_ray).exists()
    assert len(read_bag(on_ray)['/right/hands']) == 4


def test_retarget_writes_the_nodes_joint_states_per_camera(tmp_path, seqs):
    """--retarget: per camera and side, the JointStates hand_retarget_node publishes for the
    camera's HandArrays (its one function, fresh robots per camera), at the images' times."""
    from rclpy.serialization import deserialize_message
    from retarget_robots import require, URDF_DIR
    require()
    from hand_pose_msgs.msg import HandArray
    from hand_pose_ros.core.meaning.retarget import HandRetargeter
    from hand_pose_ros.ros.retarget_node import joint_states
    bag = tmp_path / 'in'
    write_bag(bag, {'/a': (seqs['seq0'][:4], False, True), '/b': (seqs['seq1'][:4], False, True)},
              'mcap')
    out = tmp_path / 'out'
    assert main([str(bag), '--out', str(out), '--no-progress', '--no-copy', '--retarget',
                 'allegro_hand_left_dexpilot', '--retarget', 'right:allegro_hand_right_dexpilot',
                 '--urdf-dir', str(URDF_DIR)]) == 0
    raw = read_bag(out)
    written = 0
    for cam in ('/a', '/b'):
        robots = {s: HandRetargeter(f'allegro_hand_{s}_dexpilot', URDF_DIR)
                  for s in ('left', 'right')}
        expected: dict[str, list[bytes]] = {'left': [], 'right': []}
        for data in raw[f'{cam}/hands']:
            for side, state in joint_states(robots, deserialize_message(
                    bytes(data), HandArray)).items():
                expected[side].append(to_cdr(state, 'sensor_msgs/msg/JointState'))
        for side in ('left', 'right'):
            assert [bytes(b) for b in raw[f'{cam}/{side}/joint_states']] == expected[side]
            written += len(expected[side])
    assert written >= 4  # hands were seen and solved
    typed = read_bag(out, typed=True)
    state = next(m for c in ('/a', '/b') for s in ('left', 'right')
                 for m in typed[f'{c}/{s}/joint_states'])
    assert len(state.name) == len(state.position) == 16 and state.name[0].startswith('joint')
    # A config that names no side, or two robots for one hand, is bad usage (exit 2).
    with pytest.raises(SystemExit) as exc:
        main([str(bag), '--out', str(tmp_path / 'bad'), '--retarget',
              'allegro_hand_left_dexpilot', '--retarget', 'left:leap_hand_left_dexpilot',
              '--urdf-dir', str(URDF_DIR)])
    assert exc.value.code == 2


def test_hand_records_for_dataset_pipelines(seqs):
    """The Python API gives detect's records: tracked per stream, per row for Ray Data."""
    from hand_pose_ros.cli.detect import hand_to_json
    from hand_pose_ros.records import hand_records, HandRecords
    frames = seqs['seq0'][:4]
    tracker = HandTracker(tracker_options({}, running_mode=RunningMode.VIDEO))
    try:
        expected = [[hand_to_json(h) for h in tracker.process(f, timestamp=k / 30.0).hands]
                    for k, f in enumerate(frames)]
    finally:
        tracker.close()
    assert list(hand_records(frames)) == expected
    batch = HandRecords()({'image': np.stack(frames[:2]), 'index': np.arange(2)})
    assert list(batch['index']) == [0, 1] and len(batch['hands']) == 2
    assert all(len(json.loads(h)) >= 1 for h in batch['hands'])


def test_embedded_definitions_hash_like_rosidl():
    """The typestore's hand_pose_msgs (from the .msg files) hash as rosidl built them."""
    import sys
    share = Path(sys.prefix) / 'share' / 'hand_pose_msgs' / 'msg'
    for name in ('Hand', 'HandArray', 'HandGesture'):
        hashes = json.loads((share / f'{name}.json').read_text())['type_hashes']
        rosidl = next(h['hash_string'] for h in hashes
                      if h['type_name'] == f'hand_pose_msgs/msg/{name}')
        assert typestore().hash_rihs01(f'hand_pose_msgs/msg/{name}') == rosidl


def test_gesture_changes_become_hand_gestures_in_the_bag():
    """The node's and process-bag's one conversion of a gesture change (no NaN score)."""
    from hand_pose_ros.core.results import FrameResult, GestureChange
    result = FrameResult(640, 480, gesture_changes=[
        GestureChange(3, 'left', 'pinch', 'none', 0.9), GestureChange(4, 'right', 'none',
                                                                        'open_palm', np.nan)])
    header = msg_out.header_msg(START_NS, 'cam')
    msgs = msg_out.gesture_change_msgs(result, header)
    copied = [typestore().deserialize_cdr(to_cdr(m, 'hand_pose_msgs/msg/HandGesture'),
                                          'hand_pose_msgs/msg/HandGesture') for m in msgs]
    assert [(m.hand_id, m.gesture, m.previous_gesture) for m in copied] == [
        (3, 'pinch', 'none'), (4, 'none', 'open_palm')]
    assert copied[0].score == pytest.approx(0.9) and copied[1].score == 0.0
    assert copied[0].header.stamp.sec == START_NS // 10**9
