"""
process-bag's runner: one rosbag2 bag in, the node's outputs for every frame written to a bag.

Frames are taken in the bag's order (receive time, which rosbag2 records in order; within a
camera this is the stamp order) and every frame is processed: nothing is dropped for speed,
unlike the live node, which keeps only the newest frame. Each camera has its own tracking
state in VIDEO mode on one HandTracker (models loaded once). Everything runs on one thread
in a fixed order and the writer gets the same bytes in the same order, so the same bag and
settings give a byte-identical output bag; the cost is no worker threads within a bag (the
runtime's own threads still run each network).

The checks are the node's (ros/msg_in.py, applied to rosbags' message objects, which carry
the messages' attributes), and the outputs are built by the node's converters (msg_out, tf,
markers) and serialized with rclpy, so a bag's hands are byte for byte what the node
publishes for the same results. Bad input (a malformed image, a corrupt message, a topic of
an unexpected type, a missing CameraInfo, an unreadable bag) is counted per cause and logged
once per camera and cause; it never stops the run.

The cameras of one bag can also run apart (Ray, bags/ray_runner.py): `record` tracks one
camera over the same walk of the bag and keeps its outputs per message in a record file
(bags/stream_records.py), and `run` with the record files writes them where tracking would
have: the same bytes, since a camera's tracking state depends on its own frames only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
import logging
from pathlib import Path
import time
from typing import Any

from hand_pose_ros.bags.cameras import Camera, CAMERA_INFO, COMPRESSED, find_cameras, IMAGE
from hand_pose_ros.bags.cdr import to_cdr
from hand_pose_ros.bags.connections import add_copies, copied_connections
from hand_pose_ros.bags.summary import Summary
from hand_pose_ros.bags.typestore import typestore
from hand_pose_ros.core.results import CameraIntrinsics, FrameResult
from hand_pose_ros.core.tracker import FrameInput, HandTracker
from hand_pose_ros.ros import msg_in, msg_out
from hand_pose_ros.ros.parameters import NodeOptions
from hand_pose_ros.ros.tf import camera_tf_prefix, hand_transforms
import numpy as np

_LOG = logging.getLogger(__name__)

HAND_ARRAY = 'hand_pose_msgs/msg/HandArray'
HAND_GESTURE = 'hand_pose_msgs/msg/HandGesture'
MARKER_ARRAY = 'visualization_msgs/msg/MarkerArray'
TF_MESSAGE = 'tf2_msgs/msg/TFMessage'
TF_TOPIC = '/tf'
JOINT_STATE = 'sensor_msgs/msg/JointState'


@dataclass
class Walk:
    """How a bag is walked: its cameras, each topic's roles, copied and read connections."""

    cameras: list[Camera]
    roles: dict[str, list[tuple[str, Camera]]]
    copied: dict[int, tuple[Any, str, str]]
    wanted: list[Any]
    tf: frozenset[str] = frozenset()  # /tf and /tf_static, read for fusion


class StreamMismatchError(RuntimeError):
    """Record files that do not belong to the bag being written."""


class BagRunner:
    """
    Runs one tracker over bags; one instance per process (models loaded once).

    Without a tracker it lists a bag's cameras and writes output bags from record files
    (`run`'s `recorded`), the last step of a bag whose cameras ran as separate Ray tasks.
    """

    def __init__(self, tracker: HandTracker | None, node: NodeOptions, *, copy: bool = True,
                 namespaces: Sequence[str] = (), image_topics: Sequence[str] = (),
                 progress: bool = True, retarget: Sequence[tuple[str, str, str]] = ()):
        self.tracker = tracker
        self.retarget = tuple(retarget)  # (side, dex-retargeting config, URDF folder)
        self.node = node
        self.copy = copy
        self.namespaces = tuple(namespaces)
        self.image_topics = tuple(image_topics)
        self.progress = progress
        self.store = typestore()
        self.fusion: Any = None  # a bag's BagFusion (--fusion-frame), set by each walk

    # ------------------------------------------------------------------ one bag
    def run(self, bag: Path, out: Path, recorded: Sequence[Path] = ()) -> Summary:
        """
        Process one bag (a rosbag2 folder, or a .mcap / .db3 file) into the bag `out`.

        `recorded`: one record file per camera of the bag (from `record`), whose outputs
        are written instead of tracking: the bytes are the same as tracking here.
        """
        from rosbags.rosbag2 import StoragePlugin, Writer
        summary = Summary()
        start = time.perf_counter()
        reader = self._open(bag, summary)
        if reader is None:
            return summary
        writer = Writer(out, version=9, storage_plugin=StoragePlugin.MCAP)
        writer.open()
        try:
            walk = self._walk(reader, bag)
            outputs = self._add_outputs(writer, reader.connections, walk.cameras)
            copies = add_copies(writer, walk.copied, outputs)

            def emit(topic: str, msgtype: str, log_ns: int, cdr: bytes) -> None:
                writer.write(outputs[(topic, msgtype)], log_ns, cdr)

            if not recorded:
                self._load_robots(walk.cameras)
            if self.fusion is not None:
                self.fusion.bind(emit, lambda cam, exc: self._reject(cam, exc, summary))
            if recorded:
                handle = self._replayer(walk.cameras, recorded, summary, emit)
            else:
                def handle(position: int, role: str, cam: Camera, msgtype: str, raw: bytes,
                           log_ns: int) -> None:
                    self._guarded(role, cam, msgtype, raw, log_ns, summary, emit)
            self._messages(reader, walk, summary, bag, handle, copies, writer)
            if self.fusion is not None:
                self.fusion.finish()
                summary.fused_sets = self.fusion.fused_sets
                if self.fusion.errors:
                    summary.bad['fusion_error'] += self.fusion.errors
        finally:
            writer.close()
            reader.close()
            summary.wall_s = time.perf_counter() - start
            summary.finish()
        return summary

    def record(self, bag: Path, camera: int, path: Path) -> Summary:
        """
        Track only camera `camera` (its index in find_cameras) of a bag into a record file.

        The bag is walked as `run` walks it, so `run(bag, out, recorded)` with the record
        files of all cameras writes what `run(bag, out)` writes.
        """
        from hand_pose_ros.bags.stream_records import Record, RecordWriter
        summary = Summary()
        start = time.perf_counter()
        reader = self._open(bag, summary)
        if reader is None:
            return summary
        records = RecordWriter(path)
        try:
            walk = self._walk(reader, bag, fuse=False)
            chosen = walk.cameras[camera]
            self._load_robots([chosen])

            def handle(position: int, role: str, cam: Camera, msgtype: str, raw: bytes,
                       log_ns: int) -> None:
                if cam is not chosen:
                    return
                record = Record(position)
                delta = Summary()

                def emit(topic: str, msgtype: str, log_ns: int, cdr: bytes) -> None:
                    record.outputs.append((topic, msgtype, cdr))

                self._guarded(role, cam, msgtype, raw, log_ns, delta, emit)
                record.frames, record.processed = delta.frames, delta.processed
                record.hands, record.bad = delta.hands, delta.bad
                summary.add_counts(delta, log_ns)
                records.write(record)
            self._messages(reader, walk, summary, bag, handle, {}, None)
        finally:
            records.close()
            reader.close()
            summary.wall_s = time.perf_counter() - start
            summary.finish()
        return summary

    def cameras(self, bag: Path) -> list[Camera] | None:
        """Return the cameras `run` finds in a bag; None when it cannot be opened."""
        reader = self._open(bag, Summary())
        if reader is None:
            return None
        try:
            topics = {c.topic: c.msgtype for c in reader.connections}
            return find_cameras(topics, self.node, self.namespaces, self.image_topics)
        finally:
            reader.close()

    def _load_robots(self, cameras: Sequence[Camera]) -> None:
        """Give each camera its own robot hands (per-track warm starts are per camera)."""
        if not self.retarget:
            return
        from hand_pose_ros.core.meaning.retarget import HandRetargeter
        for cam in cameras:
            cam.robots = {side: HandRetargeter(config, urdf_dir)
                          for side, config, urdf_dir in self.retarget}

    def _open(self, bag: Path, summary: Summary) -> Any:
        """Open a bag: an AnyReader, or None with the error counted in `summary`."""
        from rosbags.highlevel import AnyReader, AnyReaderError
        try:
            reader = AnyReader([Path(bag)], default_typestore=self.store)
            reader.open()
        except (AnyReaderError, OSError, ValueError, KeyError) as exc:
            summary.bad['unreadable_bag'] += 1
            summary.errors.append(f'{bag}: cannot open it ({exc}); a truncated or corrupt '
                                  'file (e.g. a recording that was killed) can be repaired '
                                  'with `ros2 bag reindex` or `mcap recover`')
            return None
        return reader

    def _walk(self, reader: Any, bag: Path, fuse: bool = True) -> Walk:
        """
        Return how to walk a bag: its cameras, each topic's roles, the connections to read.

        With fusion_frame set, a tracker and `fuse`, it also sets up the bag's fusion
        (bags/fusion.py), which reads /tf and /tf_static.
        """
        topics = {c.topic: c.msgtype for c in reader.connections}
        cameras = find_cameras(topics, self.node, self.namespaces, self.image_topics)
        if not cameras:
            _LOG.warning('%s: no image topics found (topics: %s)', bag,
                         ', '.join(sorted(topics)) or 'none')
        several = len(cameras) > 1
        roles: dict[str, list[tuple[str, Camera]]] = {}
        for cam in cameras:
            if self.tracker is not None:
                cam.state = self.tracker.new_state()
            roles.setdefault(cam.image_topic, []).append(('image', cam))
            if cam.info_topic:
                roles.setdefault(cam.info_topic, []).append(('info', cam))
            if cam.depth_topic:
                roles.setdefault(cam.depth_topic, []).append(('depth', cam))
        self.prefixes = {
            cam.name: camera_tf_prefix(self.node.tf_prefix, cam.name if several else '',
                                       several)
            for cam in cameras}
        self.logged: set[tuple[str, str]] = set()
        copied = copied_connections(self.store, reader.connections,
                                    self._output_keys(cameras)) if self.copy else {}
        self.fusion = None
        if fuse and self.node.fusion_frame and self.tracker is not None and cameras:
            from hand_pose_ros.bags.fusion import BagFusion, TF_STATIC_TOPIC
            self.fusion = BagFusion(self.node, self.tracker.options, cameras)
            tf = frozenset(c.topic for c in reader.connections if c.msgtype == TF_MESSAGE
                           and c.topic in (TF_TOPIC, TF_STATIC_TOPIC))
        else:
            tf = frozenset()
        wanted = [c for c in reader.connections
                  if c.id in copied or c.topic in roles or c.topic in tf]
        return Walk(cameras, roles, copied, wanted, tf)

    def _messages(self, reader: Any, walk: Walk, summary: Summary, bag: Path,
                  handle: Callable[..., None], copies: dict[int, Any], writer: Any) -> None:
        """Walk the bag's messages in order: copy them, and hand each role to `handle`."""
        roles = walk.roles
        total = sum(c.msgcount for c in walk.wanted if c.topic in roles
                    and any(r == 'image' for r, _ in roles[c.topic]))
        from tqdm import tqdm
        bar = tqdm(total=total, unit='frame', desc=Path(bag).name, disable=not self.progress,
                   leave=False)
        count = 0
        try:
            for conn, log_ns, raw in reader.messages(connections=walk.wanted):
                count += 1
                if self.fusion is not None:
                    self.fusion.advance(log_ns)
                copy = copies.get(conn.id)
                if copy is not None:
                    writer.write(copy, log_ns, raw)
                if conn.topic in walk.tf:
                    self._tf(conn.topic, raw, summary)
                for role, cam in roles.get(conn.topic, ()):
                    if role == 'image':
                        bar.update(1)
                    handle(count, role, cam, conn.msgtype, raw, log_ns)
        except StreamMismatchError:
            raise
        except Exception as exc:  # noqa: BLE001 - rosbags raises many kinds on a bad file
            if isinstance(exc, (KeyboardInterrupt, MemoryError)):
                raise
            summary.bad['unreadable_bag'] += 1
            summary.errors.append(
                f'{bag}: cannot read past message {count} ({type(exc).__name__}: {exc}); the '
                f'output keeps the {summary.processed} frames processed before it')
        finally:
            bar.close()

    def _tf(self, topic: str, raw: bytes, summary: Summary) -> None:
        """Read a /tf or /tf_static message into the fusion's TF buffer; a bad one is counted."""
        try:
            self.fusion.add_tf(topic, raw)
        except Exception as exc:  # noqa: BLE001 - any malformed message
            summary.bad['fusion_bad_tf'] += 1
            if ('', 'fusion_bad_tf') not in self.logged:
                self.logged.add(('', 'fusion_bad_tf'))
                _LOG.warning('%s: a message cannot be read (%s: %s); logged once, counted in '
                             'the summary', topic, type(exc).__name__, exc)

    def _guarded(self, role: str, cam: Camera, msgtype: str, raw: bytes, log_ns: int,
                 summary: Summary, emit: Callable[[str, str, int, bytes], None]) -> None:
        """Handle one message of a camera; any failure is that message's bad input."""
        try:
            self._handle(role, cam, msgtype, raw, log_ns, summary, emit)
        except OSError:  # the output (disk full, ...): not the message's fault
            raise
        except Exception as exc:  # noqa: BLE001 - one message must not stop the bag
            self._reject(cam, msg_in.InputError(
                'internal_error', f'{type(exc).__name__}: {exc}'), summary)

    def _replayer(self, cameras: Sequence[Camera], recorded: Sequence[Path],
                  summary: Summary, emit: Callable[[str, str, int, bytes], None]
                  ) -> Callable[..., None]:
        """Return a `handle` that takes each camera's next record instead of tracking."""
        from hand_pose_ros.bags.stream_records import read_records
        if len(recorded) != len(cameras):
            raise StreamMismatchError(f'{len(recorded)} record files for {len(cameras)} cameras')
        streams = {cam.name: read_records(path) for cam, path in zip(cameras, recorded)}

        def handle(position: int, role: str, cam: Camera, msgtype: str, raw: bytes,
                   log_ns: int) -> None:
            record = next(streams[cam.name], None)
            if record is None or record.position != position:
                raise StreamMismatchError(
                    f'camera {cam.name}: no record of message {position} (a record file of '
                    'another bag or settings?)')
            summary.add_counts(record, log_ns)
            for topic, kind, cdr in record.outputs:
                emit(topic, kind, log_ns, cdr)
        return handle

    # ------------------------------------------------------------------ connections
    def _output_keys(self, cameras: Sequence[Camera]) -> list[tuple[str, str]]:
        """Return the (topic, type) of every output, in registration order."""
        wanted = []
        for cam in cameras:
            wanted.append((cam.topic('hands'), HAND_ARRAY))
            for side, _, _ in self.retarget:
                wanted.append((cam.topic(f'{side}/joint_states'), JOINT_STATE))
            if self.node.publish_gestures:
                wanted.append((cam.topic('gestures'), HAND_GESTURE))
            if self.node.publish_markers:
                wanted.append((cam.topic('hand_markers'), MARKER_ARRAY))
        if self.node.fusion_frame and cameras:
            from hand_pose_ros.bags.fusion import output_keys
            wanted += output_keys(self.node)
        if self.node.publish_tf and cameras:
            wanted.append((TF_TOPIC, TF_MESSAGE))
        return wanted

    def _add_outputs(self, writer: Any, inputs: Iterable[Any],
                     cameras: Sequence[Camera]) -> dict[tuple[str, str], Any]:
        """Register every output topic up front: listed even when nothing is written."""
        existing = {(c.topic, c.msgtype): c for c in inputs}
        out: dict[tuple[str, str], Any] = {}
        for topic, msgtype in self._output_keys(cameras):
            if (topic, msgtype) in out:
                continue
            qos = existing[(topic, msgtype)].ext.offered_qos_profiles \
                if (topic, msgtype) in existing else ()
            out[(topic, msgtype)] = writer.add_connection(
                topic, msgtype, typestore=self.store, offered_qos_profiles=qos)
        return out

    # ------------------------------------------------------------------ messages
    def _reject(self, cam: Camera, exc: msg_in.InputError, summary: Summary) -> None:
        summary.bad[exc.cause] += 1
        if (cam.name, exc.cause) not in self.logged:
            self.logged.add((cam.name, exc.cause))
            _LOG.warning('camera %s: %s (logged once per camera and cause; counted in the '
                         'summary)', cam.name, exc)

    def _handle(self, role: str, cam: Camera, msgtype: str, raw: bytes, log_ns: int,
                summary: Summary, emit: Callable[[str, str, int, bytes], None]) -> None:
        expected = {'image': (IMAGE, COMPRESSED), 'info': (CAMERA_INFO,), 'depth': (IMAGE,)}
        if role == 'image':
            summary.frames += 1
            summary.first_ns = log_ns if summary.first_ns is None else summary.first_ns
            summary.last_ns = log_ns
        if msgtype not in expected[role]:
            self._reject(cam, msg_in.InputError(
                'unexpected_type', f'{role} topic has type {msgtype}, expected '
                f'{" or ".join(expected[role])}'), summary)
            return
        try:
            msg = self.store.deserialize_cdr(raw, msgtype)
        except Exception as exc:  # noqa: BLE001 - any malformed CDR
            self._reject(cam, msg_in.InputError(
                'corrupt_message', f'{msgtype} cannot be decoded ({exc})'), summary)
            return
        try:
            stamp_ns = msg_in.stamp_to_ns(msg.header.stamp)
            if role == 'info':
                cam.infos.add(stamp_ns, msg_in.convert_camera_info(msg))
            elif role == 'depth':
                cam.depths.add(stamp_ns, msg)
            else:
                self._frame(cam, msg, stamp_ns, log_ns, summary, emit)
        except msg_in.InputError as exc:
            self._reject(cam, exc, summary)

    def _frame(self, cam: Camera, msg: Any, stamp_ns: int, log_ns: int, summary: Summary,
               emit: Callable[[str, str, int, bytes], None]) -> None:
        """Check, decode and track one image; write its outputs at the image's receive time."""
        max_pixels = self.node.max_image_pixels
        if cam.compressed:
            rgb = msg_in.decode_compressed(msg, msg_in.check_compressed(msg, max_pixels))
        else:
            rgb = msg_in.decode_image(msg, msg_in.check_image(msg, max_pixels))
        if cam.last_stamp_ns is not None and stamp_ns <= cam.last_stamp_ns:
            raise msg_in.InputError(
                'stamp_out_of_order', f'stamp {stamp_ns} ns is not after the previous frame '
                f'({cam.last_stamp_ns} ns); tracking needs increasing stamps')
        cam.last_stamp_ns = stamp_ns
        shape = rgb.shape[:2]
        intr = self._intrinsics(cam, stamp_ns, shape, summary)
        depth = self._depth(cam, stamp_ns, shape, summary)
        frame = FrameInput(rgb, cam.state, 'rgb', intr, depth, timestamp=stamp_ns * 1e-9)
        try:
            result = self.tracker.process_batch([frame])[0]
        except Exception as exc:  # noqa: BLE001 - one frame must not stop the bag
            raise msg_in.InputError('internal_error', f'{type(exc).__name__}: {exc}') from exc
        summary.processed += 1
        summary.hands += len(result.hands)
        self._write(cam, msg.header, result, log_ns, emit)
        if self.fusion is not None:
            late = self.fusion.add(cam, msg.header, intr, result, log_ns)
            if late:
                summary.bad['fusion_late_view'] += late

    def _intrinsics(self, cam: Camera, stamp_ns: int, shape: tuple[int, int],
                    summary: Summary) -> CameraIntrinsics | None:
        """Apply the node's rule: the CameraInfo matched by stamp, else the latest one read."""
        tol = int(self.node.sync_tolerance_s * 1e9)
        item = cam.infos.match(stamp_ns, tol, 0.0).item or cam.infos.latest()
        if item is None:
            self._reject(cam, msg_in.InputError(
                'no_camera_info', 'no CameraInfo (yet) for this camera: 2D only, no '
                'camera-frame 3D'), summary)
            return None
        try:
            return msg_in.intrinsics_for_image(item, shape[1], shape[0])
        except msg_in.InputError as exc:
            self._reject(cam, exc, summary)
            return None

    def _depth(self, cam: Camera, stamp_ns: int, shape: tuple[int, int],
               summary: Summary) -> np.ndarray | None:
        if cam.depth_topic is None:
            return None
        tol = int(self.node.sync_tolerance_s * 1e9)
        found = cam.depths.match(stamp_ns, tol, 0.0)
        if not found.exact:
            return None
        try:
            return msg_in.depth_image(found.item, expected_shape=shape)
        except msg_in.InputError as exc:
            self._reject(cam, exc, summary)
            return None

    def _write(self, cam: Camera, header: Any, result: FrameResult, log_ns: int,
               emit: Callable[[str, str, int, bytes], None]) -> None:
        """Write the node's messages for one frame (ros/node.py CameraIO.publish)."""
        ros_header = msg_out.header_msg(msg_in.stamp_to_ns(header.stamp), header.frame_id)

        def put(topic: str, msgtype: str, message: Any) -> None:
            emit(topic, msgtype, log_ns, to_cdr(message, msgtype))

        hands = msg_out.frame_result_to_msg(result, ros_header)
        put(cam.topic('hands'), HAND_ARRAY, hands)
        if cam.robots:
            from hand_pose_ros.ros.retarget_node import joint_states
            for side, state in joint_states(cam.robots, hands).items():
                put(cam.topic(f'{side}/joint_states'), JOINT_STATE, state)
        if self.node.publish_tf:
            transforms = hand_transforms(result, ros_header, self.prefixes[cam.name],
                                         self.node.publish_fingertip_tf)
            if transforms:
                from tf2_msgs.msg import TFMessage
                put(TF_TOPIC, TF_MESSAGE, TFMessage(transforms=transforms))
        if self.node.publish_markers:
            arr = cam.markers.update(result, ros_header)
            if arr.markers:
                put(cam.topic('hand_markers'), MARKER_ARRAY, arr)
        if self.node.publish_gestures:
            for change in msg_out.gesture_change_msgs(result, ros_header):
                put(cam.topic('gestures'), HAND_GESTURE, change)
