"""
Input validation and conversion of caller images to the RGB the networks expect.

Callers (ROS image topics, OpenCV, files) hand over many layouts; the pipeline accepts them
all at the boundary and fails here, with a message naming the problem, rather than deep in a
warp or a network call.
"""

from __future__ import annotations

import cv2
import numpy as np

PIXEL_FORMATS: tuple[str, ...] = ('rgb', 'bgr', 'rgba', 'bgra', 'mono')

_CHANNELS = {'rgb': 3, 'bgr': 3, 'rgba': 4, 'bgra': 4, 'mono': 1}
_TO_RGB = {
    'bgr': cv2.COLOR_BGR2RGB,
    'rgba': cv2.COLOR_RGBA2RGB,
    'bgra': cv2.COLOR_BGRA2RGB,
    'mono': cv2.COLOR_GRAY2RGB,
}


def to_rgb(image: np.ndarray, pixel_format: str = 'rgb') -> np.ndarray:
    """
    Validate `image` as `pixel_format` and return a contiguous (H, W, 3) uint8 RGB array.

    Raises ValueError saying what is wrong: None, not an array, empty, wrong dtype, a shape
    that does not fit the format, or an unknown format.
    """
    fmt = pixel_format.lower() if isinstance(pixel_format, str) else pixel_format
    if fmt not in _CHANNELS:
        raise ValueError(
            f'unknown pixel format {pixel_format!r}; expected one of {PIXEL_FORMATS}')
    if image is None:
        raise ValueError('image is None')
    if not isinstance(image, np.ndarray):
        raise ValueError(  # noqa: TRY004 - the issue asks for ValueError on all bad input
            f'image must be a numpy array, got {type(image).__name__}')
    if image.size == 0:
        raise ValueError(f'image is empty (shape {image.shape})')
    if image.dtype != np.uint8:
        raise ValueError(f'image dtype must be uint8, got {image.dtype}')
    channels = _CHANNELS[fmt]
    if fmt == 'mono':
        if image.ndim == 3 and image.shape[2] == 1:
            image = image[:, :, 0]
        if image.ndim != 2:
            raise ValueError(
                f'a mono image must have shape (H, W) or (H, W, 1), got {image.shape}')
    elif image.ndim != 3 or image.shape[2] != channels:
        raise ValueError(
            f'a {fmt} image must have shape (H, W, {channels}), got {image.shape}')
    if fmt == 'rgb':
        return np.ascontiguousarray(image)
    return cv2.cvtColor(np.ascontiguousarray(image), _TO_RGB[fmt])


# 16-bit mono and IR frames to 8 bits: a per-frame linear stretch between these percentiles
# of the pixel values. A fixed shift (>> 8) leaves a 10- or 12-bit sensor, or an IR stream
# whose values sit in the low thousands, nearly black; a min-max stretch lets one hot pixel
# or projector dot darken the whole frame. The percentiles are taken on every STRETCH_STEP-th
# pixel per axis, which costs little and changes them by a level or so.
STRETCH_PERCENTILES = (0.5, 99.5)
STRETCH_STEP = 4


def stretch_to_8bit(image: np.ndarray) -> np.ndarray:
    """
    Scale a 16-bit (H, W) image to uint8: [p0.5, p99.5] of its values onto [0, 255].

    Values outside the range saturate. A flat image (the two percentiles equal) maps to 0
    below and at its level, 255 above.
    """
    if image.ndim != 2 or image.dtype.kind != 'u':
        raise ValueError(f'expected an (H, W) unsigned integer image, got {image.dtype} '
                         f'{image.shape}')
    sample = image[::STRETCH_STEP, ::STRETCH_STEP]
    low, high = np.percentile(sample, STRETCH_PERCENTILES)
    scale = 255.0 / max(float(high) - float(low), 1.0)
    out = (image.astype(np.float32) - np.float32(low)) * np.float32(scale)
    return np.clip(out, 0, 255).astype(np.uint8)
