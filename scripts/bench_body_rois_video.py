"""
Cost and benefit of ``body_rois`` in VIDEO mode (tracking), per column of settings.

Usage: python scripts/bench_body_rois_video.py [--frames N] [--json PATH]. Streams:

* multiview: the four cameras of ../shared/data/multiview/pose2sim_single (one person at
  about 3 m, hands 50-120 px in 1920-px frames); no hand truth, so it counts hand-frames
  found (of 2 per frame), frames with two hands of one side (one label wrong) and frames
  with two overlapping hands (one hand read twice);
* motion: ../shared/data/motion seq0-2, with MediaPipe's golden video hands as truth:
  golden hands found and reported hands that match none (false or off-target);
* handfree: the hand-free frames of `eval-hands --part false` (faces, bodies, inpainted
  photos; both halves), each as a still stream of HANDFREE_FRAMES frames: hand-frames
  reported (all false).

Each (stream, column) has its own tracker; the columns run frame by frame in turn on the
same decoded frame, so machine load hits them alike and the time ratios to the first column
are the meaningful timing output.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import time

import cv2
from hand_pose_ros.core.detection.doubtful import box_ios, keypoint_box
from hand_pose_ros.core.options import tracker_options
from hand_pose_ros.core.results import HandResult
from hand_pose_ros.core.tracker import HandTracker
from hand_pose_ros.tools.shared_data import shared_data_dir
import numpy as np

COLUMNS = {
    'off': {},
    'body': {'body_rois': True},
    'body_every1': {'body_rois': True, 'body_every_n_frames': 1},
}
# Two hands of one frame whose keypoint boxes overlap this much (intersection over the
# smaller) are one hand read twice.
OVERLAPPING = 0.5
HANDFREE_FRAMES = 10  # one body pass with the default body_every_n_frames 10
MATCH = 0.5  # a golden hand is found when the mean keypoint error is under half its size


def _video(path: Path, frames: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out = []
    while len(out) < frames:
        ok, image = cap.read()
        if not ok:
            break
        out.append(image)
    cap.release()
    return out


def _run(images: list[np.ndarray], fps: float, golden: list[list[np.ndarray]] | None,
         columns: dict[str, dict]) -> dict:
    trackers = {name: HandTracker(tracker_options({'running_mode': 'video', **values}))
                for name, values in columns.items()}
    stats = {name: {'ms': [], 'hands': 0, 'same_side': 0, 'overlapping': 0, 'found': 0,
                    'unmatched': 0}
             for name in columns}
    for k, image in enumerate(images):
        for name, tracker in trackers.items():
            t0 = time.perf_counter()
            hands = tracker.process(image, 'bgr', timestamp=k / fps).hands
            stats[name]['ms'].append((time.perf_counter() - t0) * 1e3)
            _count(stats[name], hands, golden[k] if golden is not None else None)
    for tracker in trackers.values():
        tracker.close()
    return stats


def _count(row: dict, hands: list[HandResult], truths: list[np.ndarray] | None) -> None:
    row['hands'] += len(hands)
    sides = [h.handedness for h in hands]
    row['same_side'] += len(sides) != len(set(sides))
    boxes = [keypoint_box(h.keypoints) for h in hands]
    row['overlapping'] += any(box_ios(a, b) > OVERLAPPING
                              for n, a in enumerate(boxes) for b in boxes[n + 1:])
    if truths is None:
        return

    def near(hand: HandResult, truth: np.ndarray) -> bool:
        err = np.linalg.norm(hand.keypoints[:, :2] - truth, axis=1).mean()
        return bool(err < MATCH * np.ptp(truth, axis=0).max())

    row['found'] += sum(any(near(h, t) for h in hands) for t in truths)
    row['unmatched'] += sum(not any(near(h, t) for t in truths) for h in hands)


def _summary(stats: dict, first: str) -> dict:
    base = float(np.mean(stats[first]['ms']))
    out = {}
    for name, row in stats.items():
        mean = float(np.mean(row['ms']))
        out[name] = {'frames': len(row['ms']), 'mean_ms': round(mean, 1),
                     'median_ms': round(float(np.median(row['ms'])), 1),
                     'ratio': round(mean / base, 2),
                     **{k: v for k, v in row.items() if k != 'ms'}}
    return out


def _merge(total: dict | None, stats: dict) -> dict:
    if total is None:
        return {n: dict(r, ms=list(r['ms'])) for n, r in stats.items()}
    for name, row in stats.items():
        for key, value in row.items():
            total[name][key] += value
    return total


def main() -> None:
    """Run every column on the chosen streams and print (and save) the counts."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--frames', type=int, default=100, help='frames per stream')
    parser.add_argument('--sets', nargs='+', default=['multiview', 'motion'],
                        choices=('multiview', 'motion', 'handfree'))
    parser.add_argument('--json', type=Path, default=None)
    args = parser.parse_args()
    data = shared_data_dir()
    first = next(iter(COLUMNS))
    result: dict = {}
    if 'multiview' in args.sets:
        total = None
        for path in sorted((data / 'multiview' / 'pose2sim_single').glob('*.mp4')):
            fps = cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FPS) or 60.0
            stats = _run(_video(path, args.frames), fps, None, COLUMNS)
            result[f'multiview {path.stem}'] = _summary(stats, first)
            print(path.stem, json.dumps(result[f'multiview {path.stem}']), flush=True)
            total = _merge(total, stats)
        result['multiview all'] = _summary(total, first)
        print('multiview all', json.dumps(result['multiview all']), flush=True)
    if 'motion' in args.sets:
        golden = json.loads((data / 'motion' / 'golden_mediapipe_video.json').read_text())
        total = None
        for seq, frames in sorted(golden['sequences'].items()):
            frames = frames['frames'] if isinstance(frames, dict) else frames
            frames = frames[:args.frames]
            images = [cv2.imread(str(data / 'motion' / seq / f'{k:04d}.jpg'))
                      for k in range(len(frames))]
            height, width = images[0].shape[:2]
            truths = [[np.asarray(h['landmarks_norm'])[:, :2] * (width, height)
                       for h in frame.get('hands', [])] for frame in frames]
            stats = _run(images, 30.0, truths, COLUMNS)
            for row in stats.values():
                row['golden'] = sum(len(t) for t in truths)
            total = _merge(total, stats)
        result['motion all'] = _summary(total, first)
        print('motion all', json.dumps(result['motion all']), flush=True)
    if 'handfree' in args.sets:
        from hand_pose_ros.tools.eval_hands import hand_free_variants, load_annotated
        total = None
        for _, image in hand_free_variants(data, load_annotated(data)):
            stats = _run([image] * HANDFREE_FRAMES, 30.0, None, COLUMNS)
            total = _merge(total, stats)
        result['handfree all'] = _summary(total, first)
        print('handfree all', json.dumps(result['handfree all']), flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == '__main__':
    main()
