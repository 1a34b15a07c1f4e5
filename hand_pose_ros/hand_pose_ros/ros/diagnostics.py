"""
Per-camera health figures for /diagnostics.

What an operator needs to see when a hand is not tracked: is the camera publishing (input
rate), does the node keep up (processed rate, dropped frames), how late are the results
(latency from the image stamp to publishing, p50/p95) and which inputs were rejected, why.
Counts in the key/values are totals since start-up; the level and message only look at the
last RATE_WINDOW_S, so a bad frame at start-up does not leave the camera in WARN for good.

Frames lost in transport never reach the node, so nothing counts them where they are lost.
They are estimated from CameraInfo, which a camera publishes with the same stamp as each
image and which is small enough to arrive where a large best-effort image does not: a
CameraInfo stamp with no image of that stamp within TRANSPORT_SETTLE_S is one lost frame
(`frames_lost_transport`, beside `frames_dropped`, the frames the node itself replaced).
CameraInfo stamped before the first image that arrived is not counted: at start-up the
CameraInfo subscription is often matched before the image one (DDS matches each pair on its
own), and those frames were not lost by a transport that would have delivered them.
Until one CameraInfo has matched an image by stamp (a camera that stamps them differently,
or publishes no CameraInfo) the estimate is `n/a`. When more than TRANSPORT_WARN_RATIO of
the frames of the last RATE_WINDOW_S were lost that way, the node also logs a warning
(throttled) naming the usual cause and its fix: see transport_loss_message.

Each side input (CameraInfo, depth) reports how many arrived and the stamp of the last one,
so an operator, or a test, can see that the one an image needs has arrived.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass
import threading
import time
from typing import Any

import numpy as np

RATE_WINDOW_S = 5.0
LATENCY_WINDOW = 300
TRANSPORT_SETTLE_S = 1.0
RECENT_IMAGE_STAMPS = 1000
# Warn about transport loss above this share of the last RATE_WINDOW_S's frames, and only
# from this many lost frames on (one lost frame of five at 1 Hz is no pattern).
TRANSPORT_WARN_RATIO = 0.1
TRANSPORT_WARN_MIN_LOST = 2
# A camera without an image this long (since it was opened, or since its last image) is
# said out loud, then again every NO_INPUT_LOG_PERIOD_S while it stays silent: diagnostics
# alone ('no input images') leave an operator with a wrong topic looking at a quiet node.
NO_INPUT_WARN_S = 10.0
NO_INPUT_LOG_PERIOD_S = 30.0


class TransportLoss:
    """
    CameraInfo stamps that no image matched: the estimate of frames lost in transport.

    Not thread-safe by itself: CameraStats calls it under its lock.
    """

    def __init__(self, settle_s: float = TRANSPORT_SETTLE_S):
        self.settle_s = settle_s
        self._infos: collections.OrderedDict[int, float] = collections.OrderedDict()
        self._images: collections.OrderedDict[int, None] = collections.OrderedDict()
        self.matched = 0
        self.lost = 0
        self._first_image: int | None = None  # stamp of the first image that arrived
        self._recent: collections.deque[tuple[float, bool]] = collections.deque()  # (t, lost)

    def _note(self, now: float, lost: bool) -> None:
        self._recent.append((now, lost))
        while self._recent and now - self._recent[0][0] > RATE_WINDOW_S:
            self._recent.popleft()

    def on_image(self, stamp_ns: int, now: float) -> None:
        if self._first_image is None:
            self._first_image = stamp_ns
        if self._infos.pop(stamp_ns, None) is not None:
            self.matched += 1
            self._note(now, False)
            return
        self._images[stamp_ns] = None
        while len(self._images) > RECENT_IMAGE_STAMPS:
            self._images.popitem(last=False)

    def on_info(self, stamp_ns: int, now: float) -> None:
        if stamp_ns in self._images:
            del self._images[stamp_ns]
            self.matched += 1
            self._note(now, False)
        elif stamp_ns not in self._infos:
            self._infos[stamp_ns] = now
        self.settle(now)

    def settle(self, now: float) -> None:
        """Count the CameraInfo stamps older than settle_s that no image matched."""
        while self._infos:
            stamp, arrived = next(iter(self._infos.items()))
            if now - arrived < self.settle_s:
                break
            del self._infos[stamp]
            if self._first_image is not None and stamp > self._first_image:
                self.lost += 1
                self._note(now, True)

    def estimate(self) -> int | None:
        """Frames lost so far, or None while no CameraInfo has matched an image."""
        return self.lost if self.matched else None

    def recent(self, now: float) -> tuple[int, int]:
        """(lost, lost + matched) over the last RATE_WINDOW_S, as settled by `now`."""
        self.settle(now)
        while self._recent and now - self._recent[0][0] > RATE_WINDOW_S:
            self._recent.popleft()
        lost = sum(1 for _, was_lost in self._recent if was_lost)
        return lost, len(self._recent)


# A repeated error is logged again at most this often (per camera and cause).
LOG_PERIOD_S = 5.0


@dataclass(frozen=True)
class LogDecision:
    """
    What to log for one occurrence.

    Either the `first` of its cause, or `count` occurrences since the last logged one (this
    one included) over `elapsed_s` seconds.
    """

    first: bool
    count: int
    elapsed_s: float


class LogThrottle:
    """
    Time-based log throttling per key (an error cause).

    Logging only the first occurrence hides a fault that persists or comes back; logging
    every one floods the log at frame rate. So the first is logged at once, then at most one
    line per LOG_PERIOD_S, carrying how many occurred since the previous line.
    """

    def __init__(self, period_s: float = LOG_PERIOD_S):
        self.period_s = period_s
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._since: collections.Counter[str] = collections.Counter()

    def note(self, key: str, now: float | None = None) -> LogDecision | None:
        """Count one occurrence of `key`; a LogDecision when it is to be logged, else None."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._since[key] += 1
            last = self._last.get(key)
            if last is not None and now - last < self.period_s:
                return None
            count = self._since.pop(key)
            self._last[key] = now
            return LogDecision(last is None, count, 0.0 if last is None else now - last)


class CameraStats:
    """Counters for one camera; written by callbacks and the worker, read by the timer."""

    def __init__(self, name: str, dropped: Callable[[], int] = lambda: 0,
                 side_topics: tuple[str, ...] = ('camera_info',)):
        """
        Start the counters of camera `name`.

        `dropped`: frames replaced before processing, counted where that happens.
        `side_topics`: the side inputs (camera_info, depth) whose arrivals are reported.
        """
        self.name = name
        self._side: dict[str, tuple[int, int | None]] = dict.fromkeys(side_topics, (0, None))
        self._dropped = dropped
        self._lock = threading.Lock()
        self._inputs: collections.deque[float] = collections.deque()
        self._processed: collections.deque[float] = collections.deque()
        self._recent_errors: collections.deque[tuple[float, str]] = collections.deque()
        self._latency_ms: collections.deque[float] = collections.deque(maxlen=LATENCY_WINDOW)
        self.received_total = 0
        self.processed_total = 0
        self.errors: collections.Counter[str] = collections.Counter()
        self.last_hands = 0
        self._transport = TransportLoss()
        self._last_input = time.monotonic()  # opened: the silence counts from here

    @staticmethod
    def _trim(q: collections.deque, now: float, key: Callable[[Any], float] = float) -> None:
        while q and now - key(q[0]) > RATE_WINDOW_S:
            q.popleft()

    def on_input(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self.received_total += 1
            self._last_input = now
            self._inputs.append(now)
            self._trim(self._inputs, now)

    def on_image_stamp(self, stamp_ns: int, now: float | None = None) -> None:
        """Record that an image (valid or not) arrived with this stamp."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._transport.on_image(stamp_ns, now)

    def on_info_stamp(self, stamp_ns: int, now: float | None = None) -> None:
        """Record that a CameraInfo arrived with this stamp (see TransportLoss)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._transport.on_info(stamp_ns, now)

    def on_side_input(self, topic: str, stamp_ns: int) -> None:
        """
        Count a side input (camera_info, depth) that is ready for the images of its stamp.

        Called once the message is where the worker matches images to it, so a stamp seen in
        /diagnostics is one an image of that stamp will find.
        """
        with self._lock:
            count, _ = self._side.get(topic, (0, None))
            self._side[topic] = (count + 1, stamp_ns)

    def transport_loss_to_report(self, now: float | None = None) -> tuple[int, int] | None:
        """
        (lost, frames) of the last RATE_WINDOW_S when the loss is worth a warning, else None.

        Worth it: more than TRANSPORT_WARN_RATIO of the frames, and TRANSPORT_WARN_MIN_LOST
        or more, once CameraInfo and images have been seen to share stamps.
        """
        now = time.monotonic() if now is None else now
        with self._lock:
            if self._transport.estimate() is None:
                return None
            lost, frames = self._transport.recent(now)
        if lost >= TRANSPORT_WARN_MIN_LOST and lost > TRANSPORT_WARN_RATIO * frames:
            return lost, frames
        return None

    def silent_s(self, now: float | None = None) -> float:
        """Seconds since the last image arrived (valid or not), or since the camera opened."""
        now = time.monotonic() if now is None else now
        with self._lock:
            return now - self._last_input

    def side_received(self, topic: str) -> int:
        """How many messages of a side input (camera_info, depth) arrived."""
        with self._lock:
            return self._side.get(topic, (0, None))[0]

    def on_processed(self, latency_ms: float, hands: int, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self.processed_total += 1
            self.last_hands = hands
            self._processed.append(now)
            self._trim(self._processed, now)
            self._latency_ms.append(float(latency_ms))

    def on_error(self, cause: str, now: float | None = None) -> int:
        """Count one rejected input; returns how many of this cause so far (1 = first)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self.errors[cause] += 1
            self._recent_errors.append((now, cause))
            self._trim(self._recent_errors, now, key=lambda e: e[0])
            return self.errors[cause]

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._trim(self._inputs, now)
            self._trim(self._processed, now)
            self._trim(self._recent_errors, now, key=lambda e: e[0])
            self._transport.settle(now)
            recent = collections.Counter(cause for _, cause in self._recent_errors)
            lat = np.asarray(self._latency_ms, dtype=np.float64)
            return {
                'input_hz': _rate(self._inputs, now),
                'processed_hz': _rate(self._processed, now),
                'latency_p50_ms': float(np.percentile(lat, 50)) if lat.size else float('nan'),
                'latency_p95_ms': float(np.percentile(lat, 95)) if lat.size else float('nan'),
                'received': self.received_total,
                'processed': self.processed_total,
                'dropped': int(self._dropped()),
                'lost_transport': self._transport.estimate(),
                'side_inputs': dict(self._side),
                'hands': self.last_hands,
                'errors': dict(self.errors),
                'recent_errors': dict(recent),
            }


def _rate(q: collections.deque[float], now: float) -> float:
    """Events per second over the window (uses the span actually covered at start-up)."""
    if len(q) < 2:
        return 0.0
    span = max(now - q[0], q[-1] - q[0], 1e-6)
    return (len(q) - 1) / span if now - q[-1] < RATE_WINDOW_S else 0.0


def status_level(snap: dict[str, Any]) -> int:
    """
    Return the DiagnosticStatus level: 0 OK or 1 WARN.

    WARN: no input, errors in the last RATE_WINDOW_S, or dropping more than half.
    """
    if snap['input_hz'] == 0.0 or snap['recent_errors']:
        return 1
    if snap['received'] and snap['dropped'] > 0.5 * snap['received']:
        return 1
    return 0


def status_message(snap: dict[str, Any]) -> str:
    if snap['input_hz'] == 0.0:
        return 'no input images'
    if snap['recent_errors']:
        causes = sorted(snap['recent_errors'].items())
        return (f'rejected input in the last {RATE_WINDOW_S:g} s: '
                + ', '.join(f'{k} x{v}' for k, v in causes))
    return f'{snap["processed_hz"]:.1f} Hz processed, {snap["hands"]} hand(s)'


def build_diagnostic_array(
    stats: dict[str, CameraStats], node_name: str, stamp: Any, hardware_id: str = '',
    node_values: dict[str, str] | None = None,
) -> Any:
    """
    diagnostic_msgs/DiagnosticArray with one status per camera; errors as `errors/<cause>`.

    `node_values` (e.g. callback errors, which belong to no camera) are added to every
    camera's status, so a monitor watching one camera sees them.
    """
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
    arr = DiagnosticArray()
    arr.header.stamp = stamp
    for cam, st in stats.items():
        snap = st.snapshot()
        status = DiagnosticStatus()
        status.level = bytes([status_level(snap)])
        status.name = f'{node_name}: camera {cam}'
        status.message = status_message(snap)
        status.hardware_id = hardware_id
        values = [
            ('input_rate_hz', f'{snap["input_hz"]:.2f}'),
            ('processed_rate_hz', f'{snap["processed_hz"]:.2f}'),
            ('latency_p50_ms', f'{snap["latency_p50_ms"]:.1f}'),
            ('latency_p95_ms', f'{snap["latency_p95_ms"]:.1f}'),
            ('frames_received', str(snap['received'])),
            ('frames_processed', str(snap['processed'])),
            ('frames_dropped', str(snap['dropped'])),
            ('frames_lost_transport', 'n/a' if snap['lost_transport'] is None
             else str(snap['lost_transport'])),
            ('hands', str(snap['hands'])),
            ('errors_total', str(sum(snap['errors'].values()))),
        ]
        for topic, (count, last) in snap['side_inputs'].items():
            values += [(f'{topic}_received', str(count)),
                       (f'{topic}_last_stamp', 'n/a' if last is None else stamp_text(last))]
        values += [(f'errors/{k}', str(v)) for k, v in sorted(snap['errors'].items())]
        values += sorted((node_values or {}).items())
        status.values = [KeyValue(key=k, value=v) for k, v in values]
        arr.status.append(status)
    return arr


def stamp_text(stamp_ns: int) -> str:
    """Format a stamp as `sec.nanosec` (nine digits), as `ros2 topic echo` shows a header's."""
    sec, nsec = divmod(int(stamp_ns), 1_000_000_000)
    return f'{sec}.{nsec:09d}'


def no_input_message(camera: str, topic: str, silent_s: float, publishers: int,
                     infos: int, received: int) -> str:
    """
    Return the warning about a camera that sends no images: what was seen, the likely cause.

    The publisher count tells the two usual causes apart: nothing on the topic (a wrong
    name, a remapping, another ROS_DOMAIN_ID, a driver not running), or publishers whose
    images do not arrive (the subscription is best effort, so it matches any publisher's
    reliability: large images over a transport that cannot carry them).
    """
    from hand_pose_ros.ros import transport
    since = 'since the last one' if received else 'since the node started'
    head = f'camera {camera}: no image on {topic} for {silent_s:.0f} s ({since}); '
    if publishers == 0:
        return head + (
            'nothing publishes that topic. Check the camera driver, the topic name (parameters '
            'cameras and image_topic, remappings; `ros2 topic list`) and ROS_DOMAIN_ID.')
    seen = (f'{infos} CameraInfo message(s) arrived, so the camera is reachable'
            if infos else 'no CameraInfo arrived either')
    return head + (
        f'{publishers} publisher(s) on it, but no image arrived; {seen}. Likely cause: large '
        "images over Fast DDS's default transport (`ros2 topic info -v` shows the "
        f'publishers); fix: `{transport.export_command()}` before starting the camera driver.')


def transport_loss_message(camera: str, lost: int, frames: int) -> str:
    """
    Return the warning about frames lost in transport: what was seen, the cause, the fix.

    The cause is nearly always Fast DDS's default transport, whose shared-memory segment is
    smaller than one large image. The camera driver, a separate process started outside
    this package's launch files, is the one that most often lacks the transport profile;
    the fix is one export before starting it, given here with the file to use.
    """
    from hand_pose_ros.ros import transport
    if transport.user_profile():
        fix = "start the camera driver with this node's transport profile"
    else:
        fix = ('start the camera driver, and this node (which runs without one), with the '
               'transport profile for large images; the launch files set it for the nodes '
               'they start')
    return (
        f'camera {camera}: {lost} of {frames} frames in the last {RATE_WINDOW_S:g} s were lost '
        'in transport (their CameraInfo arrived, the image did not; frames_lost_transport in '
        "/diagnostics). Cause: large images over Fast DDS's default transport. "
        f'Fix: {fix}: `{transport.export_command()}`')


def diagnostic_values(status: Any) -> dict[str, str]:
    """Map a DiagnosticStatus to {key: value}, for tests and tools reading /diagnostics."""
    return {kv.key: kv.value for kv in status.values}
