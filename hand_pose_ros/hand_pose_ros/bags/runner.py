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
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
import logging
from pathlib import Path
import time
from typing import Any

from hand_pose_ros.bags.typestore import typestore
from hand_pose_ros.core.results import CameraIntrinsics, FrameResult
from hand_pose_ros.core.tracker import FrameInput, HandTracker, TrackerState
from hand_pose_ros.ros import msg_in, msg_out
from hand_pose_ros.ros.markers import MarkerTracker
from hand_pose_ros.ros.parameters import NodeOptions
from hand_pose_ros.ros.stamp_match import StampBuffer
from hand_pose_ros.ros.tf import camera_tf_prefix, hand_transforms
import numpy as np

_LOG = logging.getLogger(__name__)

IMAGE = 'sensor_msgs/msg/Image'
COMPRESSED = 'sensor_msgs/msg/CompressedImage'
CAMERA_INFO = 'sensor_msgs/msg/CameraInfo'
HAND_ARRAY = 'hand_pose_msgs/msg/HandArray'
HAND_GESTURE = 'hand_pose_msgs/msg/HandGesture'
MARKER_ARRAY = 'visualization_msgs/msg/MarkerArray'
TF_MESSAGE = 'tf2_msgs/msg/TFMessage'
TF_TOPIC = '/tf'
INFO_BUFFER = 30
DEPTH_BUFFER = 10


# rosbags' numpy dtypes of the primitive types (fixed arrays and sequences of them).
_DTYPES = {'bool': np.bool_, 'byte': np.uint8, 'char': np.uint8, 'int8': np.int8,
           'uint8': np.uint8, 'int16': np.int16, 'uint16': np.uint16, 'int32': np.int32,
           'uint32': np.uint32, 'int64': np.int64, 'uint64': np.uint64,
           'float32': np.float32, 'float64': np.float64}


@cache
def _plan(msgtype: str) -> tuple[Any, tuple[tuple[str, int, Any], ...]]:
    """(rosbags class, ((field, how to copy it, detail), ...)) of a type, built once."""
    from rosbags.interfaces import Nodetype
    store = typestore()
    plan = []
    for name, (kind, detail) in store.fielddefs[msgtype][1]:
        if kind == Nodetype.BASE:
            plan.append((name, _VALUE, None))
        elif kind == Nodetype.NAME:
            plan.append((name, _MESSAGE, detail))
        else:
            (inner, inner_detail), _ = detail
            if inner == Nodetype.NAME:
                plan.append((name, _MESSAGES, inner_detail))
            elif inner_detail[0] == 'string':
                plan.append((name, _STRINGS, None))
            else:
                plan.append((name, _NUMBERS, _DTYPES[inner_detail[0]]))
    return store.types[msgtype], tuple(plan)


_VALUE, _MESSAGE, _MESSAGES, _STRINGS, _NUMBERS = range(5)


def to_rosbags(message: Any, msgtype: str) -> Any:
    """
    Copy an rclpy message (built by the node's converters) into rosbags' class of its type.

    Field by field from the type's definition, nothing computed: the values are the node's.
    Profiling the runner found this copy 3 times cheaper than rclpy's serializer followed by
    a rosbags parse to normalise its bytes (see to_cdr).
    """
    cls, plan = _plan(msgtype)
    if all(how == _VALUE for _, how, _ in plan):  # Point, Time, ...: most of the copies
        return cls(*[getattr(message, name) for name, _, _ in plan])
    kwargs = {}
    for name, how, detail in plan:
        value = getattr(message, name)
        if how == _VALUE:
            kwargs[name] = value
        elif how == _MESSAGE:
            kwargs[name] = to_rosbags(value, detail)
        elif how == _MESSAGES:
            kwargs[name] = [to_rosbags(v, detail) for v in value]
        elif how == _STRINGS:
            kwargs[name] = list(value)
        else:
            kwargs[name] = np.asarray(value, dtype=detail)
    return cls(**kwargs)


def to_cdr(message: Any, msgtype: str) -> bytes:
    """
    Serialize an rclpy message as the bag stores it (CDR, little endian, zero padding).

    rclpy's own serializer leaves the CDR alignment padding uninitialised (whatever was in
    memory), so its bytes differ from run to run; rosbags' writes zeros, which makes the
    output deterministic.
    """
    return bytes(typestore().serialize_cdr(to_rosbags(message, msgtype), msgtype))


@dataclass
class Camera:
    """One image stream of a bag: where it comes from, where its outputs go, its state."""

    name: str  # output namespace ('/cam'), or the image topic when a namespace has several
    image_topic: str
    compressed: bool
    info_topic: str | None
    depth_topic: str | None
    state: TrackerState | None = None
    markers: MarkerTracker = field(default_factory=MarkerTracker)
    infos: StampBuffer = field(default_factory=lambda: StampBuffer(INFO_BUFFER))
    depths: StampBuffer = field(default_factory=lambda: StampBuffer(DEPTH_BUFFER))
    last_stamp_ns: int | None = None

    def topic(self, leaf: str) -> str:
        return f'{self.name.rstrip("/")}/{leaf}'


@dataclass
class Summary:
    """What a run did: counts for the end line, the tests and the benchmarks."""

    frames: int = 0  # image messages of the processed cameras
    processed: int = 0
    hands: int = 0
    bad: Counter = field(default_factory=Counter)
    wall_s: float = 0.0
    span_s: float = 0.0  # receive time span of the images: the recording's duration
    first_ns: int | None = None
    last_ns: int | None = None
    errors: list[str] = field(default_factory=list)  # bags that could not be read to the end

    def add(self, other: Summary) -> None:
        self.frames += other.frames
        self.processed += other.processed
        self.hands += other.hands
        self.bad.update(other.bad)
        self.wall_s += other.wall_s
        self.errors += other.errors
        self.span_s += other.span_s  # several bags: each is its own recording

    def text(self) -> str:
        fps = self.processed / self.wall_s if self.wall_s > 0 else 0.0
        rt = self.span_s / self.wall_s if self.wall_s > 0 and self.span_s > 0 else 0.0
        bad = ', '.join(f'{k} {v}' for k, v in sorted(self.bad.items())) or 'none'
        return (f'{self.frames} frames, {self.processed} processed, {self.hands} hands; '
                f'bad input: {bad}; {self.wall_s:.1f} s, {fps:.1f} frames/s, '
                f'{rt:.2f}x real time')


def _parent(topic: str) -> str:
    return topic.rsplit('/', 1)[0] or '/'


def find_cameras(topics: dict[str, str], node: NodeOptions,
                 namespaces: Sequence[str] = (), image_topics: Sequence[str] = ()
                 ) -> list[Camera]:
    """
    Return the image streams to process, from the bag's {topic: type}, in topic order.

    Automatic: every Image and CompressedImage topic except depth images and a compressed
    copy of a raw topic that is also recorded (`<raw>/compressed`, image_transport's
    republisher); its namespace is the topic's parent. `namespaces` keeps those in the given
    namespaces; `image_topics` names the topics instead (any type: one that is not an image
    is counted as bad input). CameraInfo is `<namespace>/<camera_info_topic>`, depth
    `<namespace>/<depth_topic>` or, when depth_topic is '', the namespace's Image topic
    with 'depth' in its name.
    """
    if image_topics:
        chosen = list(image_topics)
    else:
        chosen = []
        for topic, kind in sorted(topics.items()):
            if kind == IMAGE and 'depth' not in topic.lower():
                chosen.append(topic)
            elif kind == COMPRESSED and topics.get(topic.removesuffix('/compressed')) != IMAGE:
                chosen.append(topic)
        if namespaces:
            wanted = {'/' + n.strip('/') for n in namespaces}
            chosen = [t for t in chosen if _namespace(t, topics) in wanted]
    by_ns: Counter = Counter(_namespace(t, topics) for t in chosen)
    cameras = []
    for topic in chosen:
        ns = _namespace(topic, topics)
        info = f'{ns.rstrip("/")}/{node.camera_info_topic}'
        depth = _depth_topic(ns, topics, node.depth_topic)
        cameras.append(Camera(
            name=ns if by_ns[ns] == 1 else topic, image_topic=topic,
            compressed=topics.get(topic) == COMPRESSED,
            info_topic=info if topics.get(info) == CAMERA_INFO else None, depth_topic=depth))
    return cameras


def _namespace(topic: str, topics: dict[str, str]) -> str:
    """`/cam/image_raw` and `/cam/image_raw/compressed` are both camera `/cam`."""
    if topics.get(topic) == COMPRESSED and topic.endswith('/compressed'):
        topic = topic.removesuffix('/compressed')
    return _parent(topic)


def _depth_topic(ns: str, topics: dict[str, str], configured: str) -> str | None:
    prefix = ns.rstrip('/') + '/'
    if configured:
        topic = prefix + configured.strip('/')
        return topic if topics.get(topic) == IMAGE else None
    found = sorted(t for t, k in topics.items()
                   if k == IMAGE and t.startswith(prefix) and 'depth' in t[len(prefix):].lower())
    return found[0] if found else None


class BagRunner:
    """Runs one tracker over bags; one instance per process (models loaded once)."""

    def __init__(self, tracker: HandTracker, node: NodeOptions, *, copy: bool = True,
                 namespaces: Sequence[str] = (), image_topics: Sequence[str] = (),
                 progress: bool = True):
        self.tracker = tracker
        self.node = node
        self.copy = copy
        self.namespaces = tuple(namespaces)
        self.image_topics = tuple(image_topics)
        self.progress = progress
        self.store = typestore()

    # ------------------------------------------------------------------ one bag
    def run(self, bag: Path, out: Path) -> Summary:
        """Process one bag (a rosbag2 folder, or a .mcap / .db3 file) into the bag `out`."""
        from rosbags.highlevel import AnyReader, AnyReaderError
        from rosbags.rosbag2 import StoragePlugin, Writer
        summary = Summary()
        start = time.perf_counter()
        try:
            reader = AnyReader([Path(bag)], default_typestore=self.store)
            reader.open()
        except (AnyReaderError, OSError, ValueError, KeyError) as exc:
            summary.bad['unreadable_bag'] += 1
            summary.errors.append(f'{bag}: cannot open it ({exc}); a truncated or corrupt '
                                  'file (e.g. a recording that was killed) can be repaired '
                                  'with `ros2 bag reindex` or `mcap recover`')
            return summary
        writer = Writer(out, version=9, storage_plugin=StoragePlugin.MCAP)
        writer.open()
        try:
            self._run(reader, writer, summary, bag)
        finally:
            writer.close()
            reader.close()
            summary.wall_s = time.perf_counter() - start
            if summary.first_ns is not None:
                # n frames span n - 1 periods; add one so x real time compares like for like
                frames_span = (summary.last_ns - summary.first_ns) * 1e-9
                period = frames_span / max(summary.frames - 1, 1)
                summary.span_s = frames_span + period
        return summary

    def _run(self, reader: Any, writer: Any, summary: Summary, bag: Path) -> None:
        topics = {c.topic: c.msgtype for c in reader.connections}
        cameras = find_cameras(topics, self.node, self.namespaces, self.image_topics)
        if not cameras:
            _LOG.warning('%s: no image topics found (topics: %s)', bag,
                         ', '.join(sorted(topics)) or 'none')
        several = len(cameras) > 1
        roles: dict[str, list[tuple[str, Camera]]] = {}
        for cam in cameras:
            cam.state = self.tracker.new_state()
            roles.setdefault(cam.image_topic, []).append(('image', cam))
            if cam.info_topic:
                roles.setdefault(cam.info_topic, []).append(('info', cam))
            if cam.depth_topic:
                roles.setdefault(cam.depth_topic, []).append(('depth', cam))
        outputs = self._add_outputs(writer, reader.connections, cameras)
        copies = self._add_copies(writer, reader.connections, outputs) if self.copy else {}
        self.prefixes = {
            cam.name: camera_tf_prefix(self.node.tf_prefix, cam.name if several else '',
                                       several)
            for cam in cameras}
        self.logged: set[tuple[str, str]] = set()
        wanted = [c for c in reader.connections if c.id in copies or c.topic in roles]
        total = sum(c.msgcount for c in wanted if c.topic in roles
                    and any(r == 'image' for r, _ in roles[c.topic]))
        from tqdm import tqdm
        bar = tqdm(total=total, unit='frame', desc=Path(bag).name, disable=not self.progress,
                   leave=False)
        count = 0
        try:
            for conn, log_ns, raw in reader.messages(connections=wanted):
                count += 1
                if conn.id in copies:
                    writer.write(copies[conn.id], log_ns, raw)
                for role, cam in roles.get(conn.topic, ()):
                    if role == 'image':
                        bar.update(1)
                    try:
                        self._handle(role, cam, conn.msgtype, raw, log_ns, writer, outputs,
                                     summary)
                    except OSError:  # the output (disk full, ...): not the message's fault
                        raise
                    except Exception as exc:  # noqa: BLE001 - one message must not stop the bag
                        self._reject(cam, msg_in.InputError(
                            'internal_error', f'{type(exc).__name__}: {exc}'), summary)
        except Exception as exc:  # noqa: BLE001 - rosbags raises many kinds on a bad file
            if isinstance(exc, (KeyboardInterrupt, MemoryError)):
                raise
            summary.bad['unreadable_bag'] += 1
            summary.errors.append(
                f'{bag}: cannot read past message {count} ({type(exc).__name__}: {exc}); the '
                f'output keeps the {summary.processed} frames processed before it')
        finally:
            bar.close()

    # ------------------------------------------------------------------ connections
    def _add_outputs(self, writer: Any, inputs: Iterable[Any],
                     cameras: Sequence[Camera]) -> dict[tuple[str, str], Any]:
        """Register every output topic up front: listed even when nothing is written."""
        existing = {(c.topic, c.msgtype): c for c in inputs}
        out: dict[tuple[str, str], Any] = {}
        wanted = []
        for cam in cameras:
            wanted.append((cam.topic('hands'), HAND_ARRAY))
            if self.node.publish_gestures:
                wanted.append((cam.topic('gestures'), HAND_GESTURE))
            if self.node.publish_markers:
                wanted.append((cam.topic('hand_markers'), MARKER_ARRAY))
        if self.node.publish_tf and cameras:
            wanted.append((TF_TOPIC, TF_MESSAGE))
        for topic, msgtype in wanted:
            if (topic, msgtype) in out:
                continue
            qos = existing[(topic, msgtype)].ext.offered_qos_profiles \
                if (topic, msgtype) in existing else ()
            out[(topic, msgtype)] = writer.add_connection(
                topic, msgtype, typestore=self.store, offered_qos_profiles=qos)
        return out

    def _add_copies(self, writer: Any, inputs: Iterable[Any],
                    outputs: dict[tuple[str, str], Any]) -> dict[int, Any]:
        """
        Input connection id -> output connection for the copied topics.

        An input topic that is also an output of this run (a bag processed before) is
        replaced, not mixed, except /tf, whose other transforms are kept.
        """
        copies: dict[int, Any] = {}
        for conn in inputs:
            key = (conn.topic, conn.msgtype)
            if key in outputs:
                if conn.topic == TF_TOPIC:
                    copies[conn.id] = outputs[key]
                continue
            msgdef, digest = conn.msgdef.data, conn.digest
            if not msgdef or not digest:  # old sqlite3 bags carry no definitions
                try:
                    msgdef = self.store.generate_msgdef(conn.msgtype, ros_version=2)[0]
                    digest = self.store.hash_rihs01(conn.msgtype)
                except Exception:  # noqa: BLE001 - a type the typestore does not know
                    _LOG.warning('%s (%s): no message definition, not copied', conn.topic,
                                 conn.msgtype)
                    continue
            try:
                copies[conn.id] = writer.add_connection(
                    conn.topic, conn.msgtype, msgdef=msgdef, rihs01=digest,
                    serialization_format=conn.ext.serialization_format,
                    offered_qos_profiles=conn.ext.offered_qos_profiles)
            except Exception:  # noqa: BLE001 - the same connection twice (several writers)
                same = [c for c in writer.connections
                        if c.topic == conn.topic and c.msgtype == conn.msgtype]
                if same:
                    copies[conn.id] = same[0]
        return copies

    # ------------------------------------------------------------------ messages
    def _reject(self, cam: Camera, exc: msg_in.InputError, summary: Summary) -> None:
        summary.bad[exc.cause] += 1
        if (cam.name, exc.cause) not in self.logged:
            self.logged.add((cam.name, exc.cause))
            _LOG.warning('camera %s: %s (logged once per camera and cause; counted in the '
                         'summary)', cam.name, exc)

    def _handle(self, role: str, cam: Camera, msgtype: str, raw: bytes, log_ns: int,
                writer: Any, outputs: dict[tuple[str, str], Any], summary: Summary) -> None:
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
                self._frame(cam, msg, stamp_ns, log_ns, writer, outputs, summary)
        except msg_in.InputError as exc:
            self._reject(cam, exc, summary)

    def _frame(self, cam: Camera, msg: Any, stamp_ns: int, log_ns: int, writer: Any,
               outputs: dict[tuple[str, str], Any], summary: Summary) -> None:
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
        self._write(cam, msg.header, result, log_ns, writer, outputs)

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

    def _write(self, cam: Camera, header: Any, result: FrameResult, log_ns: int, writer: Any,
               outputs: dict[tuple[str, str], Any]) -> None:
        """Write the node's messages for one frame (ros/node.py CameraIO.publish)."""
        ros_header = msg_out.header_msg(msg_in.stamp_to_ns(header.stamp), header.frame_id)

        def put(topic: str, msgtype: str, message: Any) -> None:
            writer.write(outputs[(topic, msgtype)], log_ns, to_cdr(message, msgtype))

        put(cam.topic('hands'), HAND_ARRAY, msg_out.frame_result_to_msg(result, ros_header))
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
