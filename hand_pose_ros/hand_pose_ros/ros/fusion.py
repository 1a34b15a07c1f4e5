"""
Multi-camera fusion in the node: the cameras' hands, one hand per person in fusion_frame.

Each camera's frame, once tracked and published on its own topics, becomes one view of a
synchronized set: its hands (core/fusion ViewHand) and its calibration at that image's
stamp, the pose from TF (fusion_frame -> the image's frame_id) and the intrinsics from the
CameraInfo the camera already matched to the image. Views are grouped by stamp within
fusion_sync_tolerance_s, as stereo_image_proc's approximate sync does (`StampGroups`); a set
is fused when every camera is in it, when each missing camera has moved past it, or once the
worker has been idle (no frame in hand or waiting) for fusion_max_wait_s since the set's last
view, so a camera that stops never stops the others, while a loaded worker that processes
the cameras one after the other is not mistaken for a missing camera. Sets are fused in
stamp order: the fused tracks' smoothing and loss memory need time to run forward.

A camera without a transform or without CameraInfo at a stamp is counted in its
diagnostics (causes fusion_no_tf, fusion_no_camera_info) and left out of that set; it is
never fused with a guessed or stale pose.

The steps that do not depend on a running node (`camera_view`, `transform_at`,
`StampGroups`, `SetFuser`, `fused_transforms`) are functions and classes of their own:
`process-bag --fusion-frame` (bags/fusion.py) runs the same ones on a recording.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
import threading
import time
import traceback
from typing import Any

from hand_pose_ros.core.anatomy import FINGER_MCPS, palm_frame
from hand_pose_ros.core.fusion.calibration import CameraCalibration, Rig
from hand_pose_ros.core.fusion.fuser import FusionOptions, MultiViewFuser
from hand_pose_ros.core.fusion.results import FusedHand, ViewHand
from hand_pose_ros.core.results import (
    CameraFrame3D,
    CameraIntrinsics,
    FrameResult,
    HandResult,
    Method3D,
    Roi,
    ScaleSource,
)
from hand_pose_ros.core.validity import hand_finite
from hand_pose_ros.ros import msg_in, msg_out
from hand_pose_ros.ros.diagnostics import LogThrottle
from hand_pose_ros.ros.markers import MarkerTracker
from hand_pose_ros.ros.tf import hand_transforms
import numpy as np

MAX_PENDING_SETS = 30  # a camera far ahead of the others cannot grow the buffer without end
TF_WAIT_S = 0.1  # how long a known camera frame may lag its image (a moving camera's TF)
FLUSH_PERIOD_S = 0.05  # how often sets that only time can complete are checked


@dataclass
class CameraView:
    """One camera's part in a set: its hands and its calibration at the image stamp."""

    camera: str
    stamp_ns: int
    hands: list[ViewHand]
    calibration: CameraCalibration | None  # None: no TF or CameraInfo, left out


@dataclass
class PendingSet:
    """Views whose stamps lie within the tolerance of the set's first one."""

    stamp_ns: int  # the first view's stamp: the tolerance is measured from it
    touched_s: float  # monotonic time of the set's latest view
    views: dict[str, CameraView] = field(default_factory=dict)

    @property
    def capture_ns(self) -> int:
        """Return the capture time: the earliest image stamp (the fused HandArray's stamp)."""
        return min(v.stamp_ns for v in self.views.values())


class StampGroups:
    """Approximate sync of the cameras' views by stamp; sets come out in stamp order."""

    def __init__(self, cameras: list[str]):
        self.cameras = list(cameras)
        self.pending: list[PendingSet] = []
        self.latest_ns: dict[str, int] = {}
        self.done_ns: int | None = None  # stamp of the last set handed out
        self.late = 0  # views that came after their set was fused

    def add(self, view: CameraView, tolerance_ns: int, now_s: float) -> None:
        """Put the view in the nearest open set within tolerance that lacks its camera."""
        seen = self.latest_ns.get(view.camera, view.stamp_ns)
        self.latest_ns[view.camera] = max(view.stamp_ns, seen)
        if self.done_ns is not None and view.stamp_ns <= self.done_ns:
            self.late += 1
            return
        fits = [s for s in self.pending if view.camera not in s.views
                and abs(view.stamp_ns - s.stamp_ns) <= tolerance_ns]
        if fits:
            nearest = min(fits, key=lambda s: abs(view.stamp_ns - s.stamp_ns))
            nearest.views[view.camera] = view
            nearest.touched_s = now_s
            return
        new = PendingSet(view.stamp_ns, now_s, {view.camera: view})
        self.pending.append(new)
        self.pending.sort(key=lambda s: s.stamp_ns)

    def _complete(self, pending: PendingSet, tolerance_ns: int, max_wait_s: float | None,
                  now_s: float) -> bool:
        if max_wait_s is not None and now_s - pending.touched_s >= max_wait_s:
            return True
        return all(cam in pending.views
                   or self.latest_ns.get(cam, -1) > pending.stamp_ns + tolerance_ns
                   for cam in self.cameras)

    def ready(self, tolerance_ns: int, max_wait_s: float | None,
              now_s: float) -> list[PendingSet]:
        """
        Remove and return the sets ready to fuse, oldest first (none skips an older one).

        max_wait_s None: the views still to come are on their way (the worker is busy), so
        no set is given up on for time.
        """
        out = []
        while self.pending and (
                len(self.pending) > MAX_PENDING_SETS
                or self._complete(self.pending[0], tolerance_ns, max_wait_s, now_s)):
            out.append(self.pending.pop(0))
        if out:
            self.done_ns = max(s.stamp_ns for s in out)
        return out


def calibration_from_tf(name: str, transform: Any, intrinsics: CameraIntrinsics,
                        width: int, height: int) -> CameraCalibration:
    """
    Build a camera's calibration from TF's fusion_frame -> camera transform.

    lookup_transform(camera_frame, fusion_frame) maps fusion_frame points into the camera's
    optical frame, which is the world -> camera pose core/fusion expects.
    """
    q = transform.transform.rotation
    x, y, z, w = q.x, q.y, q.z, q.w
    rotation = np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
    tr = transform.transform.translation
    return CameraCalibration(name=name, intrinsics=intrinsics, rotation=rotation,
                             translation=np.array([tr.x, tr.y, tr.z]), width=width,
                             height=height)


def fused_hand_result(hand: FusedHand, rig: Rig) -> HandResult:
    """
    Express a fused hand as a HandResult whose 'camera' frame is fusion_frame.

    Then the per-camera machinery (Hand message, wrist TF, markers, retargeting views)
    serves fused hands unchanged; `keypoints` are the hand reprojected into its first
    camera, so the image fields keep their meaning (Hand.msg).
    """
    points = np.asarray(hand.keypoints_world, dtype=np.float64)
    frame = palm_frame(points, hand.handedness or None)
    first = rig[(hand.cameras or tuple(hand.views))[0]]
    cam_points = first.to_camera(points)
    pixels = first.project(points)
    depth = (cam_points[:, 2] - cam_points[0, 2]) * first.focal / max(cam_points[0, 2], 1e-6)
    inside = ((pixels[:, 0] >= 0) & (pixels[:, 0] < first.width)
              & (pixels[:, 1] >= 0) & (pixels[:, 1] < first.height))
    errors = [hand.reprojection_error.get(c, 0.0) for c in hand.cameras] or [0.0]
    triangulated = not hand.single_view
    method = Method3D.TRIANGULATED if triangulated else Method3D.SINGLE_VIEW
    if triangulated or hand.scale_triangulated:
        source = ScaleSource.TRIANGULATION
    else:
        source = ScaleSource.USER if hand.hand_scale != 1.0 else ScaleSource.MODEL
    return HandResult(
        id=hand.id, handedness=hand.handedness, handedness_score=hand.handedness_score,
        raw_handedness='', score=hand.score,
        keypoints=np.column_stack([pixels, depth]),
        world=points - points[list(FINGER_MCPS)].mean(axis=0), roi=Roi(0.0, 0.0, 0.0, 0.0, 0.0),
        camera=CameraFrame3D(
            keypoints=points, wrist_position=points[0].copy(), wrist_rotation=frame.rotation,
            valid=True, method=method, reprojection_error=float(np.mean(errors)),
            scale_factor=hand.hand_scale),
        hand_scale=hand.hand_scale, scale_source=source, keypoint_in_image=inside)


def fused_hand_msg(hand: FusedHand, result: HandResult) -> Any:
    """Convert a fused hand to a Hand message, with the cameras it rests on (Hand.msg)."""
    msg = msg_out.hand_to_msg(result)
    msg.cameras = list(hand.cameras)
    msg.camera_reprojection_error = [
        msg_out.finite_or(hand.reprojection_error.get(c, 0.0)) for c in hand.cameras]
    msg.keypoint_confidence = [msg_out.finite_or(v) for v in hand.keypoint_confidence]
    return msg


def no_camera_info_error() -> msg_in.InputError:
    """Return the bad input of a camera left out of fusion for want of CameraInfo."""
    return msg_in.InputError('fusion_no_camera_info', 'no usable CameraInfo for the image; '
                             'the camera is left out of fusion')


def camera_view(name: str, stamp_ns: int, result: FrameResult,
                intrinsics: CameraIntrinsics | None, transform: Any | None) -> CameraView:
    """
    Return a camera's tracked frame as a view of its set (node and process-bag).

    `transform`: TF's fusion_frame -> the image's frame at its stamp; without it or without
    intrinsics the view has no calibration and no hands (the camera is left out).
    """
    calibration = None
    if intrinsics is not None and transform is not None:
        calibration = calibration_from_tf(name, transform, intrinsics, result.width,
                                          result.height)
    hands = [ViewHand.from_hand(name, h) for h in result.hands if hand_finite(h)]
    return CameraView(name, stamp_ns, hands if calibration is not None else [], calibration)


def transform_at(buffer: Any, frame: str, frame_id: str, stamp: Any,
                 wait_s: float = 0.0) -> Any:
    """
    Return TF's `frame` -> `frame_id` at the stamp from a tf2_ros Buffer (node, process-bag).

    Raises the fusion_no_tf InputError when it is not known; `wait_s` > 0: a frame that is
    known but not yet at this stamp (a moving camera's TF may come a little after its
    image) is waited for that long.
    """
    from rclpy.duration import Duration
    from rclpy.time import Time
    import tf2_ros
    when = Time.from_msg(stamp)
    try:
        return buffer.lookup_transform(frame_id, frame, when)
    except tf2_ros.ExtrapolationException as exc:
        error: Exception = exc
        if wait_s > 0:
            try:
                return buffer.lookup_transform(frame_id, frame, when, Duration(seconds=wait_s))
            except tf2_ros.TransformException as again:
                error = again
    except tf2_ros.TransformException as exc:
        error = exc
    raise msg_in.InputError(
        'fusion_no_tf', f'no transform {frame} -> {frame_id or "(empty frame_id)"} at the '
        f'image stamp ({str(error).strip()}); the camera is left out of fusion')


def fusion_options(options: Any) -> FusionOptions:
    """Return the fuser's options from the tracker's (TrackerOptions)."""
    return FusionOptions(
        max_hands=options.max_num_hands, hand_scale=options.hand_scale,
        smoothing=options.smoothing, skeleton_lock=options.skeleton_lock,
        skeleton_lock_frames=options.skeleton_lock_frames)


@dataclass
class FusedSet:
    """One fused set's outputs: the fused HandArray, its header and hands as a FrameResult."""

    capture_ns: int
    header: Any
    hands: Any  # hand_pose_msgs/HandArray in the fusion frame
    result: FrameResult  # the fused hands as HandResults (wrist TF, markers)
    fused: Any  # core/fusion's FusionResult


class SetFuser:
    """Fuses sets of views in stamp order into HandArrays in `frame` (node and process-bag)."""

    def __init__(self, options: FusionOptions, frame: str):
        self.options = options
        self.frame = frame
        self.fuser: MultiViewFuser | None = None

    def fuse(self, pending: PendingSet) -> FusedSet | None:
        """Fuse one set's calibrated views; None when no camera of it has a calibration."""
        views = {c: v for c, v in pending.views.items() if v.calibration is not None}
        if not views:
            return None
        rig = {c: v.calibration for c, v in views.items()}
        if self.fuser is None:
            self.fuser = MultiViewFuser(rig, self.options)
        self.fuser.rig = rig
        capture_ns = pending.capture_ns
        fused = self.fuser.process({c: v.hands for c, v in views.items()}, capture_ns * 1e-9)
        header = msg_out.header_msg(capture_ns, self.frame)
        pairs = [(h, fused_hand_result(h, rig)) for h in fused.hands]
        pairs = [(h, r) for h, r in pairs if hand_finite(r)]
        from hand_pose_msgs.msg import HandArray
        hands = HandArray(header=header, width=0, height=0,
                          hands=[fused_hand_msg(h, r) for h, r in pairs])
        return FusedSet(capture_ns, header, hands, FrameResult(0, 0, [r for _, r in pairs]),
                        fused)


def fused_transforms(fused: FusedSet, tf_prefix: str, fingertips: bool) -> list[Any]:
    """Return the fused wrist (and fingertip) frames: <tf_prefix>fused_<side>_wrist."""
    return hand_transforms(fused.result, fused.header, f'{tf_prefix}fused_', fingertips)


class NodeFusion:
    """The node's fusion: TF lookups, stamp groups, the fuser and the fused outputs."""

    def __init__(self, node: Any, cameras: dict[str, Any], qos: Any):
        from hand_pose_msgs.msg import HandArray
        from tf2_ros import Buffer, TransformListener
        from visualization_msgs.msg import MarkerArray
        self.node = node
        self.cameras = cameras  # name -> CameraIO
        self.buffer = Buffer(node=node)
        self.listener = TransformListener(self.buffer, node, spin_thread=False)
        self.groups = StampGroups(list(cameras))
        self.lock = threading.Lock()
        self.sets: SetFuser | None = None  # made at the first set (the tracker's options)
        self.markers = MarkerTracker()
        self.fused_sets = 0
        self.last_fused_ns: int | None = None
        self.busy = False  # the worker holds frames whose views are still to come
        self.errors = 0
        self.error_log = LogThrottle()
        self.pub_hands = node.create_publisher(HandArray, 'fused/hands', qos)
        self.pub_markers = node.create_publisher(MarkerArray, 'fused/hand_markers', qos)
        node.create_timer(FLUSH_PERIOD_S, self.flush)

    @property
    def frame(self) -> str:
        return self.node.config.fusion_frame

    def _transform(self, io: Any, frame_id: str, stamp: Any) -> Any | None:
        """fusion_frame -> frame_id at the stamp, or None (counted and logged on the camera)."""
        try:
            return transform_at(self.buffer, self.frame, frame_id, stamp, TF_WAIT_S)
        except msg_in.InputError as exc:
            io.reject(exc)
            return None

    def add(self, io: Any, header: Any, intrinsics: CameraIntrinsics | None,
            result: FrameResult) -> None:
        """Make a camera's tracked frame a view of its set; fuse the sets that are ready."""
        transform = None
        if intrinsics is None:
            io.reject(no_camera_info_error())
        else:
            transform = self._transform(io, header.frame_id, header.stamp)
        view = camera_view(io.name, msg_in.stamp_to_ns(header.stamp), result, intrinsics,
                           transform)
        cfg = self.node.config
        with self.lock:
            self.groups.add(view, int(cfg.fusion_sync_tolerance_s * 1e9), time.monotonic())
        self.flush()

    def around(self, process_batch: Callable[[Any], None]) -> Callable[[Any], None]:
        """Wrap the worker's batch handler: no set is given up on for time while it works."""
        def run(batch: Any) -> None:
            self.busy = True
            try:
                process_batch(batch)
            finally:
                self.busy = False
                self.flush()
        return run

    def flush(self) -> None:
        """Fuse and publish every set that is ready (worker thread or the flush timer)."""
        cfg = self.node.config
        idle = not self.busy and not self.node.slots.has_pending()
        with self.lock:
            ready = self.groups.ready(int(cfg.fusion_sync_tolerance_s * 1e9),
                                      cfg.fusion_max_wait_s if idle else None,
                                      time.monotonic())
            for pending in ready:
                if not self.node.context.ok():
                    return
                try:
                    self._fuse(pending)
                except Exception as exc:  # noqa: BLE001 - one bad set must not stop fusion
                    self._error(exc, pending)

    def _error(self, exc: Exception, pending: PendingSet) -> None:
        """Count and log (throttled, first with its traceback) a set that failed to fuse."""
        self.errors += 1
        decision = self.error_log.note('fusion')
        if decision is None or not self.node.context.ok():
            return
        text = (f'fusing the set stamped {pending.capture_ns} ({", ".join(pending.views)}) '
                f'failed ({self.errors} sets so far): {type(exc).__name__}: {exc}')
        if decision.first:
            text += '\n' + ''.join(traceback.format_exception(exc)).rstrip()
        self.node.get_logger().error(text)

    def _fuse(self, pending: PendingSet) -> None:
        if self.sets is None:
            self.sets = SetFuser(fusion_options(self.node.tracker.options), self.frame)
        fused = self.sets.fuse(pending)
        if fused is None:
            return  # no camera with a pose: nothing can be said about this set
        self.pub_hands.publish(fused.hands)
        cfg = self.node.config
        if cfg.publish_tf:
            self.node.tf.send(fused_transforms(fused, cfg.tf_prefix, cfg.publish_fingertip_tf))
        if cfg.publish_markers:
            arr = self.markers.update(fused.result, fused.header)
            if arr.markers:
                self.pub_markers.publish(arr)
        self.fused_sets += 1
        self.last_fused_ns = fused.capture_ns

    def diagnostic_values(self) -> dict[str, str]:
        """Return the fusion values every camera's status shows (node-wide, as callback_errors)."""
        from hand_pose_ros.ros.diagnostics import stamp_text
        last = self.last_fused_ns
        return {'fusion_frame': self.frame, 'fused_sets': str(self.fused_sets),
                'fusion_errors': str(self.errors),
                'fused_last_stamp': 'n/a' if last is None else stamp_text(last),
                'fusion_late_views': str(self.groups.late)}
