"""
Evaluate the camera-frame 3D: synthetic exactness/noise curve, RHD PnP and depth fusion.

    python -m hand_pose_ros.tools.eval_metric3d [--shared ../shared] [--plot noise.png]
        [--tracker]

Prints (1) the synthetic noise curve (a real hand shape at known poses in a virtual camera),
(2) the wrist and mean joint errors on the RHD hands with ground truth from PnP alone, with the
official baseline (MediaPipe world landmarks + plain SQPnP) beside ours, (3) the same with
depth fusion on SYNTHETIC depth images built from the ground truth (synthetic_depth.py),
and with --tracker (4) the same numbers with this project's own HandTracker outputs (static
mode, with MediaPipe's single landmark pass and with the default landmark refinement).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import json
from pathlib import Path
import sys

import cv2
from hand_pose_ros.core.anatomy import HandLandmark
from hand_pose_ros.core.metric.metric3d import (
    Metric3DOptions,
    palm_size,
    solve_camera_frame,
    wrist_frame,
)
from hand_pose_ros.core.results import CameraIntrinsics
from hand_pose_ros.tools.shared_data import shared_data_dir
from hand_pose_ros.tools.synthetic_depth import render_depth
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_SHARED = shared_data_dir().parent
# The shape used for the synthetic tests: the full model's world landmarks of this photo.
SYNTHETIC_SHAPE_FILE = 'freihand/00017620.jpg'
SYNTHETIC_SIZE = (640, 480)
SYNTHETIC_CAMERA = CameraIntrinsics(fx=600.0, fy=600.0, cx=319.5, cy=239.5)
DISTORTIONS = {
    'none': ('plumb_bob', np.zeros(0)),
    'plumb_bob': ('plumb_bob', np.array([-0.28, 0.09, 0.001, -0.0005, -0.015])),
    'rational_polynomial': (
        'rational_polynomial',
        np.array([0.45, -2.5, 0.0006, -0.0002, 1.4, 0.33, -2.3, 1.3])),
}


@dataclass
class RhdCase:
    """One RHD hand: ground truth plus one set of model outputs for it."""

    file: str
    size: tuple[int, int]
    intrinsics: CameraIntrinsics
    gt_cam: np.ndarray  # (21, 3) metres
    gt_2d: np.ndarray  # (21, 2) pixels
    handedness: str  # anatomical, lower case
    keypoints_2d: np.ndarray  # (21, 2) model pixels
    world: np.ndarray  # (21, 3) model world landmarks


def load_json(shared: Path, *parts: str) -> dict:
    return json.loads(shared.joinpath('data', *parts).read_text())


def rhd_cases(annotations: dict, golden_static: dict, model: str) -> list[RhdCase]:
    """Load the RHD hands with the official MediaPipe outputs (golden) for `model`."""
    golden = {e['file']: e for e in golden_static['models'][model]}
    cases = []
    for image in _rhd_images(annotations):
        found = golden[image['file']]['hands']
        if not found:
            continue
        out = found[0]
        size = (image['width'], image['height'])
        cases.append(_rhd_case(image, np.array(out['landmarks_norm'])[:, :2] * size,
                               np.array(out['world_m'])))
    return cases


def _rhd_images(annotations: dict) -> list[dict]:
    return [image for image in annotations['images'] if image['dataset'] == 'rhd']


def _rhd_case(image: dict, keypoints_2d: np.ndarray, world: np.ndarray) -> RhdCase:
    """Load an annotated RHD image's first hand (the ground truth) with one model's outputs."""
    hand = image['hands'][0]
    camera = image['camera']
    return RhdCase(
        file=image['file'], size=(image['width'], image['height']),
        intrinsics=CameraIntrinsics(fx=camera['fx'], fy=camera['fy'], cx=camera['cx'],
                                    cy=camera['cy']),
        gt_cam=np.array(hand['keypoints_3d_cam_m']),
        gt_2d=np.array(hand['keypoints_2d'])[:, :2], handedness=hand['handedness'].lower(),
        keypoints_2d=np.asarray(keypoints_2d, dtype=np.float64)[:, :2],
        world=np.asarray(world, dtype=np.float64))


def baseline_sqpnp(case: RhdCase) -> np.ndarray:
    """Solve the official baseline: world landmarks as they are, plain SQPnP, all joints."""
    ok, rvec, tvec = cv2.solvePnP(np.ascontiguousarray(case.world),
                                  np.ascontiguousarray(case.keypoints_2d),
                                  case.intrinsics.matrix, None, flags=cv2.SOLVEPNP_SQPNP)
    return case.world @ cv2.Rodrigues(rvec)[0].T + tvec.ravel()


def errors_cm(points: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    """(wrist position error, mean joint error) in centimetres."""
    dist = np.linalg.norm(points - gt, axis=1) * 100.0
    return float(dist[HandLandmark.WRIST]), float(dist.mean())


def rotation_error_deg(a: np.ndarray, b: np.ndarray) -> float:
    cos = (np.trace(a.T @ b) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def random_pose(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw a hand pose a camera would see: 0.3-1.0 m away, in view, tilted up to 50 degrees."""
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    rotation = cv2.Rodrigues(axis * np.radians(rng.uniform(0.0, 50.0)))[0]
    z = rng.uniform(0.3, 1.0)
    translation = np.array([rng.uniform(-0.25, 0.25) * z, rng.uniform(-0.18, 0.18) * z, z])
    return rotation, translation


def synthetic_trial(shape: np.ndarray, camera: CameraIntrinsics, rotation: np.ndarray,
                    translation: np.ndarray, noise_px: float, rng: np.random.Generator
                    ) -> tuple[float, float]:
    """
    Place `shape` at a pose, project (with distortion), add noise, solve.

    Returns (wrist translation error mm, wrist rotation error deg). The solve uses the true
    shape (no size prior): this measures the geometry, not the size ambiguity.
    """
    truth = shape @ rotation.T + translation
    d = camera.d if camera.d.size else None
    pixels = cv2.projectPoints(truth, np.zeros(3), np.zeros(3), camera.matrix, d)[0]
    pixels = pixels.reshape(-1, 2) + rng.normal(0.0, noise_px, (len(shape), 2))
    result = solve_camera_frame(pixels, shape, camera, image_size=SYNTHETIC_SIZE,
                                handedness='right',
                                options=Metric3DOptions(normalize_palm_size=False))
    err_mm = float(np.linalg.norm(result.wrist_position - truth[HandLandmark.WRIST]) * 1000.0)
    err_deg = rotation_error_deg(result.wrist_rotation, wrist_frame(truth, 'right'))
    return err_mm, err_deg


def camera_with(distortion: str) -> CameraIntrinsics:
    model, d = DISTORTIONS[distortion]
    c = SYNTHETIC_CAMERA
    return CameraIntrinsics(fx=c.fx, fy=c.fy, cx=c.cx, cy=c.cy, d=d, distortion_model=model)


def noise_curve(shape: np.ndarray, noise_levels: tuple[float, ...], trials: int,
                distortion: str = 'plumb_bob', seed: int = 0) -> list[dict]:
    """Median / 90th percentile wrist errors against 2D noise over random poses."""
    camera = camera_with(distortion)
    rows = []
    for sigma in noise_levels:
        rng = np.random.default_rng(seed)
        errs = np.array([synthetic_trial(shape, camera, *random_pose(rng), sigma, rng)
                         for _ in range(trials)])
        rows.append({
            'noise_px': sigma,
            'median_mm': float(np.median(errs[:, 0])),
            'p90_mm': float(np.percentile(errs[:, 0], 90)),
            'median_deg': float(np.median(errs[:, 1])),
            'p90_deg': float(np.percentile(errs[:, 1], 90)),
        })
    return rows


def synthetic_shape(golden_static: dict) -> np.ndarray:
    entry = next(e for e in golden_static['models']['full'] if e['file'] == SYNTHETIC_SHAPE_FILE)
    return np.array(entry['hands'][0]['world_m'])


def _print_rhd(title: str, rows: list[tuple[str, float, float]]) -> None:
    wrist = np.mean([r[1] for r in rows])
    joints = np.mean([r[2] for r in rows])
    per = ', '.join(f'{name} {w:.1f}' for name, w, _ in rows)
    print(f'  {title:<38} wrist {wrist:5.1f} cm  mean joint {joints:5.1f} cm  ({per})')


def evaluate_rhd(cases: list[RhdCase], label: str, depth_seeds: int = 3) -> None:
    base, ours, ours_rot = [], [], []
    depth_mp, depth_gt2d = [], []
    for case in cases:
        name = Path(case.file).stem
        base.append((name, *errors_cm(baseline_sqpnp(case), case.gt_cam)))
        result = solve_camera_frame(case.keypoints_2d, case.world, case.intrinsics,
                                    image_size=case.size, handedness=case.handedness)
        ours.append((name, *errors_cm(result.keypoints, case.gt_cam)))
        ours_rot.append(rotation_error_deg(result.wrist_rotation,
                                           wrist_frame(case.gt_cam, case.handedness)))
        c = case.intrinsics
        for seed in range(depth_seeds):
            depth = render_depth(case.gt_cam, case.size, c.fx, c.fy, c.cx, c.cy,
                                 seed=seed)
            for keypoints, out in ((case.keypoints_2d, depth_mp), (case.gt_2d, depth_gt2d)):
                fused = solve_camera_frame(keypoints, case.world, c, depth=depth,
                                           image_size=case.size, handedness=case.handedness)
                out.append((f'{name}/{seed}', *errors_cm(fused.keypoints, case.gt_cam)))
    print(f'RHD ({label}), camera-frame errors against keypoints_3d_cam_m:')
    _print_rhd('baseline: world + plain SQPnP', base)
    _print_rhd('ours: PnP alone', ours)
    print(f'  {"":<38} wrist orientation error {np.mean(ours_rot):.1f} deg '
          f'({", ".join(f"{v:.1f}" for v in ours_rot)})')
    _print_rhd('ours + SYNTHETIC depth (model 2D)', depth_mp)
    _print_rhd('ours + SYNTHETIC depth (RHD 2D)', depth_gt2d)


def tracker_cases(annotations: dict, shared: Path, model: str,
                  landmark_refinement: int | None = None) -> list[RhdCase]:
    """
    Run this project's own pipeline (HandTracker, static mode) on the RHD hands.

    landmark_refinement None = the static default, 0 = MediaPipe's single landmark pass.
    """
    from hand_pose_ros.core.options import BaseOptions, RunningMode, TrackerOptions
    from hand_pose_ros.core.tracker import HandTracker

    tracker = HandTracker(TrackerOptions(base=BaseOptions(model=model, runtime='litert'),
                                         running_mode=RunningMode.IMAGE,
                                         landmark_refinement=landmark_refinement))
    cases = []
    try:
        for image in _rhd_images(annotations):
            bgr = cv2.imread(str(shared / 'data' / 'hands' / image['file']))
            frame = tracker.process(bgr, 'bgr')
            if not frame.hands:
                print(f'  {image["file"]}: no hand found by HandTracker ({model})')
                continue
            cases.append(_rhd_case(image, frame.hands[0].keypoints, frame.hands[0].world))
    finally:
        tracker.close()
    return cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--shared', type=Path, default=DEFAULT_SHARED)
    parser.add_argument('--trials', type=int, default=300)
    parser.add_argument('--plot', type=Path, help='write the noise curve plot here (png)')
    parser.add_argument('--tracker', action='store_true',
                        help="also evaluate this project's HandTracker outputs")
    args = parser.parse_args(argv)
    annotations = load_json(args.shared, 'hands', 'annotations.json')
    golden = load_json(args.shared, 'hands', 'golden_mediapipe_static.json')

    shape = synthetic_shape(golden)
    print(f'Synthetic: world landmarks of {SYNTHETIC_SHAPE_FILE} (palm size '
          f'{palm_size(shape) * 100:.1f} cm) at {args.trials} random poses 0.3-1.0 m, '
          f'{SYNTHETIC_SIZE[0]}x{SYNTHETIC_SIZE[1]} f=600 px; wrist errors:')
    levels = (0.0, 0.5, 1.0, 1.5, 2.0)
    curves = {}
    for distortion in DISTORTIONS:
        curves[distortion] = noise_curve(shape, levels, args.trials, distortion)
        for row in curves[distortion]:
            print(f'  {distortion:<20} noise {row["noise_px"]:.1f} px: translation median '
                  f'{row["median_mm"]:6.2f} mm (p90 {row["p90_mm"]:6.2f}), rotation median '
                  f'{row["median_deg"]:5.2f} deg (p90 {row["p90_deg"]:5.2f})')
    for model in ('full', 'lite'):
        evaluate_rhd(rhd_cases(annotations, golden, model), f'official MediaPipe {model}')
    if args.tracker:
        for model in ('full', 'lite'):
            for refinement, label in ((0, 'one landmark pass'), (None, 'default refinement')):
                cases = tracker_cases(annotations, args.shared, model, refinement)
                if cases:
                    evaluate_rhd(cases, f'hand_pose_ros HandTracker {model}, {label}')
    if args.plot:
        _plot(curves, args.plot)
    return 0


def _plot(curves: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_r) = plt.subplots(1, 2, figsize=(10, 4))
    for name, rows in curves.items():
        noise = [r['noise_px'] for r in rows]
        ax_t.plot(noise, [r['median_mm'] for r in rows], marker='o', label=f'{name} median')
        ax_t.plot(noise, [r['p90_mm'] for r in rows], linestyle='--', label=f'{name} p90')
        ax_r.plot(noise, [r['median_deg'] for r in rows], marker='o', label=f'{name} median')
        ax_r.plot(noise, [r['p90_deg'] for r in rows], linestyle='--', label=f'{name} p90')
    ax_t.set_xlabel('2D noise sigma (px)')
    ax_t.set_ylabel('wrist translation error (mm)')
    ax_r.set_xlabel('2D noise sigma (px)')
    ax_r.set_ylabel('wrist rotation error (deg)')
    ax_t.legend(fontsize=7)
    ax_r.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f'noise curve plot written to {path}')


if __name__ == '__main__':
    sys.exit(main())
