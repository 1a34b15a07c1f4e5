"""Hostile inputs shared by the unit and DDS tests: built here, small, never decoded."""

from __future__ import annotations

import cv2
import numpy as np


def bomb_jpeg(width: int = 30000, height: int = 30000) -> bytes:
    """A tiny valid JPEG whose frame header (SOF) is patched to declare width x height.

    About 700 bytes, yet cv2.imdecode would allocate width x height x 3 bytes and spend
    seconds on it: the decompression bomb of issue 13.
    """
    ok, buf = cv2.imencode('.jpg', np.zeros((8, 8, 3), np.uint8))
    assert ok
    data = bytearray(buf.tobytes())
    i = 2
    while True:  # walk the marker segments to the SOF0 marker
        assert data[i] == 0xFF
        marker, length = data[i + 1], (data[i + 2] << 8) | data[i + 3]
        if marker == 0xC0:
            data[i + 5:i + 9] = height.to_bytes(2, 'big') + width.to_bytes(2, 'big')
            return bytes(data)
        i += 2 + length


def bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A tiny PNG whose IHDR declares width x height (its CRC is not fixed up: the size is
    read before any decoder looks at it)."""
    ok, buf = cv2.imencode('.png', np.zeros((8, 8, 3), np.uint8))
    assert ok
    data = bytearray(buf.tobytes())
    data[16:24] = width.to_bytes(4, 'big') + height.to_bytes(4, 'big')
    return bytes(data)
