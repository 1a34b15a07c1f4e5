"""
`hand-pose-ros detect`: hands in images, folders of images or videos, written as JSON.

Output schema (one entry per image or video frame, in input order):

    {"images": [{"file", "width", "height", ["frame",] "hands": [{
        "id", "handedness" ("left"/"right", anatomical), "handedness_score", "score",
        "keypoints_2d" (21 x [x, y] px), "keypoints_3d" (21 x [x, y, z] m, hand-centric),
        "keypoints_camera" (21 x [x, y, z] m in the camera optical frame, or null),
        "keypoints_mano" (21 x [x, y, z] m, dex-retargeting's MANO wrist frame, or null),
        "joint_angles" (20 radians, hand_pose_msgs/Hand JOINT_ANGLE_NAMES order, or null),
        "palm_normal" ([x, y, z] unit, camera optical axes, or null),
        "gesture" (name or null)}]}]}

Folder entries are named relative to the folder given (searched recursively); video frames
are named by the video path and carry their 0-based "frame" index.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
import logging
import math
from pathlib import Path
import sys

import cv2
from hand_pose_ros.cli.arguments import add_setting_arguments, given_settings
from hand_pose_ros.cli.output import run_or_exit, write_json
from hand_pose_ros.core.inputs.frames import (
    IMAGE_SUFFIXES,
    list_images,
    read_image,
    video_frame_count,
    video_frames,
    VIDEO_SUFFIXES,
)
from hand_pose_ros.core.options import (
    BASE_SPECS,
    tracker_options,
    TRACKER_SPECS,
    TrackerOptions,
)
from hand_pose_ros.core.results import CameraIntrinsics, FrameResult, HandResult
from hand_pose_ros.core.tracker_protocol import Tracker
from hand_pose_ros.core.validity import camera_valid
import numpy as np

_LOG = logging.getLogger(__name__)

PROGRESS_MIN_FRAMES = 10
FRAME_PERIOD_S = 1.0 / 30.0
TRACKERS = ('core', 'mediapipe')


@dataclass
class Source:
    """One input item: an image file, or one video file (many frames)."""

    path: Path
    name: str
    video: bool


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='hand-pose-ros detect',
        description='Detect hands in images, folders of images or videos; write JSON.')
    parser.add_argument('paths', nargs='+', type=Path, metavar='PATH',
                        help='image, folder of images (recursive) or video')
    parser.add_argument('--json', required=True, type=Path, metavar='OUT',
                        help="output JSON file ('-' for stdout)")
    parser.add_argument('--camera', type=_parse_camera, default=None, metavar='FX,FY,CX,CY',
                        help='pinhole intrinsics (px): adds keypoints_camera')
    parser.add_argument('--depth', type=Path, default=None, metavar='PATH',
                        help='registered depth for --camera: a file (16-bit PNG in mm or .npy '
                             'float metres) or a folder of them named like the images')
    parser.add_argument('--tracker', choices=TRACKERS, default='core',
                        help="'core': the pipeline of this package; 'mediapipe': official "
                             'MediaPipe Tasks (the reference; needs the mediapipe extra) with '
                             'the same settings; detection_tiles, landmark_refinement and the '
                             'runtime settings do not apply to it')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    add_setting_arguments(parser, BASE_SPECS + TRACKER_SPECS)
    return parser


def _parse_camera(text: str) -> CameraIntrinsics:
    try:
        fx, fy, cx, cy = (float(v) for v in text.split(','))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'--camera wants fx,fy,cx,cy (four numbers), got {text!r}') from None
    if not (fx > 0 and fy > 0):
        raise argparse.ArgumentTypeError(f'--camera focal lengths must be > 0, got {text!r}')
    return CameraIntrinsics(fx, fy, cx, cy)


def collect_sources(paths: Sequence[Path]) -> list[Source]:
    """Expand folders (sorted, recursive); keep files in the order given."""
    sources = []
    for path in paths:
        if path.is_dir():
            files = list_images(path)
            if not files:
                raise ValueError(f'folder {path} holds no images')
            sources += [Source(p, p.relative_to(path).as_posix(), False) for p in files]
        elif path.is_file():
            suffix = path.suffix.lower()
            if suffix in VIDEO_SUFFIXES:
                sources.append(Source(path, str(path), True))
            elif suffix in IMAGE_SUFFIXES:
                sources.append(Source(path, str(path), False))
            else:
                raise ValueError(f'{path}: not a known image or video type')
        else:
            raise ValueError(f'{path} does not exist')
    return sources


def count_frames(sources: Sequence[Source]) -> int:
    return sum(video_frame_count(src.path) if src.video else 1 for src in sources)


def iter_frames(sources: Sequence[Source]) -> Iterator[tuple[Source, int | None, np.ndarray]]:
    """(source, frame index or None, RGB image) for every image and video frame."""
    for src in sources:
        if not src.video:
            image = read_image(src.path)
            if image is None:
                raise ValueError(f'{src.path}: cannot read image')
            yield src, None, image
            continue
        for index, frame in enumerate(video_frames(src.path)):
            yield src, index, frame


def load_depth(path: Path) -> np.ndarray:
    """Depth as float32 metres (0 invalid) from a 16-bit PNG in mm or a .npy in metres."""
    if path.suffix.lower() == '.npy':
        depth = np.load(path)
        if depth.ndim != 2 or not np.issubdtype(depth.dtype, np.floating):
            raise ValueError(f'{path}: expected a 2D float array of metres, got '
                             f'{depth.dtype} {depth.shape}')
        return np.nan_to_num(depth.astype(np.float32), nan=0.0)
    depth = cv2.imread(str(path), cv2.IMREAD_ANYDEPTH)
    if depth is None or depth.dtype != np.uint16 or depth.ndim != 2:
        raise ValueError(f'{path}: expected a single-channel 16-bit PNG in millimetres')
    return depth.astype(np.float32) / 1000.0


class DepthLookup:
    """
    Depth per frame from --depth.

    One file for every frame (read once), or a folder of files named like the images (video
    frames: <stem>_<frame:06d>).
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.fixed = load_depth(path) if path is not None and path.is_file() else None

    def __call__(self, src: Source, frame: int | None) -> np.ndarray | None:
        if self.path is None or self.fixed is not None:
            return self.fixed
        stem = src.path.stem if frame is None else f'{src.path.stem}_{frame:06d}'
        for suffix in ('.png', '.npy'):
            candidate = self.path / f'{stem}{suffix}'
            if candidate.is_file():
                return load_depth(candidate)
        _LOG.warning('no depth for %s in %s', stem, self.path)
        return None


def _round(values: np.ndarray, digits: int) -> list:
    return np.round(np.asarray(values, dtype=np.float64), digits).tolist()


def _maybe(values: np.ndarray | None, digits: int) -> list | None:
    return None if values is None else _round(values, digits)


def hand_to_json(hand: HandResult) -> dict:
    camera = hand.camera
    return {
        'id': int(hand.id),
        'handedness': hand.handedness,
        'handedness_score': round(float(hand.handedness_score), 5),
        # The mediapipe reference tracker has no presence score (NaN): JSON gets null.
        'score': None if math.isnan(hand.score) else round(float(hand.score), 5),
        'keypoints_2d': _round(hand.keypoints[:, :2], 3),
        'keypoints_3d': _round(hand.world, 5),
        'keypoints_camera': (_round(camera.keypoints, 5)
                             if camera_valid(hand) else None),
        'keypoints_mano': _maybe(hand.keypoints_mano, 5),
        'joint_angles': _maybe(hand.joint_angles, 5),
        'palm_normal': _maybe(hand.palm_normal, 5),
        'gesture': hand.gesture.name if hand.gesture is not None else None,
    }


def frame_to_json(name: str, frame: int | None, result: FrameResult) -> dict:
    entry: dict = {'file': name, 'width': int(result.width), 'height': int(result.height)}
    if frame is not None:
        entry['frame'] = frame
    entry['hands'] = [hand_to_json(h) for h in result.hands]
    return entry


def _make_tracker(args: argparse.Namespace, options: TrackerOptions) -> Tracker:
    if args.tracker == 'mediapipe':
        from hand_pose_ros.core.mediapipe_tracker import MediaPipeTasksTracker
        return MediaPipeTasksTracker(options)
    from hand_pose_ros.core.tracker import HandTracker
    return HandTracker(options)


def run(args: argparse.Namespace) -> dict:
    """Process every input; returns the JSON document."""
    options = tracker_options(given_settings(args, BASE_SPECS + TRACKER_SPECS))
    sources = collect_sources(args.paths)
    depth = DepthLookup(args.depth if args.camera is not None else None)
    tracker = _make_tracker(args, options)
    total = count_frames(sources)
    from tqdm import tqdm
    bar = tqdm(total=total, unit='frame', file=sys.stderr,
               disable=args.no_progress or total < PROGRESS_MIN_FRAMES)
    images = []
    try:
        for k, (src, frame, image) in enumerate(iter_frames(sources)):
            result = tracker.process(image, 'rgb', camera=args.camera, depth=depth(src, frame),
                                     timestamp=k * FRAME_PERIOD_S)
            images.append(frame_to_json(src.name, frame, result))
            bar.update(1)
    finally:
        bar.close()
        tracker.close()
    return {'images': images}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.depth is not None and args.camera is None:
        parser.error('--depth needs --camera')
    document = run_or_exit(parser, 'detect', run, args)
    hands = sum(len(e['hands']) for e in document['images'])
    write_json(args.json, document, f'{len(document["images"])} images, {hands} hands')
    return 0
