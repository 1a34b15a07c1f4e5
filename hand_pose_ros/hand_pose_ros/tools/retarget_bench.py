"""
Time per dex-retargeting solve on tracked hands: what hand_retarget_node adds per frame.

    python -m hand_pose_ros.tools.retarget_bench --urdf-dir ../shared/robots/hands

Why this shape: the node solves once per hand per HandArray, warm-started from the same
track's previous solution, so the hands of a real image sequence are tracked first (VIDEO
mode, the shared motion frames by default) and then solved in order, per robot config. The
first solve of each track starts cold and is reported apart from the warm ones.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import time

from hand_pose_ros.tools.shared_data import shared_data_dir
import numpy as np

DEFAULT_CONFIGS = ('allegro_hand', 'leap_hand', 'inspire_hand')


def tracked_sequence(folder: Path, frames: int) -> list[list[tuple[int, str, np.ndarray]]]:
    """[(track id, side, world keypoints) per hand] per frame of an image folder."""
    import cv2
    from hand_pose_ros.core.options import BaseOptions, RunningMode, TrackerOptions
    from hand_pose_ros.core.tracker import HandTracker
    files = sorted(p for p in folder.iterdir() if p.suffix in ('.jpg', '.png'))[:frames]
    tracker = HandTracker(TrackerOptions(base=BaseOptions(num_threads=1),
                                         running_mode=RunningMode.VIDEO))
    out = []
    try:
        for i, path in enumerate(files):
            rgb = np.ascontiguousarray(cv2.imread(str(path))[:, :, ::-1])
            hands = tracker.process(rgb, timestamp=i / 30.0).hands
            out.append([(h.id, h.handedness, np.asarray(h.world)) for h in hands])
    finally:
        tracker.close()
    return out


def main(argv: list[str] | None = None) -> None:
    from hand_pose_ros.core.meaning.hand_frames import mano_keypoints
    from hand_pose_ros.core.meaning.retarget import HandRetargeter
    parser = argparse.ArgumentParser(description=__doc__.strip().split('\n')[0])
    parser.add_argument('--urdf-dir', required=True, help="dex-urdf's robots/hands folder")
    parser.add_argument('--source', default=str(shared_data_dir('motion', 'seq0')),
                        help='image folder to track (default ../shared/data/motion/seq0)')
    parser.add_argument('--frames', type=int, default=90)
    parser.add_argument('--robots', nargs='+', default=list(DEFAULT_CONFIGS))
    parser.add_argument('--variants', nargs='+', default=['', '_dexpilot'],
                        help="config suffixes ('' = vector, _dexpilot)")
    args = parser.parse_args(argv)
    seq = tracked_sequence(Path(args.source), args.frames)
    hands = sum(len(f) for f in seq)
    print(f'{len(seq)} frames, {hands} hands tracked from {args.source}')
    print(f'{"config":34s} {"solves":>6s} {"cold ms":>8s} {"warm p50":>9s} {"warm p95":>9s}')
    for robot in args.robots:
        for variant in args.variants:
            for side in ('left', 'right'):
                name = f'{robot}_{side}{variant}'
                r = HandRetargeter(name, args.urdf_dir)
                cold, warm = [], []
                for frame in seq:
                    for track, hand_side, world in frame:
                        if hand_side != side:
                            continue
                        first = track not in r.tracks
                        tic = time.perf_counter()
                        r.retarget(mano_keypoints(world, side), track)
                        (cold if first else warm).append(time.perf_counter() - tic)
                if not warm:
                    print(f'{name:34s} no {side} hand in the sequence')
                    continue
                w = np.array(warm) * 1e3
                print(f'{name:34s} {len(cold) + len(warm):6d} {np.mean(cold) * 1e3:8.1f} '
                      f'{np.percentile(w, 50):9.1f} {np.percentile(w, 95):9.1f}')


if __name__ == '__main__':
    main()
