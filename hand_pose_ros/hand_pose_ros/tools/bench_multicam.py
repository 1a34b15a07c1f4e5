"""
`hand-pose-ros bench --runtime torch|litert --cameras 1,4,16`: many cameras, one tracker.

Each camera is its own stream (TrackerState) replaying a data/motion sequence; every step
feeds one frame per camera through HandTracker.process_batch, which sends all palm inputs
and all hand ROIs of the step through one runtime call each. Because a step's frames finish
together, a camera's frame latency is the step's latency; per-camera frames/s is steps/s
and the aggregate is cameras x steps/s. LiteRT is measured in the same invocation (its
runtime loops over the batch) so the two columns compare like for like.

`--micro` times the landmark model alone on a device-resident batch (default 256 crops,
fp16): the network's throughput without warps, uploads or pipeline work.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
import json
import logging
from pathlib import Path
import sys
import time

from hand_pose_ros.cli.arguments import add_setting_flag
from hand_pose_ros.core.options import SETTINGS
from hand_pose_ros.tools.bench_common import add_tracker_flags, default_motion_dir, load_frames
import numpy as np

_LOG = logging.getLogger(__name__)


@dataclass
class MulticamRow:
    runtime: str
    device: str
    dtype: str
    model: str
    cameras: int
    steps: int
    aggregate_fps: float
    per_camera_fps: float
    latency_p50_ms: float
    latency_p95_ms: float
    hands_per_frame: float
    detector_fraction: float


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog='hand-pose-ros bench (multi-camera)',
        description='frames/s and latency of N cameras through one batched tracker, torch '
                    'runtime vs LiteRT, on data/motion.')
    # `hand-pose-ros bench` delegates here with its own flag names: --models (and
    # --max-hands, add_tracker_flags) are accepted as aliases of --model (--max-num-hands).
    add_tracker_flags(p)
    settings = p.add_argument_group('tracker settings, as this benchmark uses them')
    add_setting_flag(settings, SETTINGS['model'], '--models')
    add_setting_flag(
        settings, SETTINGS['runtime'], default='torch', choices=('torch', 'litert'),
        why='Here the runtime under test (LiteRT is also measured unless --no-litert); '
        '`bench --cameras` without --runtime means litert.')
    add_setting_flag(
        settings, SETTINGS['device'], default='cuda',
        why="Here the torch device ('auto': cuda when torch sees one, else cpu); litert "
        'always runs on the CPU.')
    p.add_argument('--dtype', default='fp32', choices=('fp32', 'fp16'))
    p.add_argument('--cameras', default='1,4,16', help='comma list of camera counts')
    p.add_argument('--steps', type=int, default=100, help='timed steps per camera count')
    p.add_argument('--warmup', type=int, default=10, help='untimed steps first')
    p.add_argument('--litert-steps', type=int, default=0,
                   help='timed steps for LiteRT (default: --steps)')
    p.add_argument('--no-litert', action='store_true', help='skip the LiteRT rows')
    p.add_argument('--static', action='store_true', help='static mode (detector every frame)')
    p.add_argument('--compile', action='store_true', help='torch.compile the networks')
    p.add_argument('--no-cuda-graphs', action='store_true', help='eager CUDA (no graphs)')
    p.add_argument('--data', type=Path, default=None, help='data/motion folder')
    p.add_argument('--micro', action='store_true',
                   help='also time the landmark model alone on a device-resident batch')
    p.add_argument('--micro-batch', type=int, default=256)
    p.add_argument('--micro-dtype', default='fp16', choices=('fp32', 'fp16'))
    p.add_argument('--micro-iters', type=int, default=50)
    p.add_argument('--json', type=Path, default=None, help='also write the results here')
    return p


def _sequences(folder: Path) -> list[np.ndarray]:
    """
    Load the motion sequences as (T, H, W, 3) RGB stacks, played forwards then backwards.

    Ping-pong playback keeps every camera's motion continuous however many steps run, so
    tracking mode stays in tracking (a wrap-around jump would force re-detection).
    """
    frames, names = load_frames(folder, 0)
    seqs: dict[str, list[np.ndarray]] = {}
    for frame, name in zip(frames, names):
        seqs.setdefault(name.split('/')[0], []).append(frame)
    return [np.concatenate([np.stack(f), np.stack(f[-2:0:-1])]) for f in seqs.values()]


def _camera_frames(seqs: list[np.ndarray], cameras: int, step: int) -> list[np.ndarray]:
    """Camera c replays sequence c mod S, started at a camera-specific offset."""
    out = []
    for c in range(cameras):
        seq = seqs[c % len(seqs)]
        out.append(seq[(step + 7 * (c // len(seqs))) % len(seq)])
    return out


def _make_tracker(runtime: str, args: argparse.Namespace):
    from hand_pose_ros.core.options import BaseOptions, RunningMode, TrackerOptions
    from hand_pose_ros.core.tracker import HandTracker

    opts = TrackerOptions(
        base=BaseOptions(model=args.model, runtime='litert', num_threads=args.num_threads),
        max_num_hands=args.max_num_hands,
        running_mode=RunningMode.IMAGE if args.static else RunningMode.VIDEO)
    if runtime == 'litert':
        return HandTracker(opts)
    from hand_pose_ros.core.models.runtimes.torch_runtime import TorchRuntime
    rt = TorchRuntime(model=args.model, device=args.device, dtype=args.dtype,
                      cuda_graphs=not args.no_cuda_graphs, compile_module=args.compile,
                      num_threads=args.num_threads)
    return HandTracker(opts, runtime=rt)


def run_cameras(tracker, seqs: list[np.ndarray], cameras: int, steps: int, warmup: int,
                label: tuple[str, str, str, str]) -> MulticamRow:
    """Time `steps` batched steps of `cameras` streams (after `warmup` untimed ones)."""
    from hand_pose_ros.core.tracker import FrameInput

    states = [tracker.new_state() for _ in range(cameras)]
    times, hands, detected = [], 0, 0
    for step in range(warmup + steps):
        batch = [FrameInput(img, st) for img, st in
                 zip(_camera_frames(seqs, cameras, step), states)]
        t0 = time.perf_counter()
        results = tracker.process_batch(batch)
        dt = time.perf_counter() - t0
        if step >= warmup:
            times.append(dt)
            hands += sum(len(r.hands) for r in results)
            detected += sum(r.palm_detector_ran for r in results)
    ms = np.array(times) * 1e3
    steps_per_s = len(times) / float(np.sum(times))
    runtime, device, dtype, model = label
    return MulticamRow(
        runtime=runtime, device=device, dtype=dtype, model=model, cameras=cameras,
        steps=len(times), aggregate_fps=cameras * steps_per_s, per_camera_fps=steps_per_s,
        latency_p50_ms=float(np.percentile(ms, 50)), latency_p95_ms=float(np.percentile(ms, 95)),
        hands_per_frame=hands / (cameras * len(times)),
        detector_fraction=detected / (cameras * len(times)))


def micro_landmark(args: argparse.Namespace) -> dict:
    """Landmark crops/s of the network alone at a fixed batch, input already on the device."""
    from hand_pose_ros.core.models.catalog import LANDMARK_INPUT_SIZE
    from hand_pose_ros.core.models.runtimes.torch_runtime import TorchRuntime
    import torch

    rt = TorchRuntime(model=args.model, device=args.device, dtype=args.micro_dtype,
                      cuda_graphs=not args.no_cuda_graphs, compile_module=args.compile,
                      num_threads=args.num_threads)
    size = LANDMARK_INPUT_SIZE
    batch = torch.rand((args.micro_batch, 3, size, size), device=rt.device)

    def sync() -> None:
        if rt.device.type == 'cuda':
            torch.cuda.synchronize()

    for _ in range(3):
        rt.run_landmark_tensor(batch)
    sync()
    t0 = time.perf_counter()
    for _ in range(args.micro_iters):
        rt.run_landmark_tensor(batch)
    sync()
    dt = time.perf_counter() - t0
    rt.close()
    return {'model': f'hand_landmark_{args.model}', 'device': args.device,
            'dtype': args.micro_dtype, 'batch': args.micro_batch, 'iters': args.micro_iters,
            'crops_per_s': args.micro_batch * args.micro_iters / dt,
            'ms_per_batch': dt / args.micro_iters * 1e3}


def _table(rows: list[MulticamRow]) -> str:
    head = ('| runtime | device | dtype | model | cameras | aggregate frames/s | '
            'per-camera frames/s | latency p50 ms | latency p95 ms | hands/frame | '
            'detector ran |')
    lines = [head, '|' + '---|' * 11]
    for r in rows:
        lines.append(
            f'| {r.runtime} | {r.device} | {r.dtype} | {r.model} | {r.cameras} | '
            f'{r.aggregate_fps:.1f} | {r.per_camera_fps:.1f} | {r.latency_p50_ms:.2f} | '
            f'{r.latency_p95_ms:.2f} | {r.hands_per_frame:.2f} | {r.detector_fraction:.0%} |')
    return '\n'.join(lines)


def _environment(args: argparse.Namespace) -> str:
    mode = (f'threads {args.num_threads}, mode {"static" if args.static else "tracking"}, '
            f'max hands {args.max_num_hands}')
    if args.runtime != 'torch':  # torch is optional: not imported for litert alone
        return f'litert only, {mode}'
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'
    return f'torch {torch.__version__}, CUDA device: {gpu}, {mode}'


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    cameras = [int(c) for c in str(args.cameras).split(',') if c.strip()]
    if not cameras or min(cameras) < 1 or args.steps < 1:
        raise SystemExit('--cameras and --steps must be >= 1')
    if args.runtime == 'litert':
        if args.micro:
            raise SystemExit('--micro times the torch landmark model: use --runtime torch')
        args.device = 'cpu'
    else:
        try:
            import torch
        except ImportError:
            raise SystemExit('--runtime torch needs torch: pip install -r '
                             'requirements/torch.txt (or use --runtime litert)') from None
        torch.set_num_threads(args.num_threads)
        if args.device == 'auto':
            args.device = 'cuda' if torch.cuda.is_available() else 'cpu'
        if args.device.startswith('cuda') and not torch.cuda.is_available():
            raise SystemExit(f'--device cuda: torch {torch.__version__} sees no CUDA device '
                             '(use --device cpu, or install a CUDA build of torch)')
    seqs = _sequences(args.data or default_motion_dir())
    rows: list[MulticamRow] = []
    runtimes = [args.runtime] + ([] if args.no_litert or args.runtime == 'litert'
                                 else ['litert'])
    for runtime in runtimes:
        tracker = _make_tracker(runtime, args)
        label = (runtime, 'cpu' if runtime == 'litert' else args.device,
                 'fp32' if runtime == 'litert' else args.dtype, args.model)
        steps = (args.litert_steps or args.steps) if runtime == 'litert' else args.steps
        for n in cameras:
            row = run_cameras(tracker, seqs, n, steps, args.warmup, label)
            rows.append(row)
            print(f'{runtime} {n} camera(s): {row.aggregate_fps:.1f} frames/s aggregate, '
                  f'p50 {row.latency_p50_ms:.2f} ms', file=sys.stderr)
        tracker.close()
    print(f'multi-camera benchmark ({_environment(args)})\n')
    print(_table(rows))
    summary: dict = {'environment': _environment(args), 'rows': [asdict(r) for r in rows]}
    if args.micro:
        micro = micro_landmark(args)
        summary['micro'] = micro
        print(f'\nlandmark model alone ({micro["model"]}, {micro["device"]}, {micro["dtype"]}, '
              f'batch {micro["batch"]}): {micro["crops_per_s"]:.0f} crops/s '
              f'({micro["ms_per_batch"]:.2f} ms per batch)')
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
