"""
Grey frames (mono and IR cameras): a skin-tinted copy for the palm detector.

The palm detector leans on skin colour: on a grey copy of a photo (three equal channels)
it misses clearly visible hands, while the landmark model, read from the same ROI, scores
and places them as it does in colour (measured: docs/evaluation.md, "Grey and IR frames").
So a grey frame gets more detector looks, among them at copies whose grey levels are mapped
onto a skin hue of the same luma, which bring most of those palms back; the landmark model
still reads the original grey pixels.
"""

from __future__ import annotations

import cv2
import numpy as np

# Skin tones' RGB ratios (a light and a deeper one; each alone brings back hands the other
# misses), scaled so the tinted pixel keeps its luma (BT.601 weights): R is pushed above
# the grey level, B below it.
_SKINS = ((1.0, 0.68, 0.52), (1.0, 0.78, 0.64))
SKIN_TINTS = tuple(np.array(s, np.float32) / float(np.dot(s, (0.299, 0.587, 0.114)))
                   for s in _SKINS)
# Channel spread (max - min, 8-bit levels) up to which a pixel counts as grey: JPEG chroma
# rounding of a grey image stays within a few levels.
GREY_SPREAD = 6
# Pixels checked per axis, on an even grid: a colour image has many coloured pixels, so a
# sparse grid (4096 pixels, whatever the resolution) tells it apart at a negligible cost.
GRID = 64
# Share of sampled pixels allowed above GREY_SPREAD (a coloured overlay, a few hot pixels).
COLOURED_SHARE = 0.01


def is_grey(rgb: np.ndarray) -> bool:
    """Return True when the (H, W, 3) uint8 image's channels are (nearly) equal."""
    height, width = rgb.shape[:2]
    sample = rgb[::max(1, height // GRID), ::max(1, width // GRID)].astype(np.int16)
    spread = sample.max(axis=2) - sample.min(axis=2)
    return bool(np.count_nonzero(spread > GREY_SPREAD) <= COLOURED_SHARE * spread.size)


def skin_tinted(rgb: np.ndarray, tint: np.ndarray) -> np.ndarray:
    """
    Return the grey (H, W, 3) uint8 image's levels mapped onto a skin hue of the same luma.

    One table lookup per channel: the frame's channels are equal, so each channel's table
    is that channel's tint.
    """
    levels = np.arange(256, dtype=np.float32)[:, None] * tint[None, :]
    table = np.clip(levels, 0, 255).astype(np.uint8).reshape(256, 1, 3)
    return cv2.LUT(np.ascontiguousarray(rgb), table)
