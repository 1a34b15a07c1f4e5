"""
hand_pose_node: the ROS 2 node that tracks hands in one or more cameras.

Camera topics in; HandArray, wrist TF, markers, annotated image, gestures and diagnostics
out.

Threading: subscription callbacks (executor thread) only store the newest message per
camera; one worker thread decodes, runs the tracker and publishes, so the executor never
blocks on inference and no backlog can form (see frame_queue). Everything a camera needs is
kept in its CameraIO; bad input is rejected per camera and cause, logged when it first
happens and then at most every LOG_PERIOD_S with the count since the previous line, counted in
/diagnostics, and never stops the other cameras. Checks that decide the work a frame costs
(declared image size, a compressed image's header) run on receipt, before any decoding, so a
decompression bomb cannot stall the worker that all cameras share. An unexpected exception
while processing one camera's frame is handled the same way (cause `internal_error`, the
first one logged with its traceback) and only affects that camera.
"""

from __future__ import annotations

from dataclasses import dataclass
import threading
import traceback
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from hand_pose_msgs.msg import HandArray, HandGesture
from hand_pose_ros.core.options import SETTINGS, tracker_options
from hand_pose_ros.core.results import CameraIntrinsics, FrameResult
from hand_pose_ros.core.tracker import FrameInput, TrackerState
from hand_pose_ros.ros import msg_in, msg_out, parameters
from hand_pose_ros.ros.annotate import draw_hands
from hand_pose_ros.ros.diagnostics import (
    build_diagnostic_array,
    CameraStats,
    LogDecision,
    LogThrottle,
    NO_INPUT_LOG_PERIOD_S,
    no_input_message,
    NO_INPUT_WARN_S,
    transport_loss_message,
)
from hand_pose_ros.ros.frame_queue import FrameWorker, LatestFrameSlots
from hand_pose_ros.ros.fusion import NodeFusion
from hand_pose_ros.ros.markers import MarkerTracker
from hand_pose_ros.ros.spin import spin_node
from hand_pose_ros.ros.stamp_match import StampBuffer
from hand_pose_ros.ros.tf import camera_tf_prefix, hand_transforms, TfBroadcaster
import numpy as np
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data, QoSProfile
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from visualization_msgs.msg import MarkerArray

INFO_BUFFER = 30
MATCH_WAIT_S = 0.1
STARTUP_FRAMES = 30
DEPTH_BUFFER = 10
OUTPUT_QOS = QoSProfile(depth=10)
IMAGE_OUT_QOS = QoSProfile(depth=2)
WORKER_JOIN_S = 2.0  # launch escalates to SIGTERM after 5 s: stay well inside it


@dataclass
class PendingFrame:
    msg: Any  # Image or CompressedImage
    compressed: bool
    # What the receipt check found, so the worker decodes without checking again: bytes per
    # pixel of an Image, (width, height) a CompressedImage's header declares.
    checked: Any = None


@dataclass
class CameraJob:
    """One camera's decoded frame on its way through the tracker to the publishers."""

    io: CameraIO
    header: Any  # std_msgs/Header of the source image
    rgb: np.ndarray
    frame: FrameInput


def _join(ns: str, topic: str) -> str:
    return f'{ns.strip("/")}/{topic}' if ns.strip('/') else topic


def _again(decision: LogDecision, total: int) -> str:
    """Format the repeat part of a throttled log line: how many since the previous line, in all."""
    return (f'{decision.count} times in the last {decision.elapsed_s:.0f} s, {total} in '
            'total')


class CameraIO:
    """One camera's subscriptions, publishers, buffers, stats and tracker state."""

    def __init__(self, node: HandPoseNode, name: str, several: bool):
        self.node = node
        self.name = name or '/'
        self.tf_camera = name if several else ''
        cfg = node.config
        self.stats = CameraStats(
            self.name, dropped=lambda: node.slots.dropped(self.name),
            side_topics=('camera_info', 'depth') if cfg.depth_topic else ('camera_info',))
        self.log_throttle = LogThrottle()
        self.silence_log = LogThrottle(NO_INPUT_LOG_PERIOD_S)
        self.markers = MarkerTracker()
        self.infos = StampBuffer(INFO_BUFFER)  # CameraIntrinsics or the InputError it raised
        self.depths = StampBuffer(DEPTH_BUFFER)  # depth Image messages
        qos_opts = QoSOverridingOptions.with_default_policies()
        topic = _join(name, cfg.image_topic)
        if cfg.compressed:
            self.image_topic = topic + '/compressed'
            node.create_subscription(
                CompressedImage, self.image_topic, lambda m: self.on_image(m, True),
                qos_profile_sensor_data, qos_overriding_options=qos_opts)
        else:
            self.image_topic = topic
            node.create_subscription(
                Image, topic, lambda m: self.on_image(m, False), qos_profile_sensor_data,
                qos_overriding_options=qos_opts)
        node.create_subscription(
            CameraInfo, _join(name, cfg.camera_info_topic), self.on_info,
            qos_profile_sensor_data,
            qos_overriding_options=QoSOverridingOptions.with_default_policies())
        if cfg.depth_topic:
            node.create_subscription(
                Image, _join(name, cfg.depth_topic), self.on_depth, qos_profile_sensor_data,
                qos_overriding_options=QoSOverridingOptions.with_default_policies())
        self.pub_hands = node.create_publisher(HandArray, _join(name, 'hands'), OUTPUT_QOS)
        self.pub_markers = node.create_publisher(
            MarkerArray, _join(name, 'hand_markers'), OUTPUT_QOS)
        self.pub_image = node.create_publisher(Image, _join(name, 'hands/image'), IMAGE_OUT_QOS)
        self.pub_gestures = node.create_publisher(
            HandGesture, _join(name, 'gestures'), OUTPUT_QOS)

    # ------------------------------------------------------------ executor thread
    def on_image(self, msg: Any, compressed: bool) -> None:
        self.stats.on_input()
        self.stats.on_image_stamp(msg_in.stamp_to_ns(msg.header.stamp))
        max_pixels = self.node.config.max_image_pixels
        try:
            checked = (msg_in.check_compressed(msg, max_pixels) if compressed
                       else msg_in.check_image(msg, max_pixels))
        except msg_in.InputError as exc:
            self.reject(exc)
            return
        self.node.slots.put(self.name, PendingFrame(msg, compressed, checked))

    def on_info(self, msg: CameraInfo) -> None:
        """Convert and check once per CameraInfo; the image size is checked per frame."""
        stamp_ns = msg_in.stamp_to_ns(msg.header.stamp)
        self.stats.on_info_stamp(stamp_ns)
        self.infos.add(stamp_ns, msg_in.convert_camera_info(msg))
        self.stats.on_side_input('camera_info', stamp_ns)
        loss = self.stats.transport_loss_to_report()  # said out loud, not only in diagnostics
        if loss is not None and self.log_throttle.note('transport_loss') is not None:
            self._log(transport_loss_message(self.name, *loss))

    def on_depth(self, msg: Image) -> None:
        stamp_ns = msg_in.stamp_to_ns(msg.header.stamp)
        self.depths.add(stamp_ns, msg)
        self.stats.on_side_input('depth', stamp_ns)

    def check_input(self, now: float | None = None) -> str | None:
        """Warn (throttled) while no image arrives; the text logged, else None (timer)."""
        silent = self.stats.silent_s(now)
        if silent < NO_INPUT_WARN_S or self.silence_log.note('no_input', now) is None:
            return None
        topic = self.node.resolve_topic_name(self.image_topic)
        text = no_input_message(self.name, topic, silent, self.node.count_publishers(topic),
                                self.stats.side_received('camera_info'),
                                self.stats.received_total)
        self._log(text)
        return text

    # ------------------------------------------------------------ rejected input, errors
    def _log(self, text: str, error: bool = False) -> None:
        """
        Log a warning (or error) for this camera, unless the node is shutting down.

        After Ctrl-C the context is gone while a callback or the worker may still finish a
        frame; a log line then cannot reach /rosout and rcl prints an error of its own.
        """
        if not self.node.context.ok():
            return
        logger = self.node.get_logger()
        (logger.error if error else logger.warning)(text)

    def reject(self, exc: msg_in.InputError) -> None:
        """
        Count one rejected input; log it the first time, then throttled (any thread).

        Repeats say 'rejected input again' with the count since the previous line, so the
        first occurrence of a cause stays one distinct line to search for.
        """
        total = self.stats.on_error(exc.cause)
        decision = self.log_throttle.note(exc.cause)
        if decision is None:
            return
        if decision.first:
            text = f'rejected input, {exc.cause}: {exc.detail}'
        else:
            text = f'rejected input again, {exc.cause} ({_again(decision, total)}): {exc.detail}'
        self._log(f'camera {self.name}: {text}')

    def internal_error(self, exc: BaseException) -> None:
        """Count an unexpected exception in this camera's step here; log it as reject() does."""
        total = self.stats.on_error('internal_error')
        decision = self.log_throttle.note('internal_error')
        if decision is None:
            return
        msg = f'camera {self.name}: frame processing failed: {type(exc).__name__}: {exc}'
        if decision.first:
            msg += '\n' + ''.join(traceback.format_exception(exc)).rstrip()
        else:
            msg += f' ({_again(decision, total)})'
        self._log(msg, error=True)

    # ------------------------------------------------------------ worker thread
    def _match(self, buf: StampBuffer, what: str, fallback: str, stamp_ns: int) -> Any:
        """Return the buffered item matched to the image stamp (see stamp_match), or None."""
        tol = int(self.node.config.sync_tolerance_s * 1e9)
        m = buf.match(stamp_ns, tol, MATCH_WAIT_S,
                      startup=self.stats.processed_total < STARTUP_FRAMES)
        if m.first_mismatch:
            self._log(f'camera {self.name}: no {what} stamped within sync_tolerance_s of the '
                      f'image ({tol * 1e-9:g} s); {fallback}. Logged once per camera.')
        return m.item if m.exact else None

    def intrinsics_for(self, stamp_ns: int, shape: tuple[int, int]) -> CameraIntrinsics | None:
        """
        Return the intrinsics of the CameraInfo matched by stamp, if it describes this image.

        The latest one stands in when none is within tolerance. A bad or mismatched
        CameraInfo gives no 3D, not wrong 3D.
        """
        item = self._match(self.infos, 'CameraInfo', 'using the latest CameraInfo', stamp_ns)
        if item is None:
            item = self.infos.latest()
        if item is None:
            return None
        try:
            return msg_in.intrinsics_for_image(item, shape[1], shape[0])
        except msg_in.InputError as exc:
            self.reject(exc)
            return None

    def depth_for(self, stamp_ns: int, shape: tuple[int, int]) -> np.ndarray | None:
        if not self.node.config.depth_topic:
            return None
        msg = self._match(self.depths, 'depth image', 'depth is not used for such frames',
                          stamp_ns)
        if msg is None:
            return None
        try:
            return msg_in.depth_image(msg, expected_shape=shape)
        except msg_in.InputError as exc:
            self.reject(exc)
            return None

    def prepare(self, frame: PendingFrame, state: TrackerState) -> CameraJob | None:
        """Return the job of a pending frame, or None when it was rejected."""
        rgb = self.decode(frame)
        if rgb is None:
            return None
        header = frame.msg.header
        stamp_ns = msg_in.stamp_to_ns(header.stamp)
        intr = self.intrinsics_for(stamp_ns, rgb.shape[:2])
        depth = self.depth_for(stamp_ns, rgb.shape[:2])
        return CameraJob(self, header, rgb, FrameInput(
            rgb, state, 'rgb', intr, depth, timestamp=stamp_ns * 1e-9))

    def decode(self, frame: PendingFrame) -> np.ndarray | None:
        """Decode a frame that passed the receipt checks (on_image); they are not repeated."""
        try:
            if frame.compressed:
                return msg_in.decode_compressed(frame.msg, frame.checked)
            return msg_in.decode_image(frame.msg, frame.checked)
        except msg_in.InputError as exc:
            self.reject(exc)
            return None

    def check_depth_used(self, result: FrameResult) -> None:
        """
        Report a depth image with no valid reading on a hand (cause depth_invalid).

        Such an image silently leaves PnP's scale; say so while the PnP 3D is still published.
        The core found it (HandResult.depth_missing) while it read the depth.
        """
        missing = [h.id for h in result.hands if h.depth_missing]
        if missing:
            self.reject(msg_in.InputError(
                'depth_invalid', f'no valid depth (all 0/NaN) on hand(s) {missing}; their '
                '3D uses PnP with the model hand size instead'))

    def publish(self, job: CameraJob, result: FrameResult) -> None:
        self.check_depth_used(result)
        header, rgb = job.header, job.rgb
        cfg = self.node.config
        self.pub_hands.publish(msg_out.frame_result_to_msg(result, header))
        if cfg.publish_tf:
            prefix = camera_tf_prefix(cfg.tf_prefix, self.tf_camera, bool(self.tf_camera))
            self.node.tf.send(hand_transforms(
                result, header, prefix, cfg.publish_fingertip_tf))
        if cfg.publish_markers:
            arr = self.markers.update(result, header)
            if arr.markers:
                self.pub_markers.publish(arr)
        if cfg.publish_annotated_image and self.pub_image.get_subscription_count() > 0:
            self.pub_image.publish(msg_out.rgb_to_image(draw_hands(rgb, result), header))
        if cfg.publish_gestures:
            self.publish_gesture_changes(header, result)
        latency_ms = (self.node.get_clock().now().nanoseconds
                      - msg_in.stamp_to_ns(header.stamp)) * 1e-6
        self.stats.on_processed(latency_ms, len(result.hands))

    def publish_gesture_changes(self, header: Any, result: FrameResult) -> None:
        """One HandGesture per debounced change the tracker confirmed in this frame."""
        for msg in msg_out.gesture_change_msgs(result, header):
            self.pub_gestures.publish(msg)


class HandPoseNode(Node):
    """The hand tracking node; see the module docstring and the README for topics."""

    def __init__(self, node_name: str = 'hand_pose_node', **kwargs: Any):
        super().__init__(node_name, **kwargs)
        self.init_state(parameters.declare_all(self))
        cams = self.camera_names()
        self._make_tracker(cams)
        self.add_on_set_parameters_callback(self.on_set_parameters)
        self.open_io(cams)

    # Seams shared with the lifecycle node (lifecycle_node.py): construction here is
    # configure + activate there, so both run one code path.
    def init_state(self, values: dict[str, Any]) -> None:
        """Adopt checked parameter values; raises ValueError with the reason when invalid."""
        self.values: dict[str, Any] = values
        self.config = parameters.node_options(self.values)
        self.options_lock = threading.Lock()
        self._turn = 0
        self._worker_errors = 0
        self._callback_errors = 0
        self._worker_log = LogThrottle()

    def camera_names(self) -> list[str]:
        cams = [str(c).strip('/') for c in self.config.cameras] or ['']
        if len(set(cams)) != len(cams):
            raise ValueError(f'cameras lists a namespace twice: {cams}')
        return cams

    def open_io(self, cams: list[str]) -> None:
        """Subscribe, advertise and start the worker; the tracker must exist already."""
        self.slots: LatestFrameSlots[PendingFrame] = LatestFrameSlots([c or '/' for c in cams])
        self.tf = TfBroadcaster(self)
        self.cameras = {c or '/': CameraIO(self, c, len(cams) > 1) for c in cams}
        self.fusion = (NodeFusion(self, self.cameras, OUTPUT_QOS) if self.config.fusion_frame
                       else None)  # fused/hands in fusion_frame (docs/multi-camera.md)
        self.pub_diag = self.create_publisher(DiagnosticArray, '/diagnostics', OUTPUT_QOS)
        self.create_timer(self.config.diagnostics_period_s, self.publish_diagnostics)
        self.worker: FrameWorker[PendingFrame] = FrameWorker(self.slots, self.fusion.around(
            self.process_batch) if self.fusion else self.process_batch, self.on_worker_error)
        self.worker.start()
        # What actually runs, after remapping and 'auto': what an operator needs to check.
        topics = ', '.join(self.resolve_topic_name(io.image_topic)
                           for io in self.cameras.values())
        self.get_logger().info(
            f'tracking hands on {topics} (model {self.tracker.options.base.model}, '
            f'{self.resolved_runtime})')

    @property
    def resolved_runtime(self) -> str:
        """'runtime <name>, device <device>' as resolved from the parameters ('auto')."""
        rt = self.tracker.runtime
        return f'runtime {rt.name}, device {getattr(rt, "device", "cpu")}'

    # ------------------------------------------------------------ tracker
    def _make_tracker(self, cams: list[str]) -> None:
        """One tracker (one runtime, models loaded once) and one tracking state per camera."""
        from hand_pose_ros.core.meaning.gestures import load_gesture_modules
        from hand_pose_ros.core.tracker import HandTracker
        load_gesture_modules(str(m) for m in self.config.gesture_modules)
        try:
            self.tracker = HandTracker(
                tracker_options(self.values, running_mode=parameters.NODE_MODE))
        except RuntimeError as exc:  # e.g. runtime torch without torch: one line, no traceback
            raise ValueError(parameters.runtime_hint(str(exc))) from None
        self.states = {c or '/': self.tracker.new_state() for c in cams}

    def process_batch(self, batch: dict[str, PendingFrame]) -> None:
        """
        Decode, match CameraInfo/depth by stamp, track and publish each camera's frame.

        With a runtime that batches efficiently all cameras' frames go through one
        process_batch call; otherwise each camera is processed and published in turn, so
        the first camera's latency does not include the others' inference. Every camera's
        step is isolated: an exception counts and logs on that camera only.
        """
        # Rotate which camera goes first, so no camera always waits for the others.
        names = list(self.cameras)
        self._turn = (self._turn + 1) % len(names)
        order = names[self._turn:] + names[:self._turn]
        jobs = []
        for cam in [c for c in order if c in batch]:
            io = self.cameras[cam]
            try:
                job = io.prepare(batch[cam], self.states[cam])
            except Exception as exc:  # noqa: BLE001 - one camera must not stop the others
                io.internal_error(exc)
                continue
            if job is not None:
                jobs.append(job)
        if len(jobs) > 1 and getattr(self.tracker.runtime, 'batches_efficiently', False):
            try:
                with self.options_lock:
                    results = self.tracker.process_batch([j.frame for j in jobs])
            except Exception:  # noqa: BLE001 - find the camera at fault: one by one below
                results = None
            if results is not None:
                for job, result in zip(jobs, results):
                    self._publish(job, result)
                return
        for job in jobs:
            try:
                with self.options_lock:
                    result = self.tracker.process_batch([job.frame])[0]
            except Exception as exc:  # noqa: BLE001
                job.io.internal_error(exc)
                continue
            self._publish(job, result)

    @staticmethod
    def _publish(job: CameraJob, result: FrameResult) -> None:
        # A frame finished while the node shuts down (Ctrl-C) is not published: the context
        # may already be invalid, and publishing then raises RCLError.
        if not job.io.node.context.ok():
            return
        try:
            job.io.publish(job, result)
            if job.io.node.fusion is not None:
                job.io.node.fusion.add(job.io, job.header, job.frame.camera, result)
        except Exception as exc:  # noqa: BLE001
            if job.io.node.context.ok():
                job.io.internal_error(exc)

    def on_worker_error(self, exc: BaseException) -> None:
        """Log, throttled, an exception outside any camera's step (none expected)."""
        self._worker_errors += 1
        if self._worker_log.note('worker') is not None:
            detail = ''.join(traceback.format_exception(exc)).rstrip()
            self.get_logger().error(
                f'frame batch failed ({self._worker_errors} times so far): {detail}')

    # ------------------------------------------------------------ parameters, diagnostics
    def on_set_parameters(self, params: list[Any]) -> SetParametersResult:
        """Validate every change; apply all or none (Humble has no post-set callback)."""
        reason = parameters.first_rejection(params)
        if reason:
            return SetParametersResult(successful=False, reason=reason)
        changed = {p.name: p.value for p in params if p.name in parameters.SPECS}
        if changed:
            trial = dict(self.values, **changed)
            to_tracker = {k: v for k, v in changed.items() if k in SETTINGS}
            try:
                config = parameters.node_options(trial)
                with self.options_lock:
                    if to_tracker:
                        self.tracker.update_options(**to_tracker)
            except ValueError as exc:
                return SetParametersResult(successful=False, reason=str(exc))
            self.values, self.config = trial, config
            self.get_logger().info(
                'parameters changed: ' + ', '.join(f'{k}={v!r}' for k, v in changed.items()))
        return SetParametersResult(successful=True)

    def on_callback_error(self, exc: BaseException) -> None:
        """Count an exception that escaped a callback for diagnostics (spin.py logs it)."""
        self._callback_errors += 1

    def publish_diagnostics(self) -> None:
        for io in self.cameras.values():
            io.check_input()
        self.pub_diag.publish(build_diagnostic_array(
            {io.name: io.stats for io in self.cameras.values()}, self.get_fully_qualified_name(),
            self.get_clock().now().to_msg(), hardware_id=self.resolved_runtime,
            node_values={'callback_errors': str(self._callback_errors),
                         **(self.fusion.diagnostic_values() if self.fusion else {})}))

    def destroy_node(self) -> None:
        """
        Stop the worker (bounded wait: a frame in flight finishes), then free the runtime.

        A worker still inside inference after WORKER_JOIN_S keeps its runtime: freeing it
        under the running call could crash the process, which is about to exit anyway.
        """
        self.worker.stop(WORKER_JOIN_S)
        if not self.worker.alive:
            self.tracker.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    spin_node(HandPoseNode, args)


if __name__ == '__main__':
    main()
