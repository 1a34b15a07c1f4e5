"""
The one frame reader: image files, folders of images, video files and cameras, as RGB.

`replay` (the ROS camera stand-in), `hand-pose-ros detect`, the benchmark and the demo all
read frames here, so they agree on which files are images, on folder order (recursive,
sorted), on colour order (RGB uint8, what the trackers take by default) and on what an
unreadable file does (skipped and reported, never a crash mid-stream).

Sources are named as the `replay` node's `source` parameter takes them: a folder, a video
file, or `camera:N` (OpenCV device N).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

IMAGE_SUFFIXES = frozenset(
    {'.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.pgm'})
VIDEO_SUFFIXES = frozenset(
    {'.mp4', '.avi', '.mov', '.mkv', '.flv', '.webm', '.m4v', '.mpg', '.mpeg'})
FRAME_CACHE_LIMIT = 600  # decoded folder frames kept in memory (a 640x480 frame is 0.9 MB)


def list_images(folder: Path) -> list[Path]:
    """List the image files under `folder`, recursively, sorted by path."""
    return sorted(p for p in Path(folder).rglob('*')
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_image(path: Path) -> np.ndarray | None:
    """Read an image file as RGB uint8 (H, W, 3), or None when it cannot be decoded."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def open_video(source: str | Path) -> Any:
    """Open a cv2.VideoCapture for a video file or `camera:N`; ValueError if it fails."""
    text = str(source)
    cap = (cv2.VideoCapture(int(text.split(':', 1)[1])) if text.startswith('camera:')
           else cv2.VideoCapture(text))
    if not cap.isOpened():
        cap.release()
        raise ValueError(f'cannot open {text!r}')
    return cap


def video_frame_count(path: Path) -> int:
    """Frames a video file says it has (0 when unknown)."""
    cap = cv2.VideoCapture(str(path))
    try:
        return max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
    finally:
        cap.release()


def video_frames(path: Path) -> Iterator[np.ndarray]:
    """Every frame of a video file, in order, as RGB."""
    cap = open_video(path)
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                return
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()


class FrameSource:
    """
    Frames (RGB uint8) from a folder (recursively, sorted), a video file or `camera:N`.

    next() gives one frame at a time, looping when `loop` (never for a camera), resized to
    `size` (width, height) when given. Folder frames are decoded once and cached (up to
    FRAME_CACHE_LIMIT), so looping a folder costs no decoding.
    """

    def __init__(self, source: str, loop: bool = True, size: tuple[int, int] | None = None):
        self.source, self.loop, self.size = source, loop, size
        self.files: list[Path] = []
        self.cache: dict[int, np.ndarray] = {}
        self.index = 0
        self.unreadable: list[Path] = []  # files skipped by next(), in order
        self.cap: Any = None
        path = Path(source)
        if source.startswith('camera:'):
            self.cap = open_video(source)
            self.loop = False
        elif path.is_dir():
            self.files = list_images(path)
            if not self.files:
                raise ValueError(
                    f'no images ({", ".join(sorted(IMAGE_SUFFIXES))}) under {source}')
        elif path.is_file():
            self.cap = open_video(source)
        else:
            raise ValueError(f'source {source!r} is not a folder, a video file or camera:N')

    def __len__(self) -> int:
        if self.files:
            return len(self.files)
        n = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT)) if self.cap is not None else 0
        return max(n, 0)

    def _resize(self, rgb: np.ndarray) -> np.ndarray:
        if self.size and (rgb.shape[1], rgb.shape[0]) != self.size:
            return cv2.resize(rgb, self.size, interpolation=cv2.INTER_AREA)
        return rgb

    def next(self) -> np.ndarray | None:  # noqa: A003 (public API, as used by replay)
        """
        Return the next frame, or None at the end (never None while looping a readable source).

        Unreadable files are skipped and listed in `unreadable`; a folder where none can be
        read ends like a finished one.
        """
        if self.files:
            for _ in range(len(self.files)):
                rgb = self._next_file()
                if rgb is not None:
                    return rgb
                if self.index >= len(self.files) and not self.loop:
                    return None
            return None
        ok, bgr = self.cap.read()
        if not ok and self.loop:
            self.cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, bgr = self.cap.read()
        if not ok:
            return None
        return self._resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))

    def _next_file(self) -> np.ndarray | None:
        if self.index >= len(self.files):
            if not self.loop:
                return None
            self.index = 0
        i = self.index
        self.index += 1
        if i not in self.cache:
            rgb = read_image(self.files[i])
            if rgb is None:
                self.unreadable.append(self.files[i])
                return None
            rgb = self._resize(rgb)
            if len(self.cache) >= FRAME_CACHE_LIMIT:
                return rgb
            self.cache[i] = rgb
        return self.cache[i]

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
