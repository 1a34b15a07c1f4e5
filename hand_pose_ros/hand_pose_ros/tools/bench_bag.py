"""
process-bag's speed: a 30 Hz 640x480 bag made from the motion sequences, per camera count.

Writes a rosbag2 bag (MCAP, raw rgb8 Image + CameraInfo per camera, 30 Hz stamps) from
../shared/data/motion (seq0, seq1, seq2 one after the other: 144 frames, two hands on most),
then times, in the same process and one after the other, the core alone on the same frames
(one tracker state per camera: the floor the runner cannot go below) and the process-bag
runner on the bag. Prints frames/s and x real time of both, the runner's wall-time overhead
over the core, and the CPU time per frame of both (this process's, all its threads), which
other processes' load moves much less than wall time.

    python -m hand_pose_ros.tools.bench_bag --cameras 1 4 [--ray-bags 4 [--ray-cameras 2]]
        [--keep DIR] [flags]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
import tempfile
import time

import cv2
from hand_pose_ros.cli.arguments import add_setting_arguments, given_settings
from hand_pose_ros.core.options import BASE_SPECS, tracker_options, TRACKER_SPECS
from hand_pose_ros.core.results import CameraIntrinsics
from hand_pose_ros.core.settings import RunningMode
from hand_pose_ros.tools.shared_data import shared_data_dir
import numpy as np

PERIOD_NS = 33_333_333  # 30 Hz
START_NS = 1_700_000_000 * 1_000_000_000
INTR = CameraIntrinsics(fx=500.0, fy=500.0, cx=320.0, cy=240.0)
SEQUENCES = ('seq0', 'seq1', 'seq2')


def motion_frames(limit: int | None = None) -> list[np.ndarray]:
    """Return the motion sequences' frames, one after the other, as RGB."""
    root = shared_data_dir() / 'motion'
    paths = [p for s in SEQUENCES for p in sorted((root / s).glob('*.jpg'))][:limit]
    return [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in paths]


def write_motion_bag(path: Path, frames: Sequence[np.ndarray], cameras: int) -> None:
    """Each camera `/camN` gets every frame as rgb8 Image plus a CameraInfo, at 30 Hz."""
    from hand_pose_ros.bags.typestore import typestore
    from rosbags.rosbag2 import StoragePlugin, Writer
    ts = typestore()
    t = ts.types
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conns = [(writer.add_connection(f'/cam{c}/image_raw', 'sensor_msgs/msg/Image',
                                        typestore=ts),
                  writer.add_connection(f'/cam{c}/camera_info', 'sensor_msgs/msg/CameraInfo',
                                        typestore=ts)) for c in range(cameras)]
        for k, rgb in enumerate(frames):
            stamp = START_NS + k * PERIOD_NS
            h, w = rgb.shape[:2]
            for c, (image_conn, info_conn) in enumerate(conns):
                header = t['std_msgs/msg/Header'](
                    stamp=t['builtin_interfaces/msg/Time'](sec=stamp // 10**9,
                                                           nanosec=stamp % 10**9),
                    frame_id=f'cam{c}_optical_frame')
                info = t['sensor_msgs/msg/CameraInfo'](
                    header=header, height=h, width=w, distortion_model='plumb_bob',
                    d=np.zeros(5), k=INTR.matrix.reshape(-1).astype(np.float64),
                    r=np.eye(3).reshape(-1), p=np.zeros(12), binning_x=0, binning_y=0,
                    roi=t['sensor_msgs/msg/RegionOfInterest'](
                        x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
                image = t['sensor_msgs/msg/Image'](
                    header=header, height=h, width=w, encoding='rgb8', is_bigendian=0,
                    step=w * 3, data=rgb.reshape(-1))
                log = stamp + 1000 * c
                writer.write(info_conn, log, ts.serialize_cdr(info, 'sensor_msgs/msg/CameraInfo'))
                writer.write(image_conn, log + 1, ts.serialize_cdr(image, 'sensor_msgs/msg/Image'))


def bench(cameras: int, frames: Sequence[np.ndarray], values: dict, folder: Path,
          copy: bool) -> dict:
    """Time the core alone, then the runner on the bag; returns the numbers."""
    from hand_pose_ros.bags.runner import BagRunner
    from hand_pose_ros.core.tracker import FrameInput, HandTracker
    from hand_pose_ros.ros.parameters import node_options
    bag = folder / f'in_{cameras}'
    if not bag.exists():
        write_motion_bag(bag, frames, cameras)
    tracker = HandTracker(tracker_options(values, running_mode=RunningMode.VIDEO))
    try:
        tracker.process(frames[0], camera=INTR, timestamp=0.0)  # warm-up, own state
        states = [tracker.new_state() for _ in range(cameras)]
        start, cpu = time.perf_counter(), time.process_time()
        for k, rgb in enumerate(frames):
            for state in states:
                tracker.process_batch([FrameInput(rgb, state, 'rgb', INTR, None,
                                                  (START_NS + k * PERIOD_NS) * 1e-9)])
        core_s, core_cpu = time.perf_counter() - start, time.process_time() - cpu
        out = folder / f'out_{cameras}'
        runner = BagRunner(tracker, node_options(values), copy=copy, progress=False)
        cpu = time.process_time()
        summary = runner.run(bag, out)
        bag_cpu = time.process_time() - cpu
    finally:
        tracker.close()
    n = len(frames) * cameras
    span = len(frames) * PERIOD_NS * 1e-9
    return {'cameras': cameras, 'frames': n, 'hands': summary.hands,
            'core_fps': n / core_s, 'core_rt': span / core_s,
            'bag_fps': summary.processed / summary.wall_s, 'bag_rt': span / summary.wall_s,
            'overhead': summary.wall_s / core_s - 1.0,
            'core_cpu_ms': 1e3 * core_cpu / n, 'bag_cpu_ms': 1e3 * bag_cpu / n}


def bench_ray(bags: int, frames: Sequence[np.ndarray], values: dict, folder: Path,
              cameras: int = 1) -> None:
    """
    Time `bags` bags of `cameras` cameras serially, then on a local Ray of 1 and 2 workers.

    A bag with several cameras runs on Ray as one task per camera plus the task writing it.
    """
    from hand_pose_ros.bags.ray_runner import process_bags_on_ray
    from hand_pose_ros.cli.process_bag import process_bags
    inputs = []
    for k in range(bags):
        inputs.append(folder / f'ray_in_{cameras}_{k}')
        if not inputs[-1].exists():
            write_motion_bag(inputs[-1], frames, cameras)
    job = {'values': values, 'copy': True, 'namespaces': (), 'image_topics': ()}
    n, span = bags * cameras * len(frames), bags * len(frames) * PERIOD_NS * 1e-9
    print(f'run              bags  frames  seconds  frames/s  x rt   vs serial ({cameras} '
          'camera(s) per bag; all include model loading; Ray also its start)')
    base = None
    for name, workers in (('serial', None), ('ray 1 worker', 1), ('ray 2 workers', 2)):
        outs = [folder / f'ray_out_{cameras}_{name.replace(" ", "_")}_{k}'
                for k in range(bags)]
        start = time.perf_counter()
        if workers is None:
            process_bags(inputs, outs, **job)
        else:
            process_bags_on_ray(inputs, outs, job, 'local', workers)
        wall = time.perf_counter() - start
        base = base or wall
        print(f'{name:15s}  {bags:4d}  {n:6d}  {wall:7.1f}  {n / wall:8.1f}  {span / wall:4.2f}  '
              f'{base / wall:5.2f}x', flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m hand_pose_ros.tools.bench_bag',
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('--cameras', type=int, nargs='*', default=[1, 4])
    parser.add_argument('--limit', type=int, default=None, help='first N frames only')
    parser.add_argument('--no-copy', action='store_true', help='runner without input copy')
    parser.add_argument('--ray-bags', type=int, default=0, metavar='N',
                        help='also: N bags serially vs on a local Ray of 1 and 2 workers '
                             '(needs the ray extra)')
    parser.add_argument('--ray-cameras', type=int, default=1, metavar='C',
                        help='cameras per --ray-bags bag (several: one Ray task per camera)')
    parser.add_argument('--keep', type=Path, default=None, help='keep the bags in this folder')
    add_setting_arguments(parser, BASE_SPECS + TRACKER_SPECS)
    args = parser.parse_args(argv)
    values = given_settings(args, BASE_SPECS + TRACKER_SPECS)
    frames = motion_frames(args.limit)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        print('cameras  frames  hands  core frames/s  core x rt  bag frames/s  bag x rt  '
              'wall overhead  core CPU ms/frame  bag CPU ms/frame')
        for cameras in args.cameras:
            r = bench(cameras, frames, values, folder, not args.no_copy)
            print(f'{r["cameras"]:7d}  {r["frames"]:6d}  {r["hands"]:5d}  '
                  f'{r["core_fps"]:13.1f}  {r["core_rt"]:9.2f}  {r["bag_fps"]:12.1f}  '
                  f'{r["bag_rt"]:8.2f}  {100 * r["overhead"]:11.0f} %  '
                  f'{r["core_cpu_ms"]:16.1f}  {r["bag_cpu_ms"]:16.1f}', flush=True)
        if args.ray_bags:
            bench_ray(args.ray_bags, frames, values, folder, args.ray_cameras)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
