"""
`hand-pose-ros eval-hands`: how well hands MediaPipe misses are found, per tracker setting.

Every measurement runs once per column (a named set of tracker settings) and model, so a
new option (e.g. a body-guided ROI source) is one more `--column`. Parts:

* size: SYNTHETIC frames with each annotated shared hand scaled to a given length and
  pasted (with its photo around it) into a larger frame over a neutral or blurred-photo
  background: recall and PCK@0.2 against hand size.
* pairs: SYNTHETIC interacting hands, each annotated hand beside its mirror image (the
  other side) at a given overlap: hands found with the correct side.
* false: hands reported on hand-free images with faces and people (crops of the shared body
  and motion photos around heads and torsos, away from every labelled wrist and hand).
* twohands: real interacting hands, the motion frames where MediaPipe's golden run found
  two: golden hands found (true second hands kept).
* gestures: the annotated photos whose hand shows a pointing or open-palm gesture, scaled
  down as if seen from further away: gesture still recognised, against hand size.
* wrists: real body photos (shared/data/bodies): fraction of labelled wrists with a hand
  found within one forearm length, by forearm length.
* degrade: the annotated photos as robot cameras see them (grey, IR-like, dark with sensor
  noise, motion blur, JPEG), recall and PCK@0.2 per degradation and level; the column
  `mediapipe` is official MediaPipe (the Tasks HandLandmarker, static mode) for reference.
* blurburst: the motion sequences as streams (VIDEO mode, tracking on) with a burst of
  motion blur (BURST frames, one random direction per burst) in the middle: golden hands
  found on the blurred frames, on the frames just after them (recovery) and overall.
* timing: time per frame of each column, static (the annotated and the body photos) and
  tracking (the motion sequences as streams), the columns interleaved frame by frame so
  machine load hits them alike; ratios to the first column are the meaningful output.

pairs, false and twohands take --half: a fixed tuning or report half of their images, or
both apart with second hands kept and false hands per half (tools/eval_halves.py); the
extra-hand checks' thresholds are tuned on the tuning half only.

The data are the project's shared photos (../shared/data, or $HAND_POSE_ROS_SHARED).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
import json
import os
from pathlib import Path
import time

import cv2
from hand_pose_ros.core.meaning.gestures import GESTURE_OPEN_PALM, GESTURE_POINTING_UP
from hand_pose_ros.core.options import BaseOptions, RunningMode, SETTINGS, TrackerOptions
from hand_pose_ros.core.results import HandResult
from hand_pose_ros.core.tracker import HandTracker
from hand_pose_ros.core.tracker_protocol import Tracker
from hand_pose_ros.tools.eval_halves import HALVED_PARTS, halves_of, in_half, kept
from hand_pose_ros.tools.shared_data import shared_data_dir
import numpy as np

PARTS = ('size', 'pairs', 'false', 'twohands', 'gestures', 'wrists', 'degrade', 'blurburst',
         'timing')
SIZES = (16, 24, 32, 48, 64, 96, 128, 200)
OVERLAPS = (0.0, 0.15, 0.3, 0.5)
GESTURE_SIZES = (24, 32, 48, 64, 96, 128)
DISTANCE_GESTURES = (GESTURE_POINTING_UP, GESTURE_OPEN_PALM)
# Named columns: tracker settings on top of IMAGE-mode defaults.
COLUMNS = {
    'single': {'detection_tiles': 0, 'landmark_refinement': 0},
    'unchecked': {'check_extra_hands': False},
    'default': {},
    'body': {'body_rois': True},
}
# This column name runs official MediaPipe (the Tasks HandLandmarker), not HandTracker.
MEDIAPIPE = 'mediapipe'
# Degradations of the degrade part and their levels (None: one level). dark: exposure
# factor; blur: motion blur length, px; jpeg: quality.
DEGRADATIONS = {'colour': None, 'grey': None, 'ir': None,
                'dark': (1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125),
                'blur': (0, 5, 10, 15, 20, 30), 'jpeg': (95, 50, 30, 20, 10, 5)}
# Sensor model of the dark frames: full-well electrons at white, read noise (electrons).
FULL_WELL = 4000.0
READ_NOISE = 4.0
# Recall below which a degradation level is reported as the breaking point.
RECALL_FLOOR = 0.8
# blurburst: frames [BURST_START, BURST_START + BURST) of each 48-frame motion sequence
# blurred (a quarter second at 30 Hz), blur lengths in px.
BURST_START = 16
BURST = 8
BURST_LEVELS = (0, 10, 20, 30)
# Every MOTION_STEP-th motion frame in `degrade --degrade-set motion` (neighbours are near
# copies).
MOTION_STEP = 4
FOREARM_BINS = (0.0, 40.0, 80.0, 120.0, 1e9)
# A hand is found (recall) when its mean visible-keypoint error is under this fraction of
# the hand's size, as in the accuracy tests; PCK counts keypoints within 0.2 of it.
MATCH = 0.5
PCK = 0.2
WARMUP = 3  # untimed frames per timing mode


@dataclass
class Annotated:
    """
    One annotated shared hand.

    The photo (BGR), its (21, 3) keypoints with visibility and its size (long side of the
    annotated box).
    """

    file: str
    image: np.ndarray
    truth: np.ndarray
    side: float


def load_annotated(data: Path) -> list[Annotated]:
    entries = json.loads((data / 'hands' / 'annotations.json').read_text())['images']
    out = []
    for entry in entries:
        hand = entry['hands'][0]
        out.append(Annotated(entry['file'], cv2.imread(str(data / 'hands' / entry['file'])),
                             np.asarray(hand['keypoints_2d'], np.float64),
                             float(max(hand['bbox'][2], hand['bbox'][3]))))
    return out


def score_hand(hands: Iterable[HandResult], truth: np.ndarray, side: float
               ) -> tuple[HandResult | None, float]:
    """(best matching hand or None, its PCK@0.2 or 0)."""
    visible = truth[:, 2] > 0
    best, best_err = None, np.inf
    for hand in hands:
        err = np.linalg.norm(hand.keypoints[:, :2] - truth[:, :2], axis=1)[visible]
        if err.mean() < best_err:
            best, best_err, errors = hand, err.mean(), err
    if best is None or best_err >= MATCH * side:
        return None, 0.0
    return best, float((errors < PCK * side).mean())


def golden_motion(data: Path) -> dict[str, list[list[np.ndarray]]]:
    """Return, per motion sequence and frame, the golden video hands: (21, 2) normalized."""
    golden = json.loads((data / 'motion' / 'golden_mediapipe_video.json').read_text())
    out = {}
    for seq, frames in golden['sequences'].items():
        frames = frames['frames'] if isinstance(frames, dict) else frames
        out[seq] = [[np.asarray(hand['landmarks_norm'])[:, :2] for hand in frame.get('hands', [])]
                    for frame in frames]
    return out


def pixel_truths(hands: list[np.ndarray], width: int, height: int
                 ) -> list[tuple[np.ndarray, float]]:
    """Return golden hands in pixels: (truth (21, 3), every keypoint visible; hand size)."""
    out = []
    for norm in hands:
        truth = np.ones((21, 3))
        truth[:, :2] = norm * (width, height)
        out.append((truth, float(np.ptp(truth[:, :2], axis=0).max())))
    return out


def place(image: np.ndarray, truth: np.ndarray, side: float, target: float,
          frame_size: tuple[int, int], background: np.ndarray, rng: np.random.Generator,
          flip: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """
    Paste the photo scaled so its hand is `target` px long at a random place.

    The hand lands at a random place in the frame, over `background`; returns (frame,
    moved truth). Only the photo's pixels within
    1.5 hand sizes of the hand are pasted, so a large photo does not hide the background.
    """
    width, height = frame_size
    scale = target / side
    lo, hi = truth[:, :2].min(axis=0), truth[:, :2].max(axis=0)
    centre = (lo + hi) / 2
    margin = np.array([0.6 * target, 0.6 * target])
    half = (hi - lo) * scale / 2
    room_lo = half + 1.0
    room_hi = np.array([width, height]) - half - 1.0
    dest = np.array([rng.uniform(room_lo[0], max(room_lo[0], room_hi[0])),
                     rng.uniform(room_lo[1], max(room_lo[1], room_hi[1]))])
    sx = -scale if flip else scale
    affine = np.array([[sx, 0.0, dest[0] - sx * centre[0]],
                       [0.0, scale, dest[1] - scale * centre[1]]])
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    warped = cv2.warpAffine(image, affine, (width, height), flags=interp)
    mask = np.zeros((height, width), np.float32)
    x0, y0 = (dest - half - margin).astype(int)
    x1, y1 = (dest + half + margin).astype(int)
    mask[max(0, y0):max(0, y1), max(0, x0):max(0, x1)] = 1.0
    inside = cv2.warpAffine(np.ones(image.shape[:2], np.float32), affine, (width, height))
    mask = cv2.GaussianBlur(mask * inside, (0, 0), max(1.0, 0.05 * target))[:, :, None]
    frame = (warped * mask + background * (1.0 - mask)).astype(np.uint8)
    moved = truth.copy()
    moved[:, :2] = truth[:, :2] @ affine[:, :2].T + affine[:, 2]
    return frame, moved


def make_background(kind: str, image: np.ndarray, frame_size: tuple[int, int]) -> np.ndarray:
    width, height = frame_size
    if kind == 'neutral':
        return np.full((height, width, 3), 128, np.uint8)
    return cv2.GaussianBlur(cv2.resize(image, (width, height)), (0, 0), 25)


def column_settings(args: argparse.Namespace) -> dict[str, dict]:
    """Return the columns to measure: name -> its tracker settings (--column, else COLUMNS)."""
    return dict(args.column or COLUMNS.items())


def make_tracker(column: str, model: str, mode: RunningMode, settings: dict) -> Tracker:
    """
    Build a column's tracker: official MediaPipe for the `mediapipe` column, else ours.

    Options are built for `mode`: the mode-dependent defaults (e.g. detection tiles) are
    resolved at construction, so another mode's options switched over would keep its own.
    """
    options = TrackerOptions(base=BaseOptions(model=model), running_mode=mode
                             ).replace(**settings)
    if column == MEDIAPIPE:
        from hand_pose_ros.core.mediapipe_tracker import MediaPipeTasksTracker
        return MediaPipeTasksTracker(options)
    return HandTracker(options)


@dataclass
class Context:
    """What every part needs: the trackers per (column, model), the data, the options."""

    trackers: dict[tuple[str, str], Tracker]
    data: Path
    annotated: list[Annotated]
    args: argparse.Namespace
    progress: Callable[[Iterable, str], Iterable] = field(default=lambda it, _: it)

    def run(self, key: tuple[str, str], image: np.ndarray) -> list[HandResult]:
        if self.args.grey:  # as a mono camera sends it
            return self.trackers[key].process(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY),
                                              'mono').hands
        return self.trackers[key].process(image, 'bgr').hands


def part_size(ctx: Context) -> dict:
    """Recall and PCK@0.2 per hand size, frame size and background."""
    out: dict = {}
    for frame_size in ctx.args.frame:
        for background in ctx.args.background:
            label = f'{frame_size[0]}x{frame_size[1]} {background}'
            rows = {}
            for target in ctx.progress(ctx.args.sizes, f'size {label}'):
                rng = np.random.default_rng(target)
                scores = {key: [] for key in ctx.trackers}
                for item in ctx.annotated:
                    bg = make_background(background, item.image, frame_size)
                    frame, moved = place(item.image, item.truth, item.side, target, frame_size,
                                         bg, rng)
                    for key in ctx.trackers:
                        hand, pck = score_hand(ctx.run(key, frame), moved, target)
                        scores[key].append((hand is not None, pck))
                rows[target] = {f'{c}/{m}': [float(np.mean([s[0] for s in v])),
                                             float(np.mean([s[1] for s in v]))]
                                for (c, m), v in scores.items()}
            out[label] = rows
    return out


def part_pairs(ctx: Context) -> dict:
    """
    Count interacting pairs found with their sides, by overlap.

    Each annotated hand (1.5x its size around it) beside its mirror image, hands 160 px
    long in a 640x480 frame over the blurred photo; the mirror copy is drawn over the
    original, overlapping it by a fraction of the hand's width. A hand counts when found
    (PCK-style match) with its side: the original's side is the label the tracker gives the
    original photo, the mirror image's the other.
    """
    target, width, height = 160.0, 640, 480
    items = [item for item in ctx.annotated if in_half(item.file, ctx.args.half)]
    out: dict = {}
    for key in ctx.trackers:
        reference = {}
        for item in items:
            hand, _ = score_hand(ctx.run(key, item.image), item.truth, item.side)
            reference[item.file] = hand.handedness if hand is not None else None
        out[key] = (reference, {})
    rows: dict = {}
    for overlap in ctx.progress(ctx.args.overlaps, 'pairs'):
        counts = dict.fromkeys(ctx.trackers, 0)
        total = 0
        for item in items:
            scale = target / item.side
            lo, hi = item.truth[:, :2].min(axis=0), item.truth[:, :2].max(axis=0)
            hand_w = (hi[0] - lo[0]) * scale
            bg = make_background('photo', item.image, (width, height))
            cx = width / 2 - (1 - overlap) * hand_w / 2
            first, truth_a = _paste_at(item, scale, (cx, height / 2), bg, False)
            frame, truth_b = _paste_at(item, scale, (cx + (1 - overlap) * hand_w, height / 2),
                                       first, True)
            for key in ctx.trackers:
                side = out[key][0][item.file]
                if side is None:
                    continue
                hands = ctx.run(key, frame)
                other = 'left' if side == 'right' else 'right'
                for truth, expected in ((truth_a, side), (truth_b, other)):
                    hand, _ = score_hand(hands, truth, target)
                    counts[key] += hand is not None and hand.handedness == expected
            total += 2
        rows[overlap] = {'of': total, **{f'{c}/{m}': n for (c, m), n in counts.items()}}
    return rows


def _paste_at(item: Annotated, scale: float, centre: tuple[float, float], background,
              flip: bool) -> tuple[np.ndarray, np.ndarray]:
    """
    Paste the photo around its hand (1.5 hand sizes), scaled, its box centre at `centre`.

    Mirrored if flip; returns (frame, moved truth).
    """
    height, width = background.shape[:2]
    lo, hi = item.truth[:, :2].min(axis=0), item.truth[:, :2].max(axis=0)
    mid = (lo + hi) / 2
    sx = -scale if flip else scale
    affine = np.array([[sx, 0.0, centre[0] - sx * mid[0]],
                       [0.0, scale, centre[1] - scale * mid[1]]])
    warped = cv2.warpAffine(item.image, affine, (width, height), flags=cv2.INTER_AREA)
    # The pasted region: the hand's keypoint hull grown by a quarter of its size, so the
    # mirror copy covers the original hand where they overlap, not a whole photo.
    moved = item.truth.copy()
    moved[:, :2] = item.truth[:, :2] @ affine[:, :2].T + affine[:, 2]
    mask = np.zeros((height, width), np.uint8)
    hull = cv2.convexHull(moved[:, :2].astype(np.float32)).astype(np.int32)
    cv2.fillConvexPoly(mask, hull, 255)
    grow = max(3, int(0.25 * scale * item.side))
    mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (grow, grow)))
    alpha = cv2.GaussianBlur(mask.astype(np.float32) / 255, (0, 0), 2.0)[:, :, None]
    frame = (warped * alpha + background * (1 - alpha)).astype(np.uint8)
    return frame, moved


def hand_free_images(data: Path) -> list[tuple[str, np.ndarray]]:
    """
    Crops of the shared body and motion photos with faces and bodies but no hand.

    Bodies: per labelled person with both shoulders, a head crop (above the shoulders, 2
    shoulder widths wide) and a torso crop (shoulders to 2.5 shoulder widths down), each
    kept only when no labelled wrist of anyone lies within 1.2 forearm lengths (a hand
    reaches about 0.7 forearm lengths past the wrist). Motion seq1 (a signing woman): the
    head above her hands (from MediaPipe's golden landmarks) on every 8th frame. Every crop
    is also checked by eye in the report's montage (docs/hand_free.jpg).
    """
    out = []
    bodies = json.loads((data / 'bodies' / 'annotations.json').read_text())['images']
    for entry in bodies:
        image = cv2.imread(str(data / 'bodies' / entry['file']))
        wrists = []
        for person in entry['people']:
            reach = 1.2 * (person.get('forearm_px') or 100.0)
            for side in ('left', 'right'):
                x, y, v = person[f'{side}_wrist']
                if v:
                    wrists.append((x, y, reach))
        for n, person in enumerate(entry['people']):
            ls, rs = person['left_shoulder'], person['right_shoulder']
            if not (ls[2] and rs[2]):
                continue
            sw = float(np.hypot(ls[0] - rs[0], ls[1] - rs[1]))
            if sw < 30:
                continue
            mx, my = (ls[0] + rs[0]) / 2, (ls[1] + rs[1]) / 2
            for name, box in (('head', (mx - sw, my - 1.8 * sw, mx + sw, my + 0.1 * sw)),
                              ('torso', (mx - 0.8 * sw, my, mx + 0.8 * sw, my + 2.5 * sw))):
                x0, y0, x1, y1 = (int(round(v)) for v in box)
                x0, y0 = max(0, x0), max(0, y0)
                x1, y1 = min(image.shape[1], x1), min(image.shape[0], y1)
                if x1 - x0 < 40 or y1 - y0 < 40:
                    continue
                if any(x0 - r < wx < x1 + r and y0 - r < wy < y1 + r for wx, wy, r in wrists):
                    continue
                out.append((f'{entry["file"]}#{n}-{name}', image[y0:y1, x0:x1].copy()))
    for k, hands in enumerate(golden_motion(data)['seq1']):
        if k % 8:
            continue
        image = cv2.imread(str(data / 'motion' / 'seq1' / f'{k:04d}.jpg'))
        height, width = image.shape[:2]
        top = min([float(h[:, 1].min()) for h in hands] + [1.0]) * height
        bottom = int(min(top - 0.05 * height, 0.45 * height))
        out.append((f'motion/seq1/{k:04d}-head', image[:bottom, width // 4:3 * width // 4]
                    .copy()))
    return out


def inpainted_photos(annotated: list[Annotated]) -> list[tuple[str, np.ndarray]]:
    """
    Return the annotated photos with their one hand inpainted away.

    The keypoint hull is grown by a third of the hand's size; Panoptic is excluded (other
    people's hands are in it).
    """
    out = []
    for item in annotated:
        if item.file.startswith('panoptic'):
            continue
        mask = np.zeros(item.image.shape[:2], np.uint8)
        hull = cv2.convexHull(item.truth[:, :2].astype(np.float32)).astype(np.int32)
        cv2.fillConvexPoly(mask, hull, 255)
        grow = max(3, int(0.66 * item.side)) | 1
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (grow, grow)))
        out.append((f'{item.file}-inpainted', cv2.inpaint(item.image, mask, 5,
                                                          cv2.INPAINT_TELEA)))
    return out


def _framed(crop: np.ndarray, height: int, size: tuple[int, int]) -> np.ndarray:
    """Scale the crop to `height` px tall, centred in a neutral frame of `size`."""
    width, frame_h = size
    scale = height / crop.shape[0]
    small = cv2.resize(crop, None, fx=scale, fy=scale,
                       interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    small = small[:frame_h, :width]
    frame = np.full((frame_h, width, 3), 128, np.uint8)
    h, w = small.shape[:2]
    y0, x0 = (frame_h - h) // 2, (width - w) // 2
    frame[y0:y0 + h, x0:x0 + w] = small
    return frame


def _source(crop_name: str) -> str:
    """Return the source photo of a hand-free crop; a motion sequence is one source."""
    if crop_name.startswith('motion/'):
        return '/'.join(crop_name.split('/')[:2])
    return crop_name.split('#')[0]


def hand_free_variants(data: Path, annotated: list[Annotated], half: str = 'all',
                       montage: str | None = None) -> list[tuple[str, np.ndarray]]:
    """
    Return the hand-free frames of part false, named (crops as they are and framed, photos).

    Each body/motion crop as it is and centred in a 1280x720 neutral frame at 120 and 360 px
    tall (people far away and nearer); each inpainted annotated photo resized to 1280x720
    and 640x480. Only `half`'s sources; the crops are saved as a montage when asked.
    """
    images = [(name, crop) for name, crop in hand_free_images(data)
              if in_half(_source(name), half)]
    if montage:
        _montage(images, montage)
    variants = []
    for name, crop in images:
        variants.append((name, crop))
        variants += [(f'{name} at {h} px', _framed(crop, h, (1280, 720))) for h in (120, 360)]
    for name, photo in inpainted_photos([item for item in annotated
                                         if in_half(item.file, half)]):
        variants += [(f'{name} {w}x{h}', cv2.resize(photo, (w, h)))
                     for w, h in ((1280, 720), (640, 480))]
    return variants


def part_false(ctx: Context) -> dict:
    """Count false hands on the hand-free frames (hand_free_variants)."""
    variants = hand_free_variants(ctx.data, ctx.annotated, ctx.args.half, ctx.args.montage)
    counts = dict.fromkeys(ctx.trackers, 0)
    where: dict = {f'{c}/{m}': [] for c, m in ctx.trackers}
    n = 0
    for name, image in ctx.progress(variants, 'false hands'):
        for variant in ('',):
            n += 1
            for key in ctx.trackers:
                hands = ctx.run(key, image)
                counts[key] += len(hands)
                if hands:
                    scores = ' '.join(f'{h.score:.3f}' for h in hands)
                    where[f'{key[0]}/{key[1]}'].append(f'{name} {variant}: {scores}')
    return {'images': n, 'hands': {f'{c}/{m}': v for (c, m), v in counts.items()},
            'where': where}


def part_twohands(ctx: Context) -> dict:
    """
    Count real second hands kept: the motion frames where MediaPipe's golden run has two.

    Each such frame as a photo (IMAGE mode); a golden hand is found when a reported hand's
    mean keypoint error is under half its size. Halves: the first half of each sequence's
    frames is 'tune', the second 'report' (neighbouring frames are near copies, so an
    interleaved split would put the same hands in both).
    """
    jobs = []
    for seq, frames in golden_motion(ctx.data).items():
        for k, hands in enumerate(frames):
            half = 'tune' if k < len(frames) // 2 else 'report'
            if len(hands) == 2 and ctx.args.half in ('all', half):
                jobs.append((seq, k, hands))
    found = dict.fromkeys(ctx.trackers, 0)
    both = dict.fromkeys(ctx.trackers, 0)
    for seq, k, golden_hands in ctx.progress(jobs, 'two hands'):
        image = cv2.imread(str(ctx.data / 'motion' / seq / f'{k:04d}.jpg'))
        height, width = image.shape[:2]
        truths = [truth[:, :2] for truth, _ in pixel_truths(golden_hands, width, height)]
        for key in ctx.trackers:
            hands = ctx.run(key, image)
            hits = sum(any(np.linalg.norm(h.keypoints[:, :2] - t, axis=1).mean()
                           < MATCH * np.ptp(t, axis=0).max() for h in hands) for t in truths)
            found[key] += hits
            both[key] += hits == 2
    return {'frames': len(jobs), 'hands': 2 * len(jobs),
            'found': {f'{c}/{m}': v for (c, m), v in found.items()},
            'frames_with_both': {f'{c}/{m}': v for (c, m), v in both.items()}}


def _montage(images: list[tuple[str, np.ndarray]], path: str) -> None:
    tiles = [cv2.resize(im, (120, int(120 * im.shape[0] / im.shape[1])))[:160]
             for _, im in images]
    tiles = [np.pad(t, ((0, 160 - t.shape[0]), (0, 0), (0, 0))) for t in tiles]
    rows = [np.hstack(tiles[k:k + 10] + [np.zeros((160, 120, 3), np.uint8)]
                      * (10 - len(tiles[k:k + 10]))) for k in range(0, len(tiles), 10)]
    cv2.imwrite(path, np.vstack(rows))


def part_gestures(ctx: Context) -> dict:
    """
    Measure gesture recognition against hand size.

    Per model, the annotated photos whose hand the default column labels with a distance
    gesture at full size; then the same photos with the hand scaled to each size in a
    1280x720 frame over the blurred photo (several random places): gesture recognised.
    """
    rows: dict = {}
    for model in ctx.args.model:
        ref_key = ('default', model) if ('default', model) in ctx.trackers else next(
            k for k in ctx.trackers if k[1] == model)
        refs = []
        for item in ctx.annotated:
            hand, _ = score_hand(ctx.run(ref_key, item.image), item.truth, item.side)
            if hand is not None and hand.gesture and hand.gesture.name in DISTANCE_GESTURES:
                refs.append((item, hand.gesture.name))
        rows[model] = {'references': [f'{i.file}: {g}' for i, g in refs], 'sizes': {}}
        for target in ctx.progress(ctx.args.gesture_sizes, f'gestures {model}'):
            rng = np.random.default_rng(target)
            counts = {k: 0 for k in ctx.trackers if k[1] == model}
            total = 0
            for item, gesture in refs:
                bg = make_background('photo', item.image, (1280, 720))
                for _ in range(3):
                    frame, moved = place(item.image, item.truth, item.side, target,
                                         (1280, 720), bg, rng)
                    total += 1
                    for key in counts:
                        hand, _ = score_hand(ctx.run(key, frame), moved, target)
                        counts[key] += bool(hand is not None and hand.gesture
                                            and hand.gesture.name == gesture)
            rows[model]['sizes'][target] = {'of': total, **{k[0]: v for k, v in counts.items()}}
    return rows


def part_wrists(ctx: Context) -> dict:
    """
    Count labelled wrists with a hand found near them, by forearm length bin.

    Near: the hand's wrist keypoint or keypoint-box centre within one forearm length (that
    side's wrist-elbow distance).
    """
    bodies = json.loads((ctx.data / 'bodies' / 'annotations.json').read_text())['images']
    bins = list(zip(FOREARM_BINS[:-1], FOREARM_BINS[1:]))
    found = {k: [0] * len(bins) for k in ctx.trackers}
    totals = [0] * len(bins)
    for entry in ctx.progress(bodies, 'wrists'):
        image = cv2.imread(str(ctx.data / 'bodies' / entry['file']))
        hands = {k: ctx.run(k, image) for k in ctx.trackers}
        for person in entry['people']:
            for side in ('left', 'right'):
                x, y, v = person[f'{side}_wrist']
                forearm = person[f'{side}_forearm_px']
                if not v or not forearm:
                    continue
                b = next(i for i, (lo, hi) in enumerate(bins) if lo <= forearm < hi)
                totals[b] += 1
                for key, found_hands in hands.items():
                    found[key][b] += any(_near(h, x, y, forearm) for h in found_hands)
    labels = [f'{lo:.0f}-{hi:.0f}' if hi < 1e8 else f'>={lo:.0f}' for lo, hi in bins]
    return {'bins': labels, 'wrists': totals,
            'found': {f'{c}/{m}': v for (c, m), v in found.items()}}


def part_timing(ctx: Context) -> dict:
    """
    Milliseconds per frame per column and model, static and tracking, interleaved.

    Static: every annotated and body photo, each column on the same decoded image in turn
    (the order rotating per image). Tracking: the motion sequences, each column with its
    own VIDEO-mode tracker (the column's settings on top of that mode's defaults), reset
    between sequences. The first WARMUP frames of each mode are not timed. Ratios are of
    mean times against the first column.
    """
    columns = column_settings(ctx.args)
    bodies = json.loads((ctx.data / 'bodies' / 'annotations.json').read_text())['images']
    photos = [item.image for item in ctx.annotated] + [
        cv2.imread(str(ctx.data / 'bodies' / e['file'])) for e in bodies]
    sequences = [[cv2.imread(str(p)) for p in sorted((ctx.data / 'motion' / seq).glob('*.jpg'))]
                 for seq in ('seq0', 'seq1', 'seq2')]
    if ctx.args.grey:  # decoded once, outside the timed calls
        photos = [cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) for image in photos]
        sequences = [[cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) for image in frames]
                     for frames in sequences]
    pixel_format = 'mono' if ctx.args.grey else 'bgr'
    out: dict = {'load_average_start': [round(v, 2) for v in os.getloadavg()]}
    for model in ctx.args.model:
        for mode, streams in (('static', [photos]), ('tracking', sequences)):
            running = RunningMode.IMAGE if mode == 'static' else RunningMode.VIDEO
            trackers = {name: HandTracker(TrackerOptions(
                base=BaseOptions(model=model), running_mode=running).replace(**values))
                for name, values in columns.items()}
            times: dict[str, list[float]] = {name: [] for name in columns}
            hands = dict.fromkeys(columns, 0)
            n = 0
            for frames in streams:
                for tracker in trackers.values():
                    tracker.reset()
                for image in ctx.progress(frames, f'timing {model} {mode}'):
                    names = list(columns)
                    names = names[n % len(names):] + names[:n % len(names)]
                    for name in names:
                        start = time.perf_counter()
                        found = trackers[name].process(image, pixel_format).hands
                        elapsed = time.perf_counter() - start
                        if n >= WARMUP:
                            times[name].append(elapsed * 1e3)
                            hands[name] += len(found)
                    n += 1
            first = next(iter(columns))
            base = float(np.mean(times[first]))
            out[f'{model} {mode}'] = {
                name: {'mean_ms': round(float(np.mean(t)), 1),
                       'median_ms': round(float(np.median(t)), 1),
                       'ratio': round(float(np.mean(t)) / base, 2), 'frames': len(t),
                       'hands': hands[name]}
                for name, t in times.items()}
            for tracker in trackers.values():
                tracker.close()
    out['load_average_end'] = [round(v, 2) for v in os.getloadavg()]
    return out


def degrade(image: np.ndarray, kind: str, level: float | None, rng: np.random.Generator
            ) -> np.ndarray:
    """
    Return a BGR copy of `image` as a robot camera might see it (SYNTHETIC).

    grey: three equal channels (a mono8 camera). ir: grey with an active-IR look, a
    strong gamma (near skin bright, the rest dark), multiplicative speckle and a bright
    projector-dot pattern. dark: linear light times the exposure factor `level`, then shot
    noise (FULL_WELL electrons at white) and read noise, no gain back (a fixed-exposure
    camera in a dim room). blur: a line kernel `level` px long at a random angle. jpeg:
    encoded at quality `level`.
    """
    if kind == 'colour':
        return image
    if kind in ('grey', 'ir'):
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        if kind == 'ir':
            lin = (grey.astype(np.float32) / 255.0) ** 2.2
            speckle = rng.normal(1.0, 0.25, grey.shape).astype(np.float32)
            lin = lin * np.clip(cv2.GaussianBlur(speckle, (0, 0), 0.8), 0.2, None)
            dots = (rng.random(grey.shape) < 0.004).astype(np.float32)
            lin = lin * 1.6 + cv2.GaussianBlur(dots, (0, 0), 0.7) * 2.5
            grey = (np.clip(lin, 0, 1) * 255).astype(np.uint8)
        return cv2.merge([grey, grey, grey])
    if kind == 'dark':
        lin = (image.astype(np.float32) / 255.0) ** 2.2 * float(level)
        electrons = rng.poisson(lin * FULL_WELL).astype(np.float32)
        electrons += rng.normal(0.0, READ_NOISE, image.shape).astype(np.float32)
        return (np.clip(electrons / FULL_WELL, 0, 1) ** (1 / 2.2) * 255).astype(np.uint8)
    if kind == 'blur':
        length = int(level)
        if length < 2:
            return image
        kernel = np.zeros((length, length), np.float32)
        kernel[length // 2, :] = 1.0
        angle = float(rng.uniform(0, 180))
        rot = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), angle, 1.0)
        kernel = cv2.warpAffine(kernel, rot, (length, length))
        return cv2.filter2D(image, -1, kernel / kernel.sum())
    if kind == 'jpeg':
        _, data = cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, int(level)])
        return cv2.imdecode(data, cv2.IMREAD_COLOR)
    raise ValueError(f'unknown degradation {kind!r}')


def _degrade_items(ctx: Context) -> list[tuple[np.ndarray, list[tuple[np.ndarray, float]]]]:
    """
    Return the frames of the degrade part, each with its (truth, hand size) hands.

    --degrade-set photos: the annotated photos; motion: every MOTION_STEP-th frame of the
    motion sequences with MediaPipe's golden colour hands as truth (all keypoints visible).
    """
    if ctx.args.degrade_set == 'photos':
        return [(item.image, [(item.truth, item.side)]) for item in ctx.annotated]
    items = []
    for seq, frames in golden_motion(ctx.data).items():
        for k in range(0, len(frames), MOTION_STEP):
            image = cv2.imread(str(ctx.data / 'motion' / seq / f'{k:04d}.jpg'))
            hands = pixel_truths(frames[k], image.shape[1], image.shape[0])
            if hands:
                items.append((image, hands))
    return items


def part_degrade(ctx: Context) -> dict:
    """
    Recall and PCK@0.2 of each column per degradation and level (--degrade-set frames).

    One random draw (noise, blur angle) per frame and level, the same for every column. For
    each degradation with levels, `below_0.8` is the first level where recall falls below
    RECALL_FLOOR (None when it never does).
    """
    items = _degrade_items(ctx)
    out: dict = {'hands': sum(len(hands) for _, hands in items)}
    for kind in ctx.args.degradations:
        levels = DEGRADATIONS[kind] or (None,)
        rows: dict = {}
        for level in ctx.progress(levels, f'degrade {kind}'):
            scores = {key: [] for key in ctx.trackers}
            for n, (image, hands) in enumerate(items):
                rng = np.random.default_rng([n, list(DEGRADATIONS).index(kind),
                                             int((level or 0) * 1000)])
                frame = degrade(image, kind, level, rng)
                for key in ctx.trackers:
                    found = ctx.run(key, frame)
                    for truth, side in hands:
                        hand, pck = score_hand(found, truth, side)
                        scores[key].append((hand is not None, pck))
            rows[str(level)] = {f'{c}/{m}': [round(float(np.mean([s[0] for s in v])), 3),
                                             round(float(np.mean([s[1] for s in v])), 3)]
                                for (c, m), v in scores.items()}
        entry: dict = {'levels': rows}
        if DEGRADATIONS[kind]:
            entry['below_0.8'] = {
                col: next((lv for lv, r in rows.items() if r[col][0] < RECALL_FLOOR), None)
                for col in rows[str(levels[0])]}
        out[kind] = entry
    return out


def part_blurburst(ctx: Context) -> dict:
    """
    Measure tracking through motion blur, per column and blur length.

    Each sequence is streamed with frames [BURST_START, BURST_START + BURST) blurred `level`
    px along one random direction (a fast move), a new tracker per sequence and level (VIDEO
    mode, 30 Hz timestamps).

    Recall (golden hands found) and PCK@0.2 on the burst frames, on the BURST frames after
    it (does tracking come back at once?) and on all frames.
    """
    columns = column_settings(ctx.args)
    golden = golden_motion(ctx.data)
    spans = {'burst': range(BURST_START, BURST_START + BURST),
             'after': range(BURST_START + BURST, BURST_START + 2 * BURST)}
    out: dict = {'burst_frames': [BURST_START, BURST_START + BURST]}
    for level in ctx.progress(ctx.args.burst_levels, 'blur burst'):
        scores: dict = {}
        for column, model in ctx.trackers:
            rows = scores.setdefault(f'{column}/{model}', {'burst': [], 'after': [], 'all': []})
            for n, (seq, frames) in enumerate(sorted(golden.items())):
                seed = [n, int(level)]
                # A new tracker per stream: MediaPipe's has no reset.
                video = make_tracker(column, model, RunningMode.VIDEO, columns[column])
                try:
                    for k, hands in enumerate(frames):
                        image = cv2.imread(str(ctx.data / 'motion' / seq / f'{k:04d}.jpg'))
                        if k in spans['burst']:  # one direction for the whole burst
                            image = degrade(image, 'blur', level, np.random.default_rng(seed))
                        found = video.process(image, 'bgr', timestamp=k / 30.0).hands
                        for truth, side in pixel_truths(hands, image.shape[1], image.shape[0]):
                            hand, pck = score_hand(found, truth, side)
                            row = [hand is not None, pck]
                            rows['all'].append(row)
                            for span, ks in spans.items():
                                if k in ks:
                                    rows[span].append(row)
                finally:
                    video.close()
        out[str(level)] = {
            col: {span: [round(float(np.mean([r[0] for r in v])), 3),
                         round(float(np.mean([r[1] for r in v])), 3)]
                  for span, v in rows.items()}
            for col, rows in scores.items()}
    return out


def plot_degrade(results: dict, path: Path, frames: str = 'photos') -> None:
    """Recall per degradation level, one panel per degradation, one line per column."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    kinds = [k for k in results if DEGRADATIONS.get(k)]
    fig, axes = plt.subplots(1, len(kinds) + 1, figsize=(4 * (len(kinds) + 1), 3.8))
    labels = {'dark': 'exposure factor', 'blur': 'motion blur, px', 'jpeg': 'JPEG quality'}
    for ax, kind in zip(axes[1:], kinds):
        rows = results[kind]['levels']
        xs = [float(x) for x in rows]
        for col in rows[next(iter(rows))]:
            ax.plot(range(len(xs)), [rows[x][col][0] for x in rows], marker='o',
                    ls='--' if col.startswith(MEDIAPIPE) else '-', label=col)
        ax.set_xticks(range(len(xs)), [f'{x:g}' for x in xs])
        ax.set_xlabel(labels.get(kind, kind))
        ax.set_ylim(0, 1.02)
        ax.axhline(RECALL_FLOOR, color='grey', lw=0.8, ls=':')
        ax.grid(True, alpha=0.3)
    single = [k for k in ('colour', 'grey', 'ir') if k in results]
    if single:
        cols = list(results[single[0]]['levels']['None'])
        width = 0.8 / len(cols)
        for n, col in enumerate(cols):
            axes[0].bar([i + n * width for i in range(len(single))],
                        [results[k]['levels']['None'][col][0] for k in single], width,
                        label=col)
        axes[0].set_xticks([i + 0.4 - width / 2 for i in range(len(single))], single)
        axes[0].set_ylim(0, 1.02)
        axes[0].axhline(RECALL_FLOOR, color='grey', lw=0.8, ls=':')
    what = ('the annotated shared photos' if frames == 'photos'
            else "the motion frames (MediaPipe's colour hands as truth)")
    axes[0].set_ylabel(f'recall, {results.get("hands", "")} hands')
    axes[0].legend(fontsize=7)
    fig.suptitle(f'SYNTHETIC degradations of {what}: this package (static defaults) vs '
                 'official MediaPipe')
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _near(hand: HandResult, x: float, y: float, radius: float) -> bool:
    points = hand.keypoints[:, :2]
    centre = (points.min(axis=0) + points.max(axis=0)) / 2
    return min(np.hypot(*(points[0] - (x, y))), np.hypot(*(centre - (x, y)))) <= radius


def _column(text: str) -> tuple[str, dict]:
    """NAME or NAME:setting=value,setting=value."""
    name, _, rest = text.partition(':')
    values = {}
    for item in filter(None, rest.split(',')):
        key, _, raw = item.partition('=')
        if key not in SETTINGS:
            raise argparse.ArgumentTypeError(f'{key} is not a tracker setting')
        values[key] = json.loads(raw) if raw not in ('lite', 'full') else raw
    if not rest and name in COLUMNS:
        values = COLUMNS[name]
    return name, values


def _frame(text: str) -> tuple[int, int]:
    width, _, height = text.partition('x')
    return int(width), int(height)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='hand-pose-ros eval-hands', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--part', nargs='+', choices=PARTS, default=list(PARTS))
    parser.add_argument('--model', nargs='+', choices=('full', 'lite'), default=['full', 'lite'])
    parser.add_argument('--column', type=_column, action='append', default=None,
                        help='NAME[:setting=value,...] (repeat); built in: '
                             + ', '.join(f'{k} {v or "(defaults)"}' for k, v in COLUMNS.items())
                             + f'; {MEDIAPIPE}: official MediaPipe (Tasks, static mode)')
    parser.add_argument('--sizes', type=int, nargs='+', default=list(SIZES))
    parser.add_argument('--gesture-sizes', type=int, nargs='+', default=list(GESTURE_SIZES))
    parser.add_argument('--overlaps', type=float, nargs='+', default=list(OVERLAPS))
    parser.add_argument('--frame', type=_frame, nargs='+', default=[(1280, 720)])
    parser.add_argument('--background', nargs='+', choices=('neutral', 'photo'),
                        default=['photo'])
    parser.add_argument('--degradations', nargs='+', choices=tuple(DEGRADATIONS),
                        default=list(DEGRADATIONS))
    parser.add_argument('--degrade-set', choices=('photos', 'motion'), default='photos',
                        help='degrade: the annotated photos, or the motion frames with '
                             "MediaPipe's golden colour hands as truth")
    parser.add_argument('--burst-levels', nargs='+', type=int, default=list(BURST_LEVELS),
                        help='blurburst: blur lengths of the burst, px (0 = no blur)')
    parser.add_argument('--degrade-plot', type=Path, default=None,
                        help='degradation curves (recall per level) as an image')
    parser.add_argument('--half', choices=('all', 'tune', 'report', 'both'), default='all',
                        help='pairs, false and twohands on one half of their images only '
                             '(tune a check on one, report on the other; both: each half '
                             'apart, with second hands kept and false hands per half)')
    parser.add_argument('--grey', action='store_true',
                        help='every frame of every part converted to grey (mono8) first')
    parser.add_argument('--json', type=Path, default=None, help='write the results here')
    parser.add_argument('--plot', type=Path, default=None,
                        help='size curve (recall and PCK@0.2 vs hand size) as an image')
    parser.add_argument('--montage', default=None, help='save the hand-free crops here')
    parser.add_argument('--data', type=Path, default=None, help='shared data folder')
    return parser


def plot_size(size: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    styles = ('-', '--', ':', '-.')
    for label, rows in size.items():
        rows = {int(k): v for k, v in rows.items()}  # str keys when read back from JSON
        sizes = sorted(rows)
        for n, col in enumerate(rows[sizes[0]]):
            # Columns drawn in order, later ones dashed and thinner so that identical
            # curves (e.g. body_rois on hands without a body) stay visible.
            for ax, index, name in ((axes[0], 0, 'recall'), (axes[1], 1, 'PCK@0.2')):
                ax.plot(sizes, [rows[s][col][index] for s in sizes], marker='o',
                        ls=styles[n // 2 % len(styles)], lw=2.5 - 0.6 * (n // 2),
                        label=f'{col} ({label})')
                ax.set_xscale('log')
                ax.set_xticks(sizes, [str(s) for s in sizes])
                ax.minorticks_off()
                ax.set_xlabel('hand size, px (long side of the keypoint box)')
                ax.set_ylabel(name)
                ax.set_ylim(0, 1)
                ax.grid(True, alpha=0.3)
    axes[1].axhline(0.5, color='grey', lw=0.8, ls='--')
    axes[1].legend(fontsize=7)
    fig.suptitle('SYNTHETIC: the 19 annotated shared hands scaled into a larger frame')
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(list(argv))
    columns = column_settings(args)
    try:
        from tqdm import tqdm

        def progress(it, desc):
            return tqdm(list(it), desc=desc, leave=False)
    except ImportError:  # tqdm is optional
        def progress(it, desc):
            return it
    data = args.data or shared_data_dir()
    trackers = {(name, model): make_tracker(name, model, RunningMode.IMAGE, values)
                for name, values in columns.items() for model in args.model}
    ctx = Context(trackers, data, load_annotated(data), args, progress)
    parts = {'size': part_size, 'pairs': part_pairs, 'false': part_false,
             'twohands': part_twohands, 'gestures': part_gestures, 'wrists': part_wrists,
             'degrade': part_degrade, 'blurburst': part_blurburst,
             'timing': part_timing}
    results: dict = {'columns': columns}
    halved = [p for p in args.part if p in HALVED_PARTS]
    for part in args.part:
        if part in HALVED_PARTS:
            continue
        start = time.perf_counter()
        results[part] = parts[part](ctx)
        results[part + '_seconds'] = round(time.perf_counter() - start, 1)
        print(json.dumps({part: results[part]}, indent=1, default=str), flush=True)
    choice = args.half
    for half in halves_of(choice) if halved else ():
        ctx.args.half = half
        out = results.setdefault(half, {}) if choice == 'both' else results
        for part in halved:
            start = time.perf_counter()
            out[part] = parts[part](ctx)
            out[part + '_seconds'] = round(time.perf_counter() - start, 1)
            print(json.dumps({half: {part: out[part]}}, indent=1, default=str), flush=True)
        out['kept'] = kept(out)
        print(json.dumps({half: {'kept': out['kept']}}, indent=1), flush=True)
    ctx.args.half = choice
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    if args.plot and 'size' in results:
        plot_size(results['size'], args.plot)
    if args.degrade_plot and 'degrade' in results:
        plot_degrade(results['degrade'], args.degrade_plot, args.degrade_set)
    for tracker in trackers.values():
        tracker.close()
    return 0
