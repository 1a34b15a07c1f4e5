"""
What `bench` and its multi-camera mode (bench_multicam) share: the frames and the flags.

Its own module so that neither benchmark imports the other for them: `bench` delegates to
bench_multicam (`--cameras`, `--runtime torch`), and bench_multicam reads the same
data/motion frames and takes the same tracker settings as flags.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hand_pose_ros.cli.arguments import add_setting_flag
from hand_pose_ros.core.options import SETTINGS
from hand_pose_ros.tools.shared_data import shared_data_dir
import numpy as np

SEQUENCES = ('seq0', 'seq1', 'seq2')


def default_motion_dir() -> Path:
    """data/motion of the shared data (tools/shared_data.py)."""
    return shared_data_dir('motion')


def load_frames(folder: Path, limit: int) -> tuple[np.ndarray, list[str]]:
    """
    Load the seq0..seq2 frames under `folder` as one RGB stack, and their names.

    Only the first `limit` (0 = all); both benchmarks read the same frames.
    """
    from hand_pose_ros.core.inputs.frames import read_image

    paths = [p for seq in SEQUENCES for p in sorted((folder / seq).glob('*.jpg'))]
    if not paths:
        raise SystemExit(f'no frames under {folder}/{{{",".join(SEQUENCES)}}}; pass --data')
    if limit:
        paths = paths[:limit]
    frames = []
    for path in paths:
        rgb = read_image(path)
        if rgb is None:
            raise SystemExit(f'cannot read {path}')
        frames.append(rgb)
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise SystemExit(f'frames differ in size: {sorted(shapes)}')
    return np.stack(frames), [str(p.relative_to(folder)) for p in paths]


def add_tracker_flags(parser: argparse.ArgumentParser) -> None:
    """
    Add the tracker settings both benchmarks take, as flags derived from their definitions.

    The older short names (--threads, --max-hands, and --hands in the multi-camera mode)
    stay as aliases: BENCHMARKS.md's commands use them, and `bench` passes its own
    arguments on to bench_multicam unchanged.
    """
    group = parser.add_argument_group('tracker settings (as hand_pose_node parameters)')
    add_setting_flag(group, SETTINGS['num_threads'], '--threads')
    add_setting_flag(group, SETTINGS['max_num_hands'], '--max-hands', '--hands')
