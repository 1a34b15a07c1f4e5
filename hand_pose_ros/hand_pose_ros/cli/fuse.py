"""
`hand-pose-ros fuse`: synchronized videos (or image folders) of calibrated cameras, one hand.

Each input is one camera, named by its file or folder stem as in the calibration (any subset
of the calibration's cameras). Frame i of every input forms set i; each camera's hands are
found by its own tracker (the same settings flags as `detect`; running mode 'video' unless
given) and fused by core/fusion. Output schema:

    {"calibration", "cameras": [names], "fps",
     "frames": [{"frame": i, "timestamp": s, "hands": [{
        "id", "handedness", "handedness_score",
        "keypoints_world" (21 x [x, y, z] m, the calibration's world frame),
        "keypoint_confidence" (21 values, [0, 1]),
        "cameras" (names that contributed), "keypoint_cameras" (21 lists of names),
        "rejected_cameras", "reprojection_error" ({camera: RMS px}),
        "method" ("triangulation" or "single_view"), "hand_scale", "scale_locked",
        "scale_triangulated"}]}]}

`--contact-sheet PNG --sheet-frame I` also draws set I: each camera's image with its own
detections (green) and the fused hands reprojected (red; orange when single-view).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from pathlib import Path
import sys

import cv2
from hand_pose_ros.cli.arguments import add_setting_arguments, given_settings
from hand_pose_ros.cli.output import run_or_exit, write_json
from hand_pose_ros.core.anatomy import HAND_CONNECTIONS
from hand_pose_ros.core.fusion.calibration import load_rig, Rig
from hand_pose_ros.core.fusion.fuser import FusionOptions, MultiViewFuser
from hand_pose_ros.core.fusion.results import FusedHand, ViewHand
from hand_pose_ros.core.inputs.frames import (
    list_images,
    read_image,
    video_frame_count,
    video_frames,
)
from hand_pose_ros.core.options import BASE_SPECS, tracker_options, TRACKER_SPECS, TrackerOptions
import numpy as np

DEFAULT_FPS = 30.0
PROGRESS_MIN_FRAMES = 10


def camera_name(path: Path) -> str:
    """Name a camera by its video file's stem or its folder's name."""
    return path.name if path.is_dir() else path.stem


def _frames(path: Path) -> Iterator[np.ndarray]:
    if path.is_dir():
        for file in list_images(path):
            image = read_image(file)
            if image is None:
                raise ValueError(f'{file}: cannot read image')
            yield image
    else:
        yield from video_frames(path)


def _count(path: Path) -> int:
    return len(list_images(path)) if path.is_dir() else video_frame_count(path)


def _fps(path: Path) -> float:
    if path.is_dir():
        return DEFAULT_FPS
    cap = cv2.VideoCapture(str(path))
    try:
        fps = float(cap.get(cv2.CAP_PROP_FPS))
    finally:
        cap.release()
    return fps if fps > 0 else DEFAULT_FPS


def check_inputs(paths: Sequence[Path], rig: Rig) -> dict[str, Path]:
    """{camera name: input}; every input must exist and be a camera of the calibration."""
    inputs: dict[str, Path] = {}
    for path in paths:
        if not path.exists():
            raise ValueError(f'{path} does not exist')
        name = camera_name(path)
        if name not in rig:
            raise ValueError(f'{path}: camera {name!r} is not in the calibration '
                             f'({", ".join(sorted(rig))})')
        if name in inputs:
            raise ValueError(f'camera {name!r} given twice ({inputs[name]}, {path})')
        inputs[name] = path
    return inputs


def detect_views(inputs: dict[str, Path], options: TrackerOptions, max_frames: int | None = None,
                 progress: bool = True) -> tuple[list[dict[str, list[ViewHand]]], float]:
    """
    Every camera's hands per synchronized set, and the frame rate.

    One tracker per camera (each keeps its own tracks, as the node does per camera); sets
    end with the shortest input.
    """
    from hand_pose_ros.core.tracker import HandTracker
    from tqdm import tqdm
    fps = _fps(next(iter(inputs.values())))
    total = min(_count(p) for p in inputs.values())
    if max_frames is not None:
        total = min(total, max_frames)
    trackers = {name: HandTracker(options) for name in inputs}
    streams = {name: _frames(path) for name, path in inputs.items()}
    sets: list[dict[str, list[ViewHand]]] = []
    bar = tqdm(total=total * len(inputs), unit='frame', file=sys.stderr,
               disable=not progress or total < PROGRESS_MIN_FRAMES)
    try:
        for index in range(total):
            views = {}
            for name, stream in streams.items():
                image = next(stream, None)
                if image is None:
                    return sets, fps
                result = trackers[name].process(image, 'rgb', timestamp=index / fps)
                views[name] = [ViewHand.from_hand(name, hand) for hand in result.hands]
                bar.update(1)
            sets.append(views)
    finally:
        bar.close()
        for tracker in trackers.values():
            tracker.close()
    return sets, fps


def _round(values: np.ndarray, digits: int) -> list:
    return np.round(np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0),
                    digits).tolist()


def fused_hand_to_json(hand: FusedHand) -> dict:
    return {
        'id': int(hand.id),
        'handedness': hand.handedness,
        'handedness_score': round(float(hand.handedness_score), 4),
        'keypoints_world': _round(hand.keypoints_world, 5),
        'keypoint_confidence': _round(hand.keypoint_confidence, 4),
        'cameras': list(hand.cameras),
        'keypoint_cameras': [list(c) for c in hand.keypoint_cameras],
        'rejected_cameras': list(hand.rejected_cameras),
        'reprojection_error': {k: round(float(v), 3) for k, v in
                               hand.reprojection_error.items()},
        'method': hand.method,
        'hand_scale': round(float(hand.hand_scale), 4),
        'scale_locked': bool(hand.scale_locked),
        'scale_triangulated': bool(hand.scale_triangulated),
    }


def view_to_json(view: ViewHand) -> dict:
    return {'index': int(view.index), 'score': round(float(view.score), 4),
            'handedness': view.handedness,
            'handedness_score': round(float(view.handedness_score), 4),
            'keypoints': _round(view.keypoints, 3),
            'world': None if view.world is None else _round(view.world, 5)}


def view_from_json(camera: str, entry: dict) -> ViewHand:
    world = entry.get('world')
    return ViewHand(camera=camera, keypoints=np.asarray(entry['keypoints'], dtype=np.float64),
                    score=float(entry['score']), handedness=entry['handedness'],
                    handedness_score=float(entry['handedness_score']),
                    world=None if world is None else np.asarray(world, dtype=np.float64),
                    index=int(entry['index']))


SHEET_TILE_HEIGHT = 720  # px per camera image on the contact sheet


def _read_frame(path: Path, index: int) -> np.ndarray | None:
    for k, image in enumerate(_frames(path)):
        if k == index:
            return image
    return None


def _draw(image: np.ndarray, points: np.ndarray, colour: tuple[int, int, int],
          thick: int) -> None:
    if not np.all(np.isfinite(points)):
        return
    pts = np.round(points).astype(int)
    for a, b in HAND_CONNECTIONS:
        cv2.line(image, tuple(pts[a]), tuple(pts[b]), colour, thick, cv2.LINE_AA)


def contact_sheet(inputs: dict[str, Path], rig: Rig, views: dict[str, list[ViewHand]],
                  hands: list[FusedHand], index: int) -> np.ndarray:
    """One row of camera images (RGB): detections in green, fused hands reprojected."""
    tiles = []
    for name, path in inputs.items():
        image = _read_frame(path, index)
        if image is None:
            continue
        image = image.copy()
        thick = max(2, image.shape[0] // 400)
        for view in views.get(name, []):
            _draw(image, view.keypoints, (0, 200, 0), thick)
        for hand in hands:
            colour = (255, 140, 0) if hand.single_view else (230, 30, 30)
            _draw(image, rig[name].project(hand.keypoints_world), colour, thick)
        cv2.putText(image, name, (20, 60), cv2.FONT_HERSHEY_SIMPLEX, 2.0, (255, 255, 255), 4)
        scale = SHEET_TILE_HEIGHT / image.shape[0]
        tiles.append(cv2.resize(image, (round(image.shape[1] * scale), SHEET_TILE_HEIGHT),
                                interpolation=cv2.INTER_AREA))
    if not tiles:
        raise ValueError(f'no camera has frame {index}')
    return np.hstack(tiles)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='hand-pose-ros fuse',
        description='Fuse the hands of synchronized, calibrated cameras into world-frame '
                    'hands; write JSON.')
    parser.add_argument('paths', nargs='+', type=Path, metavar='VIDEO_OR_FOLDER',
                        help='one per camera, named by its stem as in the calibration')
    parser.add_argument('--calibration', required=True, type=Path, metavar='FILE',
                        help='.yaml (cameras: name: K, D, R_world_to_cam, t_world_to_cam, '
                             'width, height) or anipose/Pose2Sim .toml')
    parser.add_argument('--json', required=True, type=Path, metavar='OUT',
                        help="output JSON file ('-' for stdout)")
    parser.add_argument('--max-frames', type=int, default=None, metavar='N',
                        help='fuse only the first N sets')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    parser.add_argument('--contact-sheet', type=Path, default=None, metavar='PNG',
                        help='also draw one set: every camera, its detections (green), the '
                             'fused hands reprojected (red; orange: single-view)')
    parser.add_argument('--sheet-frame', type=int, default=0, metavar='I',
                        help='the set the contact sheet shows (default 0)')
    add_setting_arguments(parser, BASE_SPECS + TRACKER_SPECS)
    return parser


def run(args: argparse.Namespace) -> dict:
    rig = load_rig(args.calibration)
    inputs = check_inputs(args.paths, rig)
    settings = given_settings(args, BASE_SPECS + TRACKER_SPECS)
    settings.setdefault('running_mode', 'video')
    options = tracker_options(settings)
    if args.contact_sheet is not None and args.max_frames is not None and \
            args.sheet_frame >= args.max_frames:
        raise ValueError(f'--sheet-frame {args.sheet_frame} is beyond --max-frames')
    sets, fps = detect_views(inputs, options, args.max_frames, not args.no_progress)
    fuser = MultiViewFuser({name: rig[name] for name in inputs}, FusionOptions(
        hand_scale=options.hand_scale, smoothing=options.smoothing,
        skeleton_lock=options.skeleton_lock, skeleton_lock_frames=options.skeleton_lock_frames))
    frames = []
    for index, views in enumerate(sets):
        result = fuser.process(views, index / fps)
        frames.append({'frame': index, 'timestamp': round(result.timestamp, 6),
                       'hands': [fused_hand_to_json(h) for h in result.hands]})
        if args.contact_sheet is not None and index == args.sheet_frame:
            sheet = contact_sheet(inputs, rig, views, result.hands, index)
            args.contact_sheet.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(args.contact_sheet), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    return {'calibration': str(args.calibration), 'cameras': list(inputs), 'fps': fps,
            'frames': frames}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    document = run_or_exit(parser, 'fuse', run, args)
    hands = sum(len(f['hands']) for f in document['frames'])
    write_json(args.json, document, f'{len(document["frames"])} sets, {hands} fused hands')
    return 0
