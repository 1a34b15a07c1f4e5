"""
Match a camera's CameraInfo or depth messages to an image by stamp.

CameraInfo and depth are separate topics, so the one stamped like an image may arrive just
after it; a synchronizer would wait for it. Waiting is only worth it while the match can
still come: once a message stamped at or after the image (minus the tolerance) has arrived,
the matching one would have come before it, so the caller falls back at once. A camera whose
stamps never match (a driver stamping CameraInfo with another clock, say) would otherwise
cost the full wait on every frame, on the one worker thread every camera shares: after
MAX_MISSES waits in a row that found nothing, only every PROBE_EVERY-th frame waits.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
import threading
import time
from typing import Any

MAX_MISSES = 3
PROBE_EVERY = 30


@dataclass
class Match:
    item: Any  # the matched (or nearest) entry's item; None when the buffer is empty
    exact: bool  # within the tolerance
    waited: bool  # the call blocked for a late message
    first_mismatch: bool  # first time this buffer could not match: log it once


class StampBuffer:
    """The last `maxlen` (stamp_ns, item) pairs of one topic; thread-safe."""

    def __init__(self, maxlen: int):
        self._cond = threading.Condition()
        self._entries: collections.deque[tuple[int, Any]] = collections.deque(maxlen=maxlen)
        self._misses = 0  # consecutive waits that ended without a match
        self._skipped = 0
        self._mismatched = False

    def add(self, stamp_ns: int, item: Any) -> None:
        with self._cond:
            self._entries.append((stamp_ns, item))
            self._cond.notify_all()

    def latest(self) -> Any:
        with self._cond:
            return self._entries[-1][1] if self._entries else None

    def _may_wait(self, stamp_ns: int, tol_ns: int, startup: bool) -> bool:
        if not self._entries:
            return startup  # a camera that never sent one is waited for only at start-up
        if any(s >= stamp_ns - tol_ns for s, _ in self._entries):
            return False  # a newer one is here: the matching one is not coming
        if self._misses >= MAX_MISSES:
            self._skipped += 1
            return self._skipped % PROBE_EVERY == 0
        return True

    def _nearest(self, stamp_ns: int) -> tuple[int, Any] | None:
        return min(self._entries, key=lambda e: abs(e[0] - stamp_ns)) if self._entries else None

    def match(self, stamp_ns: int, tol_ns: int, wait_s: float, startup: bool = False) -> Match:
        """Return the entry nearest in stamp, waiting up to wait_s for a late one that may come."""
        with self._cond:
            best = self._nearest(stamp_ns)
            exact = best is not None and abs(best[0] - stamp_ns) <= tol_ns
            waited = not exact and wait_s > 0 and self._may_wait(stamp_ns, tol_ns, startup)
            deadline = time.monotonic() + wait_s
            while waited and not exact and (left := deadline - time.monotonic()) > 0:
                self._cond.wait(left)
                best = self._nearest(stamp_ns)
                exact = best is not None and abs(best[0] - stamp_ns) <= tol_ns
            if exact:
                self._misses = 0
                return Match(best[1], True, waited, False)
            self._misses += int(waited)
            first = best is not None and not self._mismatched
            self._mismatched = self._mismatched or best is not None
            return Match(None if best is None else best[1], False, waited, first)
