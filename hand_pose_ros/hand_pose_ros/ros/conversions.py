"""
Plain functions between ROS messages and the core's numpy / dataclass world.

Written like sensor_msgs_py (no cv_bridge: it is not on PyPI and drags in a C++ build).
Decoding functions take any object with the message's attributes, so they work on real
messages and are testable without ROS; functions that build messages import the message
packages lazily. Every rejected input raises InputError with a short `cause` that the node
uses to throttle its log and count the error in diagnostics.
"""

from __future__ import annotations

import array
import math
from typing import Any

import cv2
from hand_pose_ros.core.camera import plausible_for_image, validate_intrinsics
from hand_pose_ros.core.depth import depth_to_metres as core_depth_to_metres
from hand_pose_ros.core.hand_frames import joint_angles, mano_keypoints
from hand_pose_ros.core.image import to_rgb
from hand_pose_ros.core.results import CameraIntrinsics, FrameResult, HandResult
import numpy as np

# Encodings accepted for colour input -> (bytes per pixel, core pixel format or cv2 YUV code).
_COLOUR_ENCODINGS: dict[str, tuple[int, str | int]] = {
    'rgb8': (3, 'rgb'),
    'bgr8': (3, 'bgr'),
    'rgba8': (4, 'rgba'),
    'bgra8': (4, 'bgra'),
    'mono8': (1, 'mono'),
    '8uc1': (1, 'mono'),
    '8uc3': (3, 'bgr'),  # OpenCV's default channel order
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


# ---------------------------------------------------------------- stamps and headers

def stamp_to_ns(stamp: Any) -> int:
    """builtin_interfaces/Time -> integer nanoseconds (exact, for matching by stamp)."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_stamp(ns: int) -> Any:
    from builtin_interfaces.msg import Time
    return Time(sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))


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
    channels = _COLOUR_ENCODINGS[encoding][0]
    if channels == 2 and int(msg.width) % 2:
        raise InputError('bad_step', f'{encoding} needs an even width, got {msg.width}')
    _check_layout(msg, channels, len(msg.data))
    return channels


def image_to_rgb(msg: Any) -> np.ndarray:
    """sensor_msgs/Image -> contiguous (H, W, 3) uint8 RGB."""
    channels = check_image(msg)
    fmt = _COLOUR_ENCODINGS[str(msg.encoding).lower()][1]
    img = _rows(msg, channels).reshape(int(msg.height), int(msg.width), channels)
    if isinstance(fmt, str):
        return to_rgb(img, fmt)
    return cv2.cvtColor(np.ascontiguousarray(img), fmt)


def compressed_to_rgb(msg: Any, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> np.ndarray:
    """
    sensor_msgs/CompressedImage (jpeg / png, as image_transport's compressed plugin) -> RGB.

    The header's size is checked before decoding (see check_compressed), and the decoded
    size must match it: a decoder never allocates more than the header allowed.
    """
    width, height = check_compressed(msg, max_pixels)
    data = _buffer(msg.data)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is None or bgr.size == 0:
        raise InputError('corrupt_compressed', f'cannot decode {msg.format!r} ({data.size} B)')
    if bgr.shape[:2] not in ((height, width), (width, height)):  # EXIF may rotate by 90
        raise InputError('corrupt_compressed', f'decoded {bgr.shape[1]}x{bgr.shape[0]}, the '
                         f'header says {width}x{height}')
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def depth_to_metres(msg: Any, expected_shape: tuple[int, int] | None = None) -> np.ndarray:
    """Convert a registered depth image (16UC1 mm, 32FC1 m) to float32 metres, invalid NaN."""
    encoding = str(msg.encoding).upper()
    if encoding not in DEPTH_ENCODINGS:
        raise InputError('depth_encoding', f'{msg.encoding!r} (supported: 16UC1, 32FC1)')
    bpp = 2 if encoding == '16UC1' else 4
    rows = _rows(msg, bpp)
    big = bool(getattr(msg, 'is_bigendian', False))
    dtype = np.dtype('>u2' if big else '<u2') if bpp == 2 else np.dtype('>f4' if big else '<f4')
    raw = np.ascontiguousarray(rows).view(dtype).reshape(int(msg.height), int(msg.width))
    if expected_shape is not None and raw.shape != tuple(expected_shape):
        raise InputError(
            'depth_size', f'depth is {raw.shape[1]}x{raw.shape[0]}, image is '
            f'{expected_shape[1]}x{expected_shape[0]} (depth must be registered to the image)')
    return core_depth_to_metres(raw.astype(raw.dtype.newbyteorder('=')))


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


def check_camera_info_for_image(
    intr: CameraIntrinsics, info_size: tuple[int, int] | None, width: int, height: int
) -> None:
    """
    Raise InputError('bad_camera_info') when a CameraInfo does not describe this image.

    A CameraInfo of another resolution (or another camera) gives finite but wrong 3D that
    would be published as valid; it must give none. Without a size in the CameraInfo, K and
    D are still checked for plausibility against the image's own size.
    """
    if info_size is not None and tuple(info_size) != (width, height):
        raise InputError(
            'bad_camera_info', f'CameraInfo is for {info_size[0]}x{info_size[1]} images '
            f'(after binning/roi), the image is {width}x{height}')
    try:
        plausible_for_image(intr, width, height)
    except ValueError as exc:
        raise InputError('bad_camera_info', str(exc)) from exc


# ---------------------------------------------------------------- images out

def _byte_array(data: np.ndarray) -> array.array:
    """
    uint8 data for a message's uint8[] field.

    rosidl's setter takes array.array('B') as is; given bytes it checks every element in
    Python when assertions are on (the default), which costs tens of ms per VGA image.
    """
    out = array.array('B')
    out.frombytes(np.ascontiguousarray(data, dtype=np.uint8).reshape(-1).data)
    return out


def rgb_to_image(rgb: np.ndarray, header: Any, encoding: str = 'rgb8') -> Any:
    """(H, W, 3) uint8 RGB -> sensor_msgs/Image (rgb8 or bgr8)."""
    from sensor_msgs.msg import Image
    data = rgb if encoding == 'rgb8' else cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    data = np.ascontiguousarray(data)
    msg = Image()
    msg.header = header
    msg.height, msg.width = int(data.shape[0]), int(data.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(data.shape[1] * 3)
    msg.data = _byte_array(data)
    return msg


def rgb_to_compressed(rgb: np.ndarray, header: Any, quality: int = 90) -> Any:
    """(H, W, 3) uint8 RGB -> sensor_msgs/CompressedImage (jpeg)."""
    from sensor_msgs.msg import CompressedImage
    ok, buf = cv2.imencode('.jpg', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError('JPEG encoding failed')
    msg = CompressedImage()
    msg.header = header
    msg.format = 'rgb8; jpeg compressed bgr8'
    msg.data = _byte_array(buf)
    return msg


def intrinsics_to_camera_info(
    intr: CameraIntrinsics, width: int, height: int, header: Any
) -> Any:
    """Convert CameraIntrinsics to a sensor_msgs/CameraInfo (P = K, no rectification)."""
    from sensor_msgs.msg import CameraInfo
    msg = CameraInfo()
    msg.header = header
    msg.width, msg.height = int(width), int(height)
    msg.distortion_model = intr.distortion_model or 'plumb_bob'
    d = [float(v) for v in np.asarray(intr.d).reshape(-1)]
    msg.d = d if d else [0.0] * 5
    msg.k = [float(v) for v in intr.matrix.reshape(-1)]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [intr.fx, 0.0, intr.cx, 0.0, 0.0, intr.fy, intr.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


# ---------------------------------------------------------------- results out

def rotation_to_quaternion(rot: np.ndarray) -> tuple[float, float, float, float]:
    """3x3 rotation matrix -> unit quaternion (x, y, z, w), w >= 0 (Shepperd's method)."""
    m = np.asarray(rot, dtype=np.float64)
    tr = m[0, 0] + m[1, 1] + m[2, 2]
    if tr > 0:
        s = 2.0 * math.sqrt(tr + 1.0)
        q = (
            (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s)
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = (0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s)
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = ((m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s)
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = ((m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s)
    arr = np.asarray(q)
    arr /= np.linalg.norm(arr)
    if arr[3] < 0:
        arr = -arr
    return float(arr[0]), float(arr[1]), float(arr[2]), float(arr[3])


def hand_finite(hand: HandResult) -> bool:
    """
    Tell whether the hand's 2D keypoints, metric model keypoints and scores are all finite.

    A hand without them is not a measurement; it is left out of every output rather than
    published with NaN/inf (which many consumers do not check for) or with made-up zeros.
    """
    return bool(
        np.all(np.isfinite(np.asarray(hand.keypoints, dtype=np.float64)))
        and np.all(np.isfinite(np.asarray(hand.world, dtype=np.float64)))
        and math.isfinite(float(hand.score)) and math.isfinite(float(hand.handedness_score)))


def camera_valid(hand: HandResult) -> bool:
    """
    Tell whether the hand has valid, finite camera-frame 3D.

    Valid: the fit marked it so, every value is finite and the rotation is proper (so that
    its quaternion is finite too).
    """
    cam = hand.camera
    if not (hand_finite(hand) and cam is not None and cam.valid
            and np.all(np.isfinite(cam.keypoints)) and np.all(np.isfinite(cam.wrist_position))
            and np.all(np.isfinite(cam.wrist_rotation))
            and math.isfinite(float(cam.reprojection_error))):
        return False
    rot = np.asarray(cam.wrist_rotation, dtype=np.float64)
    return bool(np.allclose(rot.T @ rot, np.eye(3), atol=1e-3) and np.linalg.det(rot) > 0.0)


def finite_or(value: float, default: float = 0.0) -> float:
    """float(value), or `default` when it is NaN/inf: no message field carries those."""
    v = float(value)
    return v if math.isfinite(v) else default


def _points(arr: np.ndarray) -> list[Any]:
    from geometry_msgs.msg import Point
    a = np.nan_to_num(np.asarray(arr, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    return [Point(x=float(p[0]), y=float(p[1]), z=float(p[2])) for p in a]


def hand_to_msg(hand: HandResult) -> Any:
    """Convert a HandResult to hand_pose_msgs/Hand (absent 3D/gesture: documented defaults)."""
    from hand_pose_msgs.msg import Hand
    msg = Hand()
    msg.id = int(hand.id)
    msg.handedness = str(hand.handedness)
    msg.handedness_score = float(hand.handedness_score)
    msg.score = float(hand.score)
    msg.keypoints = _points(hand.keypoints)
    msg.keypoints_hand = _points(hand.world)
    msg.wrist_pose.orientation.w = 1.0
    msg.hand_scale = float(hand.hand_scale)
    msg.scale_source = int(hand.scale_source)
    msg.stale = bool(hand.stale)
    msg.age = float(hand.age)
    inside = hand.keypoint_in_image
    msg.keypoint_in_image = ([True] * 21 if inside is None
                             else [bool(v) for v in np.asarray(inside).reshape(21)])
    normal_cam = None
    if camera_valid(hand):
        cam = hand.camera
        msg.keypoints_camera = _points(cam.keypoints)
        msg.camera_valid = True
        msg.camera_method = int(cam.method)
        msg.reprojection_error = float(cam.reprojection_error)
        p = msg.wrist_pose.position
        p.x, p.y, p.z = (float(v) for v in cam.wrist_position)
        o = msg.wrist_pose.orientation
        o.x, o.y, o.z, o.w = rotation_to_quaternion(cam.wrist_rotation)
        normal_cam = np.asarray(cam.wrist_rotation)[:, 2]
    g = hand.gesture
    if g is not None:
        msg.gesture = str(g.name)
        msg.gesture_score = finite_or(g.score)
        msg.gesture_raw = str(g.raw_name)
        msg.pinch_distance = finite_or(g.pinch_distance)
        msg.pinch_strength = finite_or(g.pinch_strength)
        msg.grip_aperture = finite_or(g.grip_aperture)
        msg.finger_curl = [finite_or(v) for v in np.asarray(g.finger_curl).reshape(5)]
        if normal_cam is None:
            normal_cam = np.asarray(g.palm_normal)
    else:
        msg.gesture = 'none'
        msg.gesture_raw = 'none'
    if normal_cam is not None and np.all(np.isfinite(normal_cam)):
        n = msg.palm_normal
        n.x, n.y, n.z = (float(v) for v in normal_cam)
    world = np.asarray(hand.world, dtype=np.float64)
    if world.shape == (21, 3) and np.all(np.isfinite(world)):
        msg.keypoints_mano = _points(mano_keypoints(world, hand.handedness))
        msg.joint_angles = [float(v) for v in joint_angles(world, hand.handedness)]
    return msg


def frame_result_to_msg(result: FrameResult, header: Any) -> Any:
    """
    Convert a FrameResult to a hand_pose_msgs/HandArray with the source image's header.

    Hands with non-finite 2D keypoints or scores are left out (see hand_finite); hands with
    non-finite 3D keep camera_valid false and the documented zero/identity 3D fields, so no
    NaN/inf is ever published.
    """
    from hand_pose_msgs.msg import HandArray
    msg = HandArray()
    msg.header = header
    msg.width, msg.height = int(result.width), int(result.height)
    msg.hands = [hand_to_msg(h) for h in result.all_hands if hand_finite(h)]
    return msg


def hand_array_keypoints(msg: Any) -> np.ndarray:
    """Return a HandArray's (N, 21, 3) image keypoints, to compare with the core's."""
    return np.array(
        [[[p.x, p.y, p.z] for p in h.keypoints] for h in msg.hands], dtype=np.float64
    ).reshape(len(msg.hands), 21, 3)
