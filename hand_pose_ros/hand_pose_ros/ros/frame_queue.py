"""
Newest-frame slots per camera and the one consumer thread that drains them.

As in image_pipeline, a perception node must never build a backlog: when inference is slower
than the camera, the frames that were not processed in time are worthless. Each camera keeps
only its newest unprocessed frame (an older pending one is replaced and counted as dropped);
one worker thread, off the ROS executor, takes every camera's pending frame at once so a
runtime that batches well can process them together.
"""

from __future__ import annotations

from collections.abc import Callable
import logging
import threading
from typing import Generic, TypeVar

T = TypeVar('T')
_log = logging.getLogger(__name__)


class LatestFrameSlots(Generic[T]):
    """One slot per camera holding its newest unprocessed item; thread-safe."""

    def __init__(self, cameras: list[str] | tuple[str, ...]):
        self._cond = threading.Condition()
        self._pending: dict[str, T] = {}
        self._dropped: dict[str, int] = dict.fromkeys(cameras, 0)  # the node's drop count
        self._closed = False

    def put(self, camera: str, item: T) -> bool:
        """Store `item` as the camera's newest frame; True when it replaced an unprocessed one."""
        with self._cond:
            replaced = camera in self._pending
            self._pending[camera] = item
            if replaced:
                self._dropped[camera] = self._dropped.get(camera, 0) + 1
            self._cond.notify()
            return replaced

    def take_all(self, timeout: float | None = None) -> dict[str, T]:
        """Wait until some camera has a frame (or timeout / close); return and clear them all."""
        with self._cond:
            if not self._pending and not self._closed:
                self._cond.wait(timeout)
            items, self._pending = self._pending, {}
            return items

    def has_pending(self) -> bool:
        """Tell whether a frame waits for the worker (fusion waits for it, not the clock)."""
        with self._cond:
            return bool(self._pending)

    def dropped(self, camera: str) -> int:
        with self._cond:
            return self._dropped.get(camera, 0)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


class FrameWorker(Generic[T]):
    """
    The single consumer thread: hands each batch of pending frames to `handler`.

    An exception in the handler is reported through `on_error` and the loop goes on, so one
    bad frame can never stop the node.
    """

    def __init__(
        self,
        slots: LatestFrameSlots[T],
        handler: Callable[[dict[str, T]], None],
        on_error: Callable[[BaseException], None] | None = None,
        name: str = 'hand_pose_worker',
    ):
        self._slots = slots
        self._handler = handler
        self._on_error = on_error or (lambda e: _log.exception('frame handler failed: %s', e))
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._slots.closed:
            batch = self._slots.take_all(timeout=0.1)
            if not batch:
                continue
            try:
                self._handler(batch)
            except Exception as exc:  # noqa: BLE001 - the worker must survive any frame
                self._on_error(exc)

    def stop(self, timeout: float = 5.0) -> None:
        """Close the slots and wait up to `timeout` for the batch in progress to end."""
        self._slots.close()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()
