"""
process-bag's multi-camera fusion (`--fusion-frame`): the node's fused outputs, from a bag.

With fusion_frame set, hand_pose_node fuses its cameras' tracked frames into one hand per
person in that frame (ros/fusion.py); this writes the same outputs into the output bag:
`/fused/hands` (HandArray in the fusion frame, stamped with the set's capture time),
`/fused/hand_markers` and the fused wrist frames on /tf. It runs the node's own steps:
`camera_view` (a tracked frame as a view), `StampGroups` (sets by stamp within
fusion_sync_tolerance_s), `SetFuser` (one MultiViewFuser across the sets, in stamp order)
and `fused_transforms`.

What differs is time. A bag holds every camera's frames, so nothing is given up on for
wall-clock time; the bag's receive times stand in for the clock. A set is complete when
every camera is in it or has moved past it (the node's rule without fusion_max_wait_s),
and it is fused once the bag has been read TF_WAIT_S (0.1 s, the node's wait for a moving
camera's TF) past the receive time of its latest frame; the sets still waiting or open at
the end of the bag are fused then. The camera poses come from the bag's /tf_static and
/tf, read in bag order into a tf2 Buffer, and are looked up when the set is fused, so a
moving camera's /tf recorded up to 0.1 s after its image is found. The fused messages are
written at the receive time of the message read when the set was fused (the bag's last
for those fused at its end). Everything is a function of the bag's messages in order: the
output stays deterministic.

Cameras left out of a set are counted per cause in the summary, as the node's diagnostics
count them: fusion_no_camera_info (no usable CameraInfo for the image) and fusion_no_tf (no
transform fusion_frame -> the image's frame_id at its stamp).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import logging
from typing import Any

from hand_pose_ros.bags.cameras import Camera
from hand_pose_ros.bags.cdr import to_cdr
from hand_pose_ros.core.results import CameraIntrinsics, FrameResult
from hand_pose_ros.ros import msg_in, msg_out
from hand_pose_ros.ros.fusion import (
    camera_view,
    fused_transforms,
    fusion_options,
    no_camera_info_error,
    PendingSet,
    SetFuser,
    StampGroups,
    TF_WAIT_S,
    transform_at,
)
from hand_pose_ros.ros.markers import MarkerTracker
from hand_pose_ros.ros.parameters import NodeOptions

_LOG = logging.getLogger(__name__)
HAND_ARRAY = 'hand_pose_msgs/msg/HandArray'
MARKER_ARRAY = 'visualization_msgs/msg/MarkerArray'
TF_MESSAGE = 'tf2_msgs/msg/TFMessage'
TF_TOPIC = '/tf'
TF_STATIC_TOPIC = '/tf_static'
FUSED_HANDS = '/fused/hands'
FUSED_MARKERS = '/fused/hand_markers'
AUTHORITY = 'process-bag'

Emit = Callable[[str, str, int, bytes], None]
Reject = Callable[[Camera, msg_in.InputError], None]


def _nowhere(*args: Any) -> None:
    """Drop what is given (a BagFusion not bound to a writer yet)."""


def fusion_camera_name(cam: Camera) -> str:
    """Return the camera's name in fused hands (Hand.cameras): the node's, without '/'."""
    return cam.name.strip('/') or '/'


def output_keys(node: NodeOptions) -> list[tuple[str, str]]:
    """Return the (topic, type) fusion writes besides /tf, in registration order."""
    keys = [(FUSED_HANDS, HAND_ARRAY)]
    if node.publish_markers:
        keys.append((FUSED_MARKERS, MARKER_ARRAY))
    return keys


@dataclass
class _Frame:
    """What a view needs to get its calibration when its set is fused."""

    cam: Camera
    header: Any  # the image's header (frame_id, stamp), as an rclpy message
    intrinsics: CameraIntrinsics
    result: FrameResult


class BagFusion:
    """One bag's fusion: its TF buffer, its stamp groups and fuser, its fused outputs."""

    def __init__(self, node: NodeOptions, tracker_options: Any, cameras: list[Camera]):
        import tf2_ros
        self.node = node
        self.frame = node.fusion_frame
        self.tolerance_ns = int(node.fusion_sync_tolerance_s * 1e9)
        self.groups = StampGroups([fusion_camera_name(c) for c in cameras])
        self.sets = SetFuser(fusion_options(tracker_options), self.frame)
        self.buffer = tf2_ros.Buffer()
        self.markers = MarkerTracker()
        self.frames: dict[tuple[str, int], _Frame] = {}
        self.due: list[tuple[int, PendingSet]] = []  # complete sets, waiting for their TF
        self.wait_ns = int(TF_WAIT_S * 1e9)
        self.fused_sets = 0
        self.errors = 0  # sets whose fusion failed (the node's fusion_errors)
        self.last_log_ns = 0
        self.emit: Emit = _nowhere  # where the fused messages go (the runner's writer)
        self.reject: Reject = _nowhere  # how a camera left out is counted

    def bind(self, emit: Emit, reject: Reject) -> None:
        """Set where the fused messages are written and how a camera left out is counted."""
        self.emit, self.reject = emit, reject

    def add_tf(self, topic: str, raw: bytes) -> None:
        """Read one /tf or /tf_static message of the bag into the TF buffer."""
        from rclpy.serialization import deserialize_message
        from tf2_msgs.msg import TFMessage
        msg = deserialize_message(bytes(raw), TFMessage)
        for t in msg.transforms:
            if topic == TF_STATIC_TOPIC:
                self.buffer.set_transform_static(t, AUTHORITY)
            else:
                self.buffer.set_transform(t, AUTHORITY)

    def add(self, cam: Camera, header: Any, intrinsics: CameraIntrinsics | None,
            result: FrameResult, log_ns: int) -> int:
        """Make a tracked frame (read at `log_ns`) a view of its set; return late views."""
        name = fusion_camera_name(cam)
        stamp_ns = msg_in.stamp_to_ns(header.stamp)
        if intrinsics is None:
            self.reject(cam, no_camera_info_error())
        else:
            self.frames[(name, stamp_ns)] = _Frame(
                cam, msg_out.header_msg(stamp_ns, header.frame_id), intrinsics, result)
        late = self.groups.late
        # The set's time is the bag's receive time of its latest view (not the clock).
        self.groups.add(camera_view(name, stamp_ns, result, intrinsics, None),
                        self.tolerance_ns, log_ns * 1e-9)
        if self.groups.late != late:
            self.frames.pop((name, stamp_ns), None)
        self.last_log_ns = max(self.last_log_ns, log_ns)
        self.due += [(round(s.touched_s * 1e9) + self.wait_ns, s)
                     for s in self.groups.ready(self.tolerance_ns, None, 0.0)]
        return self.groups.late - late

    def advance(self, log_ns: int) -> None:
        """
        Fuse the complete sets the bag has been read TF_WAIT_S past, before message `log_ns`.

        The node waits TF_WAIT_S for a moving camera's TF that comes after its image; here
        the wait is in the bag's receive time, so the /tf recorded within it is read first.
        """
        self.last_log_ns = max(self.last_log_ns, log_ns)
        count = 0
        while count < len(self.due) and self.due[count][0] < log_ns:
            count += 1
        if count:
            ready = [s for _, s in self.due[:count]]
            del self.due[:count]
            self._fuse(ready, log_ns)

    def finish(self) -> None:
        """Fuse the sets still waiting or open at the end of the bag (no more will come)."""
        ready = [s for _, s in self.due]
        self.due.clear()
        self._fuse(ready + self.groups.ready(self.tolerance_ns, 0.0, float('inf')),
                   self.last_log_ns)

    def _fuse(self, ready: list[PendingSet], log_ns: int) -> None:
        emit = self.emit
        for pending in ready:
            self._calibrate(pending)
            try:
                fused = self.sets.fuse(pending)
            except Exception as exc:  # noqa: BLE001 - one bad set must not stop fusion
                self.errors += 1
                if self.errors == 1:
                    _LOG.warning('fusing the set stamped %d failed (%s: %s); logged once, '
                                 'counted in the summary (fusion_error)', pending.capture_ns,
                                 type(exc).__name__, exc)
                continue
            if fused is None:
                continue  # no camera with a pose: nothing can be said about this set
            emit(FUSED_HANDS, HAND_ARRAY, log_ns, to_cdr(fused.hands, HAND_ARRAY))
            if self.node.publish_tf:
                transforms = fused_transforms(fused, self.node.tf_prefix,
                                              self.node.publish_fingertip_tf)
                if transforms:
                    from tf2_msgs.msg import TFMessage
                    emit(TF_TOPIC, TF_MESSAGE, log_ns,
                         to_cdr(TFMessage(transforms=transforms), TF_MESSAGE))
            if self.node.publish_markers:
                arr = self.markers.update(fused.result, fused.header)
                if arr.markers:
                    emit(FUSED_MARKERS, MARKER_ARRAY, log_ns, to_cdr(arr, MARKER_ARRAY))
            self.fused_sets += 1

    def _calibrate(self, pending: PendingSet) -> None:
        """Give each view of the set its camera's pose at its stamp, or count the camera out."""
        for name, view in list(pending.views.items()):
            frame = self.frames.pop((name, view.stamp_ns), None)
            if frame is None:
                continue  # no CameraInfo: counted when the view came
            try:
                transform = transform_at(self.buffer, self.frame, frame.header.frame_id,
                                         frame.header.stamp)
            except msg_in.InputError as exc:
                self.reject(frame.cam, exc)
                continue
            pending.views[name] = camera_view(name, view.stamp_ns, frame.result,
                                              frame.intrinsics, transform)
