"""
ROS messages in: images, depth and CameraInfo to the core's numpy arrays and dataclasses.

Written like sensor_msgs_py (no cv_bridge: it is not on PyPI and drags in a C++ build).
Functions take any object with the message's attributes, so they work on real messages and
are testable without ROS. Every rejected input raises InputError with a short `cause` that
the node uses to throttle its log and count the error in diagnostics. Each check runs once:
the node checks a message on receipt and decodes what passed later (decode_image,
decode_compressed) without checking again.
"""

from __future__ import annotations

from typing import Any

import cv2
from hand_pose_ros.core.inputs.image import stretch_to_8bit, to_rgb
from hand_pose_ros.core.metric.camera import plausible_for_image, validate_intrinsics
from hand_pose_ros.core.metric.depth import depth_to_metres as core_depth_to_metres
from hand_pose_ros.core.results import CameraIntrinsics
import numpy as np

# 16-bit mono (a mono camera's mono16, a depth camera's IR stream as 16UC1): scaled to 8 bits
# per frame by core.inputs.image.stretch_to_8bit, then handled as mono8.
MONO16 = 'mono16'
# Encodings accepted for colour input -> (bytes per pixel, core pixel format, MONO16 or cv2
# YUV code).
_COLOUR_ENCODINGS: dict[str, tuple[int, str | int]] = {
    'rgb8': (3, 'rgb'),
    'bgr8': (3, 'bgr'),
    'rgba8': (4, 'rgba'),
    'bgra8': (4, 'bgra'),
    'mono8': (1, 'mono'),
    '8uc1': (1, 'mono'),
    '8uc3': (3, 'bgr'),  # OpenCV's default channel order
    'mono16': (2, MONO16),
    # On an image topic 16UC1 is an IR (or other single-channel) stream; depth goes to the
    # depth topic, where 16UC1 means millimetres (depth_image).
    '16uc1': (2, MONO16),
    # sensor_msgs image_encodings: 'yuv422' is UYVY byte order, 'yuv422_yuy2' is YUYV.
    'yuv422': (2, cv2.COLOR_YUV2RGB_UYVY),
    'uyvy': (2, cv2.COLOR_YUV2RGB_UYVY),
    'yuv422_yuy2': (2, cv2.COLOR_YUV2RGB_YUYV),
    'yuyv': (2, cv2.COLOR_YUV2RGB_YUYV),
}
SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(
    e for e in _COLOUR_ENCODINGS if not e.startswith('8uc'))
DEPTH_ENCODINGS: tuple[str, ...] = ('16UC1', '32FC1')
# Longest image side the pipeline can sample: cv2.remap (warp_u8) takes coordinates as shorts.
MAX_IMAGE_SIDE = 32767
# Default of the node's max_image_pixels: 8K UHD (7680 x 4320 = 33.2 MP) and a little more.
DEFAULT_MAX_IMAGE_PIXELS = 34_000_000
# D length of each CameraInfo distortion model (sensor_msgs/distortion_models); an all-zero D
# of any length means no distortion.
CAMERA_INFO_D_LENGTHS = {'plumb_bob': 5, 'rational_polynomial': 8, 'equidistant': 4}
_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
# JPEG start-of-frame markers (SOF0-SOF15 except DHT, JPG and DAC), which carry the size.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


class InputError(ValueError):
    """A message the node cannot use; `cause` names the kind (one log line and counter each)."""

    def __init__(self, cause: str, detail: str):
        super().__init__(f'{cause}: {detail}')
        self.cause = cause
        self.detail = detail


def stamp_to_ns(stamp: Any) -> int:
    """builtin_interfaces/Time -> integer nanoseconds (exact, for matching by stamp)."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


# ---------------------------------------------------------------- images in

def _buffer(data: Any) -> np.ndarray:
    """uint8 view of a message's data field (bytes, array.array or list), copying only lists."""
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except TypeError:
        return np.asarray(data, dtype=np.uint8).reshape(-1)


def _check_layout(msg: Any, bytes_per_pixel: int, size: int) -> None:
    """
    Reject a malformed row layout.

    A step larger than one row is legal (padded rows); a step shorter than a row, or data
    whose length is not step x height, is a malformed message.
    """
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise InputError('empty_image', f'image is {width}x{height}')
    if step < width * bytes_per_pixel:
        raise InputError(
            'bad_step', f'step {step} < width {width} x {bytes_per_pixel} bytes per pixel')
    if size != step * height:
        raise InputError(
            'bad_step', f'data has {size} bytes, expected step {step} x height {height}')


def _rows(msg: Any, bytes_per_pixel: int) -> np.ndarray:
    """Return the message's bytes as (height, width * bpp) uint8, without row padding."""
    data = _buffer(msg.data)
    _check_layout(msg, bytes_per_pixel, data.size)
    height, step = int(msg.height), int(msg.step)
    return data.reshape(height, step)[:, :int(msg.width) * bytes_per_pixel]


def check_image_size(width: int, height: int, max_pixels: int) -> None:
    """
    Reject an image the pipeline cannot or should not process, before any pixel work.

    Decoding or converting a huge image costs gigabytes and seconds that every other camera
    waits for (one worker serves all cameras); a side above MAX_IMAGE_SIDE makes OpenCV's
    remap fail deep inside the pipeline.
    """
    if max(width, height) > MAX_IMAGE_SIDE:
        raise InputError(
            'image_side_too_large',
            f'image is {width}x{height}; sides above {MAX_IMAGE_SIDE} px are not supported')
    if width * height > max_pixels:
        raise InputError(
            'image_too_large', f'image is {width}x{height} = {width * height / 1e6:.1f} MP, '
            f'above max_image_pixels ({max_pixels / 1e6:.1f} MP)')


def compressed_image_size(data: bytes | np.ndarray) -> tuple[int, int]:
    """
    (width, height) a JPEG or PNG declares in its header, without decoding it.

    A few hundred bytes can declare 30000 x 30000 pixels, and cv2.imdecode would allocate
    (and spend seconds filling) all of them: the size must be known before decoding. Raises
    InputError for anything that is neither a well-formed JPEG nor PNG header, since only
    those two are what image_transport's compressed plugin sends.
    """
    data = memoryview(_buffer(data)).cast('B')  # indexing gives ints; no copy
    buf = bytes(data[:8])
    if buf.startswith(_PNG_SIGNATURE):
        head = bytes(data[8:24])
        if len(head) < 16 or head[4:8] != b'IHDR':
            raise InputError('corrupt_compressed', 'PNG without an IHDR chunk')
        return int.from_bytes(head[8:12], 'big'), int.from_bytes(head[12:16], 'big')
    if buf.startswith(b'\xff\xd8'):
        return _jpeg_size(data)
    raise InputError('unsupported_compressed',
                     f'neither JPEG nor PNG (first bytes {buf[:4].hex() or "none"})')


def _jpeg_size(data: memoryview) -> tuple[int, int]:
    """Walk the JPEG's marker segments up to its start-of-frame marker (no entropy data)."""
    n, i = len(data), 2
    while i < n:
        if data[i] != 0xFF:
            break
        while i < n and data[i] == 0xFF:  # fill bytes
            i += 1
        if i >= n:
            break
        marker = data[i]
        i += 1
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # TEM, RSTn, SOI: no length
            continue
        if marker in (0xD9, 0xDA) or i + 2 > n:  # EOI or scan data before any frame header
            break
        length = (data[i] << 8) | data[i + 1]
        if length < 2:
            break
        if marker in _JPEG_SOF:
            if length < 7 or i + 7 > n:
                break
            height = (data[i + 3] << 8) | data[i + 4]
            width = (data[i + 5] << 8) | data[i + 6]
            return width, height
        i += length
    raise InputError('corrupt_compressed', 'JPEG without a readable frame header')


def check_compressed(msg: Any, max_pixels: int) -> tuple[int, int]:
    """
    Header checks of a sensor_msgs/CompressedImage (no decoding); returns (width, height).

    Run on receipt like check_image, so a decompression bomb never reaches the decoder.
    """
    data = _buffer(msg.data)
    if data.size == 0:
        raise InputError('empty_image', 'compressed image has no data')
    width, height = compressed_image_size(data)
    if width <= 0 or height <= 0:
        raise InputError('empty_image', f'compressed image declares {width}x{height}')
    check_image_size(width, height, max_pixels)
    return width, height


def check_image(msg: Any, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> int:
    """
    Cheap header checks of a sensor_msgs/Image (no pixel work); returns bytes per pixel.

    Run on receipt, so a malformed message is rejected at once and never takes the place of
    a good pending frame. The declared size is checked first: it alone decides the work.
    """
    if int(msg.width) > 0 and int(msg.height) > 0:
        check_image_size(int(msg.width), int(msg.height), max_pixels)
    encoding = str(msg.encoding).lower()
    if encoding not in _COLOUR_ENCODINGS:
        raise InputError(
            'unsupported_encoding',
            f'{msg.encoding!r} (supported: {", ".join(SUPPORTED_ENCODINGS)})')
    channels, fmt = _COLOUR_ENCODINGS[encoding]
    if isinstance(fmt, int) and int(msg.width) % 2:  # YUV 4:2:2 pairs pixels
        raise InputError('bad_step', f'{encoding} needs an even width, got {msg.width}')
    _check_layout(msg, channels, len(msg.data))
    return channels


def image_to_rgb(msg: Any, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> np.ndarray:
    """sensor_msgs/Image -> contiguous (H, W, 3) uint8 RGB, header checks first."""
    return decode_image(msg, check_image(msg, max_pixels))


def decode_image(msg: Any, channels: int) -> np.ndarray:
    """
    Convert an Image that check_image passed (it returned `channels`) to RGB.

    The node checks on receipt and decodes later on its worker: the checks run once.
    """
    fmt = _COLOUR_ENCODINGS[str(msg.encoding).lower()][1]
    if fmt == MONO16:
        return to_rgb(stretch_to_8bit(_uint16(msg)), 'mono')
    img = _rows(msg, channels).reshape(int(msg.height), int(msg.width), channels)
    if isinstance(fmt, str):
        return to_rgb(img, fmt)
    return cv2.cvtColor(np.ascontiguousarray(img), fmt)


def _uint16(msg: Any) -> np.ndarray:
    """Return a checked 16-bit single-channel Image's pixels as native-order (H, W) uint16."""
    big = bool(getattr(msg, 'is_bigendian', False))
    raw = np.ascontiguousarray(_rows(msg, 2)).view(np.dtype('>u2' if big else '<u2'))
    return raw.reshape(int(msg.height), int(msg.width)).astype(np.uint16, copy=False)


def compressed_to_rgb(msg: Any, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> np.ndarray:
    """
    sensor_msgs/CompressedImage (jpeg / png, as image_transport's compressed plugin) -> RGB.

    The header's size is checked before decoding (see check_compressed).
    """
    return decode_compressed(msg, check_compressed(msg, max_pixels))


def decode_compressed(msg: Any, size: tuple[int, int]) -> np.ndarray:
    """
    Decode a CompressedImage whose header check_compressed passed (it returned `size`).

    The decoded image must have that size: a decoder never allocates more than the header
    allowed.
    """
    width, height = size
    data = _buffer(msg.data)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is None or bgr.size == 0:
        raise InputError('corrupt_compressed', f'cannot decode {msg.format!r} ({data.size} B)')
    if bgr.shape[:2] not in ((height, width), (width, height)):  # EXIF may rotate by 90
        raise InputError('corrupt_compressed', f'decoded {bgr.shape[1]}x{bgr.shape[0]}, the '
                         f'header says {width}x{height}')
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def depth_image(msg: Any, expected_shape: tuple[int, int] | None = None) -> np.ndarray:
    """
    Return a registered depth image (16UC1 mm, 32FC1 m) as a native-order (H, W) array.

    The pixels are not copied unless the byte order differs.

    Only the message layout is checked here; units and invalid pixels are the core's
    (metric/depth.py), which converts the image once per frame.
    """
    encoding = str(msg.encoding).upper()
    if encoding not in DEPTH_ENCODINGS:
        raise InputError('depth_encoding', f'{msg.encoding!r} (supported: 16UC1, 32FC1)')
    if encoding == '16UC1':
        raw = _uint16(msg)
    else:
        big = bool(getattr(msg, 'is_bigendian', False))
        raw = np.ascontiguousarray(_rows(msg, 4)).view(np.dtype('>f4' if big else '<f4'))
        raw = raw.reshape(int(msg.height), int(msg.width))
    if expected_shape is not None and raw.shape != tuple(expected_shape):
        raise InputError(
            'depth_size', f'depth is {raw.shape[1]}x{raw.shape[0]}, image is '
            f'{expected_shape[1]}x{expected_shape[0]} (depth must be registered to the image)')
    return raw.astype(raw.dtype.newbyteorder('='), copy=False)


def depth_to_metres(msg: Any, expected_shape: tuple[int, int] | None = None) -> np.ndarray:
    """Convert a registered depth image to float32 metres, invalid NaN (for tools and tests)."""
    return core_depth_to_metres(depth_image(msg, expected_shape))


def camera_info_image_size(msg: Any) -> tuple[int, int] | None:
    """
    Return (width, height) of the images this CameraInfo describes (REP 104), or None.

    None when the CameraInfo gives no size (width/height 0).

    A driver that bins (binning_x/y > 1) or crops (roi) keeps width/height and K of the full
    sensor resolution; the image it publishes is the ROI divided by the binning.
    """
    width, height = int(msg.width), int(msg.height)
    roi = getattr(msg, 'roi', None)
    if roi is not None and int(roi.width) > 0 and int(roi.height) > 0:
        width, height = int(roi.width), int(roi.height)
    if width <= 0 or height <= 0:
        return None
    bx, by = _binning(msg)
    return width // bx, height // by


def _binning(msg: Any) -> tuple[int, int]:
    """binning_x/y of a CameraInfo; 0 and 1 both mean no binning (REP 104)."""
    return (max(int(getattr(msg, 'binning_x', 0)), 1),
            max(int(getattr(msg, 'binning_y', 0)), 1))


def camera_info_to_intrinsics(msg: Any) -> CameraIntrinsics:
    """
    sensor_msgs/CameraInfo -> CameraIntrinsics of the published (binned, cropped) image.

    Rejects K and D that cannot be a camera: non-finite or non-positive focal lengths, a K
    whose last row is not (0, 0, 1), a D whose length does not fit its model (plumb_bob 5,
    rational_polynomial 8, equidistant 4; an all-zero D of any length is no distortion), and,
    when the CameraInfo gives its size, K and D that are implausible for that size (see
    core.camera.plausible_for_image). The core works in raw (distorted) image pixels, so K
    and D are used, not P; binning and ROI (REP 104) are applied to K as image_geometry does.
    """
    k = np.asarray(msg.k, dtype=np.float64).reshape(-1)
    if k.size != 9:
        raise InputError('bad_camera_info', f'K has {k.size} values, expected 9')
    if np.all(np.isfinite(k)) and np.any(k) and not np.allclose(k[6:], (0.0, 0.0, 1.0)):
        raise InputError('bad_camera_info', f"K's last row is {k[6:].tolist()}, not [0, 0, 1]")
    model = str(msg.distortion_model) or 'plumb_bob'
    d = np.asarray(msg.d, dtype=np.float64).reshape(-1)
    if np.any(d) and model in CAMERA_INFO_D_LENGTHS and d.size != CAMERA_INFO_D_LENGTHS[model]:
        raise InputError('bad_camera_info', f'{model} needs {CAMERA_INFO_D_LENGTHS[model]} '
                         f'distortion coefficients, D has {d.size}')
    bx, by = _binning(msg)
    roi = getattr(msg, 'roi', None)
    ox, oy = (int(roi.x_offset), int(roi.y_offset)) if roi is not None else (0, 0)
    intr = CameraIntrinsics(
        fx=float(k[0]) / bx, fy=float(k[4]) / by, cx=(float(k[2]) - ox) / bx,
        cy=(float(k[5]) - oy) / by, d=d, distortion_model=model)
    if not np.any(intr.d):  # all-zero D is no distortion, whatever its length or model
        intr.d, intr.distortion_model = np.zeros(0), 'plumb_bob'
    try:
        validate_intrinsics(intr)
        size = camera_info_image_size(msg)
        if size is not None:
            plausible_for_image(intr, *size)
    except ValueError as exc:
        raise InputError('bad_camera_info', str(exc)) from exc
    return intr


# A CameraInfo as it is kept until an image comes: its intrinsics and image size, or the
# InputError its conversion raised (reported against the image that would have used it).
CheckedCameraInfo = tuple[CameraIntrinsics, tuple[int, int] | None] | InputError


def convert_camera_info(msg: Any) -> CheckedCameraInfo:
    """Convert and check a CameraInfo once, on receipt; a bad one is kept as its error."""
    try:
        return camera_info_to_intrinsics(msg), camera_info_image_size(msg)
    except InputError as exc:
        return exc


def intrinsics_for_image(info: CheckedCameraInfo, width: int, height: int) -> CameraIntrinsics:
    """Return the intrinsics of a converted CameraInfo if it describes this image, else raise."""
    if isinstance(info, InputError):
        raise info
    intr, info_size = info
    check_camera_info_for_image(intr, info_size, width, height)
    return intr


def check_camera_info_for_image(
    intr: CameraIntrinsics, info_size: tuple[int, int] | None, width: int, height: int
) -> None:
    """
    Raise InputError('bad_camera_info') when a CameraInfo does not describe this image.

    A CameraInfo of another resolution (or another camera) gives finite but wrong 3D that
    would be published as valid; it must give none. K and D of a CameraInfo that gives its
    size were checked for that size when it was converted (camera_info_to_intrinsics), so a
    matching size is all that is left to check; without a size, K and D are checked for
    plausibility against the image's own size.
    """
    if info_size is not None:
        if tuple(info_size) != (width, height):
            raise InputError(
                'bad_camera_info', f'CameraInfo is for {info_size[0]}x{info_size[1]} images '
                f'(after binning/roi), the image is {width}x{height}')
        return
    try:
        plausible_for_image(intr, width, height)
    except ValueError as exc:
        raise InputError('bad_camera_info', str(exc)) from exc
