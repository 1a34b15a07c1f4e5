"""process-bag's Summary: what a run did, counted per bag and added up over bags."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Summary:
    """What a run did: counts for the end line, the tests and the benchmarks."""

    frames: int = 0  # image messages of the processed cameras
    processed: int = 0
    hands: int = 0
    fused_sets: int = 0  # --fusion-frame: synchronized sets fused (with a camera pose)
    bad: Counter = field(default_factory=Counter)
    wall_s: float = 0.0
    span_s: float = 0.0  # receive time span of the images: the recording's duration
    first_ns: int | None = None
    last_ns: int | None = None
    errors: list[str] = field(default_factory=list)  # bags that could not be read to the end

    def add_counts(self, delta: Any, log_ns: int) -> None:
        """Add what one message at receive time `log_ns` counted (a Summary or a Record)."""
        self.frames += delta.frames
        self.processed += delta.processed
        self.hands += delta.hands
        self.bad.update(delta.bad)
        if delta.frames:
            self.first_ns = log_ns if self.first_ns is None else self.first_ns
            self.last_ns = log_ns

    def finish(self) -> None:
        """Set span_s from the first and last image receive times."""
        if self.first_ns is not None:
            # n frames span n - 1 periods; add one so x real time compares like for like
            frames_span = (self.last_ns - self.first_ns) * 1e-9
            period = frames_span / max(self.frames - 1, 1)
            self.span_s = frames_span + period

    def add(self, other: Summary) -> None:
        self.frames += other.frames
        self.processed += other.processed
        self.hands += other.hands
        self.fused_sets += other.fused_sets
        self.bad.update(other.bad)
        self.wall_s += other.wall_s
        self.errors += other.errors
        self.span_s += other.span_s  # several bags: each is its own recording

    def text(self) -> str:
        fps = self.processed / self.wall_s if self.wall_s > 0 else 0.0
        rt = self.span_s / self.wall_s if self.wall_s > 0 and self.span_s > 0 else 0.0
        bad = ', '.join(f'{k} {v}' for k, v in sorted(self.bad.items())) or 'none'
        fused = f', {self.fused_sets} fused sets' if self.fused_sets else ''
        return (f'{self.frames} frames, {self.processed} processed, {self.hands} hands{fused}; '
                f'bad input: {bad}; {self.wall_s:.1f} s, {fps:.1f} frames/s, '
                f'{rt:.2f}x real time')
