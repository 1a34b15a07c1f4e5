"""
`hand-pose-ros process-bag IN... --out OUT`: recorded rosbag2 bags in, annotated MCAP bags out.

One IN: OUT is the output bag. Several: OUT is a folder with one output bag per input, named
like the input. Settings: the node's parameter file (`--params-file config/hands.yaml`)
and the same tracker flags as `detect` (the flags win); the running mode is always video.
Exit status 0 when every bag was read to the end (bad frames are counted, not fatal), 1 when
a bag could not be read (to the end): what was processed before is kept, 2 for bad usage.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
import logging
from pathlib import Path
import shutil
import sys
import time
from typing import Any

from hand_pose_ros.cli.arguments import add_setting_arguments, given_settings
from hand_pose_ros.cli.output import run_or_exit
from hand_pose_ros.core.options import BASE_SPECS, tracker_options, TRACKER_SPECS
from hand_pose_ros.core.settings import ROS, RunningMode, Spec

_LOG = logging.getLogger(__name__)
PROG = 'hand-pose-ros process-bag'


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description='Track hands in every frame of rosbag2 bags (MCAP or sqlite3) '
        'and write the results as an MCAP bag.')
    parser.add_argument('bags', nargs='+', type=Path, metavar='IN',
                        help='rosbag2 bag: its folder, or its .mcap / .db3 file')
    parser.add_argument('--out', required=True, type=Path, metavar='OUT',
                        help='output bag folder (several IN: a folder of output bags)')
    parser.add_argument('--params-file', type=Path, default=None, metavar='YAML',
                        help="the node's parameter file (e.g. config/hands.yaml): tracker "
                             'settings, camera_info_topic, depth_topic, sync_tolerance_s, '
                             'publish_*, tf_prefix and fusion_*')
    parser.add_argument('--camera', action='append', default=[], metavar='NAMESPACE',
                        help='process only the image topics of this namespace (repeatable)')
    parser.add_argument('--image-topic', action='append', default=[], metavar='TOPIC',
                        help='process this image topic (repeatable; replaces discovery)')
    parser.add_argument('--no-copy', action='store_true',
                        help='write only the results, not the input topics')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing OUT')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    parser.add_argument('--retarget', action='append', default=[], metavar='CONFIG',
                        help="also write each camera's robot hand joints, <camera>/<side>/"
                             'joint_states (JointState, as hand_retarget_node publishes '
                             'them): a dex-retargeting config by name (e.g. '
                             'allegro_hand_right_dexpilot) or YAML path, its side read from '
                             "it or given as 'left:CONFIG'; repeat for the other hand")
    parser.add_argument('--urdf-dir', type=Path, default=None, metavar='DIR',
                        help="folder the --retarget configs' urdf_path is relative to "
                             "(dex-urdf's robots/hands layout)")
    parser.add_argument('--ray', nargs='?', const='local', default=None, metavar='ADDRESS',
                        help='run each bag, or each camera of a bag with several, as a Ray '
                             'task (needs the ray extra): a local Ray by default, or the '
                             "cluster at ADDRESS (e.g. ray://head:10001 or 'auto'); outputs "
                             'are identical to the serial run')
    parser.add_argument('--ray-workers', type=int, default=None, metavar='N',
                        help='CPUs of the local Ray (default: all); one task per CPU')
    add_setting_arguments(parser, BASE_SPECS + TRACKER_SPECS)
    add_setting_arguments(parser, fusion_specs(), title='multi-camera fusion (the node '
                          'parameters; the flags win over --params-file)', expose=ROS)
    return parser


def fusion_specs() -> tuple[Spec, ...]:
    """Return the node's fusion parameters process-bag takes as flags (--fusion-frame ...)."""
    from hand_pose_ros.ros.parameters import SPECS
    return (SPECS['fusion_frame'], SPECS['fusion_sync_tolerance_s'])


def load_params_file(path: Path) -> dict[str, Any]:
    """
    Return the ros__parameters of a ROS 2 parameter file, checked as the node checks them.

    The first node entry is used ('/**' in config/hands.yaml).
    """
    from hand_pose_ros.ros.parameters import validate
    import yaml
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f'{path}: not a ROS 2 parameter file')
    for entry in data.values():
        if isinstance(entry, dict) and isinstance(entry.get('ros__parameters'), dict):
            values = dict(entry['ros__parameters'])
            break
    else:
        raise ValueError(f'{path}: no ros__parameters')
    for name, value in values.items():
        reason = validate(name, value, running=False)
        if reason:
            raise ValueError(f'{path}: {reason}')
    return values


def outputs_for(bags: Sequence[Path], out: Path) -> list[Path]:
    """One IN: OUT itself; several: OUT/<input name>, which must differ."""
    if len(bags) == 1:
        return [out]
    names = [b.stem if b.is_file() else b.name for b in bags]
    if len(set(names)) != len(names):
        raise ValueError(f'several inputs share a name ({", ".join(names)}): their outputs '
                         'in OUT would collide')
    return [out / n for n in names]


def retarget_robots(specs: Sequence[str], urdf_dir: Path | None
                    ) -> tuple[tuple[str, str, str], ...]:
    """
    Return (side, config, urdf_dir) per --retarget, each robot loaded once here to check it.

    At most one robot per side; a config or URDF that cannot be found is bad usage.
    """
    if not specs:
        if urdf_dir is not None:
            raise ValueError('--urdf-dir is for --retarget')
        return ()
    from hand_pose_ros.core.meaning.retarget import config_side, HandRetargeter
    robots = []
    for spec in specs:
        try:
            side, config = config_side(spec)
            HandRetargeter(config, urdf_dir or '')
        except FileNotFoundError as exc:
            raise ValueError(f'--retarget {spec}: {exc}') from None
        except ImportError as exc:
            raise RuntimeError(f'--retarget: {exc}') from None
        robots.append((side, config, str(urdf_dir or '')))
    sides = [side for side, _, _ in robots]
    if len(set(sides)) != len(sides):
        raise ValueError(f'--retarget: one robot per hand (sides given: {", ".join(sides)})')
    return tuple(robots)


def run(args: argparse.Namespace) -> int:
    from hand_pose_ros.bags.runner import Summary

    values = load_params_file(args.params_file) if args.params_file else {}
    values.update(given_settings(args, BASE_SPECS + TRACKER_SPECS))
    values.update(given_settings(args, fusion_specs(), expose=ROS))
    if args.ray is not None and values.get('fusion_frame'):
        raise ValueError('--fusion-frame (fusion_frame) does not run with --ray: fusion needs '
                         "every camera's tracked frames in one process; run without --ray")
    tracker_options(values, running_mode=RunningMode.VIDEO)  # bad values fail here, once
    retarget = retarget_robots(args.retarget, args.urdf_dir)
    outs = outputs_for(args.bags, args.out)
    for out in outs:
        if out.exists():
            if not args.overwrite:
                raise ValueError(f'{out} exists (use --overwrite to replace it)')
            shutil.rmtree(out) if out.is_dir() else out.unlink()
    if len(outs) > 1:
        args.out.mkdir(parents=True, exist_ok=True)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
    job = {'values': values, 'copy': not args.no_copy, 'namespaces': tuple(args.camera),
           'image_topics': tuple(args.image_topic), 'retarget': retarget}
    start = time.perf_counter()
    if args.ray is not None:
        from hand_pose_ros.bags.ray_runner import process_bags_on_ray
        summaries = process_bags_on_ray(args.bags, outs, job, args.ray, args.ray_workers)
    else:
        summaries = process_bags(args.bags, outs, progress=not args.no_progress, **job)
    total = Summary()
    for bag, out, summary in zip(args.bags, outs, summaries):
        for error in summary.errors:
            print(f'{PROG}: error: {error}', file=sys.stderr)
        if len(outs) > 1:
            print(f'{bag}: {summary.text()} -> {out}', file=sys.stderr)
        total.add(summary)
    if args.ray is not None:  # the tasks overlap: their times do not add up
        total.wall_s = time.perf_counter() - start
    print(f'{total.text()} -> {args.out}', file=sys.stderr)
    if total.frames and total.processed == 0:
        print(f'{PROG}: no frame could be processed: every image was bad input (see the '
              'causes above)', file=sys.stderr)
    return 1 if total.errors else 0


def process_bags(bags: Sequence[Path], outs: Sequence[Path], values: dict[str, Any],
                 copy: bool = True, namespaces: Sequence[str] = (),
                 image_topics: Sequence[str] = (), progress: bool = False,
                 retarget: Sequence[tuple[str, str, str]] = ()) -> list[Any]:
    """
    Process bags one after the other with one tracker (models loaded once); one Summary each.

    Each bag starts with fresh tracking states, so a bag's output does not depend on the
    bags before it: a Ray task running one bag writes the same bytes.
    """
    with bag_runner(values, copy, namespaces, image_topics, progress, retarget) as runner:
        return [runner.run(bag, out) for bag, out in zip(bags, outs)]


@contextmanager
def bag_runner(values: dict[str, Any], copy: bool = True, namespaces: Sequence[str] = (),
               image_topics: Sequence[str] = (), progress: bool = False,
               retarget: Sequence[tuple[str, str, str]] = (), track: bool = True
               ) -> Iterator[Any]:
    """
    Yield a BagRunner with the settings `values`; `track` False: no tracker (no models).

    Without a tracker the runner can list a bag's cameras and write an output bag from the
    record files of its cameras (BagRunner.run's `recorded`), not track.
    """
    from hand_pose_ros.bags.runner import BagRunner
    from hand_pose_ros.core.meaning.gestures import load_gesture_modules
    from hand_pose_ros.core.tracker import HandTracker
    from hand_pose_ros.ros.parameters import node_options

    node = node_options(values)
    tracker = None
    if track:
        load_gesture_modules(str(m) for m in node.gesture_modules)
        tracker = HandTracker(tracker_options(values, running_mode=RunningMode.VIDEO))
    try:
        yield BagRunner(tracker, node, copy=copy, namespaces=namespaces,
                        image_topics=image_topics, progress=progress, retarget=retarget)
    finally:
        if tracker is not None:
            tracker.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_or_exit(parser, 'process-bag', run, args)
