"""
`hand-pose-ros bench`: this pipeline against official MediaPipe 0.10.21, same frames, same run.

Both trackers see the same decoded RGB frames of data/motion (seq0, seq1, seq2 in order, as one
stream) and are timed around their process() call only. By default they run interleaved frame
by frame (alternating which goes first), so load from other processes on a shared machine hits both
alike: the speed ratios are the meaningful output, absolute times move with the machine.
`--schedule blocks` runs each pass as one block per side instead, so each side runs as it
would alone (thread pools stay warm); comparing the two schedules shows whether interleaving
favours either side.

Rows: static and tracking mode for lite and full with MediaPipe's detection rule, plus tracking
with the detect-every-N option. Our tracker runs without smoothing and gestures by default, so
it does the same work as the official solution (which has neither); --smoothing adds them.
The official solution runs in its own venv (reference.py), created on first use.

With --cameras N or --runtime torch this delegates to bench_multicam (multi-camera / GPU;
--cameras alone keeps the litert runtime).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field
import json
import logging
import os
from pathlib import Path
import platform
import sys
import tempfile
import time

from hand_pose_ros.cli.arguments import add_setting_flag
from hand_pose_ros.core.models.catalog import MODEL_VARIANTS
from hand_pose_ros.core.options import SETTINGS
from hand_pose_ros.tools.bench_common import add_tracker_flags, default_motion_dir, load_frames
import numpy as np

_LOG = logging.getLogger(__name__)

GOALS = {'tracking-mp-rule': 1.5, 'tracking-every-n': 2.5}


@dataclass
class Config:
    """One benchmark row."""

    key: str
    static: bool
    model: str
    detect_every: int


@dataclass
class Row:
    """Timings of one row, both sides, in milliseconds per frame."""

    config: Config
    ours_ms: list[float] = field(default_factory=list)
    official_ms: list[float] = field(default_factory=list)
    ours_hands: int = 0
    official_hands: int = 0
    detector_runs: int = 0


def _wants_multicam(argv: list[str]) -> bool:
    for i, arg in enumerate(argv):
        if arg == '--cameras' or arg.startswith('--cameras='):
            return True
        if arg == '--runtime' and i + 1 < len(argv) and argv[i + 1] == 'torch':
            return True
        if arg == '--runtime=torch':
            return True
    return False


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog='hand-pose-ros bench',
        description='ms/frame of this pipeline vs official MediaPipe 0.10.21 on data/motion.',
        epilog='--cameras N or --runtime torch runs the multi-camera / GPU benchmark '
               '(bench_multicam) instead.')
    p.add_argument('--data', type=Path, default=None,
                   help='folder holding seq0..seq2 (default ../shared/data/motion)')
    p.add_argument('--models', default='lite,full',
                   help=f'comma list of {", ".join(MODEL_VARIANTS)} (the model setting)')
    p.add_argument('--modes', default='static,tracking', help='comma list of static, tracking')
    p.add_argument('--repeats', type=int, default=2, help='passes over the frames per row')
    p.add_argument('--warmup', type=int, default=10, help='untimed frames before each row')
    p.add_argument('--limit', type=int, default=0, help='use only the first N frames')
    add_tracker_flags(p)
    settings = p.add_argument_group('tracker settings, as this benchmark uses them')
    add_setting_flag(
        settings, SETTINGS['detect_every_n_frames'], '--detect-every', default=5,
        why="Here: N of the extra detect-every-N tracking rows (MediaPipe's rule, 1, always "
        'has its own rows; 1 = no extra rows).')
    add_setting_flag(
        settings, SETTINGS['runtime'], default='litert', choices=('litert', 'torch'),
        why='Here litert, as the official solution runs; torch runs the multi-camera '
        'benchmark (bench_multicam) instead.')
    add_setting_flag(settings, SETTINGS['precision'],
                     why='Ours only: the official side is unchanged.')
    add_setting_flag(
        settings, SETTINGS['smoothing'], default=False,
        why='Here also gestures, both off by default so that our tracker does the work the '
        'official solution does (it has neither).')
    p.add_argument('--no-reference', action='store_true', help='time our pipeline only')
    p.add_argument('--schedule', choices=('interleaved', 'blocks'), default='interleaved',
                   help='interleaved: the two sides alternate frame by frame (load swings hit '
                   'both alike); blocks: each pass runs all frames on one side, then on the '
                   'other (each side runs undisturbed by the other, as it would alone)')
    p.add_argument('--reference-venv', type=Path, default=None,
                   help='venv for mediapipe 0.10.21 (default ~/.cache/hand_pose_ros/...)')
    p.add_argument('--json', type=Path, default=None, help='also write the results here')
    return p


def _configs(args: argparse.Namespace) -> list[Config]:
    models = [m for m in args.models.split(',') if m]
    modes = [m for m in args.modes.split(',') if m]
    for m in models:
        reason = SETTINGS['model'].check(m)
        if reason:
            raise SystemExit(f'--models: {reason}')
    for m in modes:
        if m not in ('static', 'tracking'):
            raise SystemExit(f'--modes: unknown mode {m!r}')
    configs = []
    for mode in modes:
        for model in models:
            if mode == 'static':
                configs.append(Config(f'static-{model}', True, model, 1))
            else:
                configs.append(Config(f'tracking-{model}', False, model, 1))
                every = args.detect_every_n_frames
                if every > 1:
                    configs.append(Config(f'tracking-{model}-every-{every}', False, model, every))
    return configs


def _our_tracker(cfg: Config, args: argparse.Namespace):
    from hand_pose_ros.core.options import BaseOptions, RunningMode, TrackerOptions
    from hand_pose_ros.core.tracker import HandTracker

    mode = RunningMode.IMAGE if cfg.static else RunningMode.VIDEO
    return HandTracker(TrackerOptions(
        base=BaseOptions(model=cfg.model, runtime=args.runtime, num_threads=args.num_threads,
                         precision=args.precision),
        running_mode=mode, max_num_hands=args.max_num_hands,
        detect_every_n_frames=cfg.detect_every, smoothing=args.smoothing and mode.tracking,
        enable_gestures=args.smoothing))


def _time_ours(tracker, frame: np.ndarray) -> tuple[float, int, bool]:
    start = time.perf_counter()
    result = tracker.process(frame)
    ms = (time.perf_counter() - start) * 1000.0
    return ms, len(result.hands), result.palm_detector_ran


def _run_row(cfg: Config, frames: np.ndarray, args: argparse.Namespace, worker, bar) -> Row:
    row = Row(cfg)
    ours = None
    try:
        ours = _our_tracker(cfg, args)
        if worker is not None:
            worker.open_config(static=cfg.static, model=cfg.model,
                               max_hands=args.max_num_hands)
        for i in range(min(args.warmup, len(frames))):
            ours.process(frames[i])
            if worker is not None:
                worker.process(i)

        def run_ours(i: int) -> None:
            ms, hands, detected = _time_ours(ours, frames[i])
            row.ours_ms.append(ms)
            row.ours_hands += hands
            row.detector_runs += int(detected)
            bar.update(1)

        def run_official(i: int) -> None:
            ref_ms, ref_hands = worker.process(i)
            row.official_ms.append(ref_ms)
            row.official_hands += ref_hands

        sides = [run_ours] if worker is None else [run_ours, run_official]
        for rep in range(args.repeats):
            # Alternate who goes first, so neither always runs on a warmer cache.
            order = sides if rep % 2 == 0 else sides[::-1]
            if args.schedule == 'blocks':
                for side in order:
                    for i in range(len(frames)):
                        side(i)
            else:
                for i in range(len(frames)):
                    for side in (order if i % 2 == 0 else order[::-1]):
                        side(i)
    finally:
        if ours is not None:
            ours.close()
    return row


def _stats(ms: list[float]) -> dict[str, float]:
    if not ms:
        return {}
    a = np.asarray(ms)
    return {'median': float(np.median(a)), 'p90': float(np.percentile(a, 90)),
            'mean': float(a.mean())}


def _describe(cfg: Config) -> tuple[str, str]:
    mode = 'static' if cfg.static else 'tracking'
    rule = '-' if cfg.static else (
        'MediaPipe rule' if cfg.detect_every == 1 else f'every {cfg.detect_every} frames')
    return mode, rule


def _goal_key(cfg: Config) -> str | None:
    if cfg.static or cfg.model != 'full':
        return None
    return 'tracking-mp-rule' if cfg.detect_every == 1 else 'tracking-every-n'


def _report(rows: list[Row], n_frames: int, args: argparse.Namespace, version: str) -> dict:
    results = []
    lines = [
        f'frames: {n_frames} per pass x {args.repeats} passes ({args.schedule}), '
        f'max_num_hands {args.max_num_hands}, '
        f'our runtime {args.runtime} ({args.num_threads} threads, {args.precision} landmark '
        f'model), smoothing+gestures '
        f'{"on" if args.smoothing else "off"}; official: mediapipe {version or "not run"} '
        f'solutions.hands',
        f'machine: {platform.machine()}, {os.cpu_count()} CPUs, '
        f'Python {platform.python_version()}',
        '',
        '| mode | model | palm detector | ours median | ours p90 | official median '
        '| official p90 | speed-up (median) | speed-up (mean) | speed-up (paired) '
        '| hands/frame ours / official | detector ran |',
        '|---|---|---|---|---|---|---|---|---|---|---|---|',
    ]
    goals = []
    for row in rows:
        ours, official = _stats(row.ours_ms), _stats(row.official_ms)
        mode, rule = _describe(row.config)
        n = max(len(row.ours_ms), 1)
        speed_med = official['median'] / ours['median'] if official else float('nan')
        speed_mean = official['mean'] / ours['mean'] if official else float('nan')
        # Median of per-frame ratios: each pair ran back to back, so load changes cancel.
        paired = float(np.median(np.asarray(row.official_ms) / np.asarray(row.ours_ms))
                       ) if official else float('nan')
        off_hands = f'{row.official_hands / n:.2f}' if official else '-'
        lines.append(
            f'| {mode} | {row.config.model} | {rule} | {ours["median"]:.1f} ms '
            f'| {ours["p90"]:.1f} ms | {official.get("median", float("nan")):.1f} ms '
            f'| {official.get("p90", float("nan")):.1f} ms | {speed_med:.2f}x '
            f'| {speed_mean:.2f}x | {paired:.2f}x | {row.ours_hands / n:.2f} / {off_hands} '
            f'| {100.0 * row.detector_runs / n:.0f}% |')
        goal = _goal_key(row.config)
        if goal and official:
            goals.append(
                f'goal {row.config.key}: {speed_med:.2f}x official frames/s (median; '
                f'paired {paired:.2f}x), '
                f'target >= {GOALS[goal]:.1f}x: {"MET" if speed_med >= GOALS[goal] else "MISSED"}')
        results.append({
            **asdict(row.config), 'ours': ours, 'official': official,
            'speedup_median': speed_med, 'speedup_mean': speed_mean, 'speedup_paired': paired,
            'ours_hands_per_frame': row.ours_hands / n,
            'official_hands_per_frame': row.official_hands / n if official else None,
            'detector_ran_fraction': row.detector_runs / n,
        })
    print('\n'.join(lines + [''] + goals))
    return {'frames': n_frames, 'repeats': args.repeats, 'schedule': args.schedule,
            'max_num_hands': args.max_num_hands,
            'runtime': args.runtime, 'threads': args.num_threads, 'precision': args.precision,
            'smoothing': args.smoothing,
            'official_version': version, 'cpus': os.cpu_count(), 'rows': results}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if _wants_multicam(argv):
        from hand_pose_ros.tools import bench_multicam

        if not any(a == '--runtime' or a.startswith('--runtime=') for a in argv):
            argv = ['--runtime', 'litert', *argv]  # --cameras alone: this bench's runtime
        return bench_multicam.main(argv)
    args = _parser().parse_args(argv)
    if args.runtime != 'litert':
        raise SystemExit(f'--runtime {args.runtime!r}: this benchmark runs litert (torch: '
                         'bench_multicam)')
    if args.repeats < 1:
        raise SystemExit('--repeats must be >= 1')  # the settings' flags check their own range
    logging.basicConfig(level=logging.WARNING)
    from hand_pose_ros.tools.reference import ensure_reference_venv, ReferenceWorker, save_frames
    from tqdm import tqdm

    frames, _ = load_frames(args.data or default_motion_dir(), args.limit)
    configs = _configs(args)
    rows: list[Row] = []
    version = ''
    with tempfile.TemporaryDirectory(prefix='hand-pose-bench-') as tmp:
        worker = None
        if not args.no_reference:
            python = ensure_reference_venv(args.reference_venv)
            worker = ReferenceWorker(python, save_frames(frames, Path(tmp) / 'frames.npy'))
        try:
            total = len(configs) * args.repeats * len(frames)
            with tqdm(total=total, unit='frame', desc='bench', file=sys.stderr) as bar:
                for cfg in configs:
                    bar.set_postfix_str(cfg.key)
                    rows.append(_run_row(cfg, frames, args, worker, bar))
                    version = worker.version if worker is not None else ''
        finally:
            if worker is not None:
                worker.close()
    summary = _report(rows, len(frames), args, version)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
