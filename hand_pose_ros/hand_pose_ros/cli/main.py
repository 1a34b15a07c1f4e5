"""`hand-pose-ros` entry point: dispatches to one module per subcommand."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import logging
import sys

SUBCOMMANDS = {
    'detect': 'hands in images, folders or videos to JSON',
    'fuse': 'hands of synchronized calibrated cameras fused into world-frame hands, JSON',
    'process-bag': 'hands in every frame of rosbag2 bags, written as an MCAP bag',
    'bench': 'this pipeline vs official MediaPipe, ms/frame',
    'eval-hands': 'small, interacting, distant and false hands per tracker setting',
    'eval-teleop': 'jitter, filter lag and bone-length stability on known-truth sequences',
    'eval-multiview': 'fusion: leave-one-camera-out on real video, synthetic exactness, cost',
    'fetch-models': 'download and verify the MediaPipe hand and body models, derive the int8 ones',
}


def _fetch_models(argv: Sequence[str]) -> int:
    from pathlib import Path

    from hand_pose_ros.core.models.catalog import fetch_models
    parser = argparse.ArgumentParser(prog='hand-pose-ros fetch-models',
                                     description=SUBCOMMANDS['fetch-models'])
    parser.add_argument('--model-dir', type=Path, default=None,
                        help='target folder (default: $HAND_POSE_ROS_MODEL_DIR or '
                             '~/.cache/hand_pose_ros/models)')
    parser.add_argument('--wheel', type=Path, default=None,
                        help='a local mediapipe-0.10.21 wheel instead of downloading it')
    args = parser.parse_args(list(argv))
    folder = fetch_models(args.model_dir, args.wheel, body=True)
    print(f'models ready in {folder}')
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run a subcommand; each parses its own arguments so `SUB --help` is complete."""
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format='%(levelname)s %(name)s: %(message)s')
    parser = argparse.ArgumentParser(
        prog='hand-pose-ros', description='MediaPipe-class hand tracking, offline tools.',
        epilog='\n'.join(f'  {k:14s}{v}' for k, v in SUBCOMMANDS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('command', choices=list(SUBCOMMANDS), help='subcommand')
    if not argv or argv[0] in ('-h', '--help'):
        parser.print_help()
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in SUBCOMMANDS:
        parser.error(f'unknown command {command!r}; choose from {", ".join(SUBCOMMANDS)}')
    if command == 'detect':
        from hand_pose_ros.cli.detect import main as run
    elif command == 'fuse':
        from hand_pose_ros.cli.fuse import main as run
    elif command == 'eval-multiview':
        from hand_pose_ros.tools.eval_multiview import main as run
    elif command == 'process-bag':
        from hand_pose_ros.cli.process_bag import main as run
    elif command == 'eval-hands':
        from hand_pose_ros.tools.eval_hands import main as run
    elif command == 'bench':
        from hand_pose_ros.tools.bench import main as run
    elif command == 'eval-teleop':
        from hand_pose_ros.tools.eval_teleop import main as run
    else:
        run = _fetch_models
    return int(run(rest) or 0)
