"""
`hand-pose-ros eval-multiview`: how well calibrated cameras see one hand (core/fusion).

Real video, no 3D ground truth (../shared/data/multiview/pose2sim_single): leave one camera
out. The hands are fused from the other cameras and projected into the held-out camera,
where the error is the mean keypoint distance to that camera's own nearest detection, in
its hand sizes (the larger side of the detection's bounding box). Beside it, in the same run
and by the same rule, the plain two-view DLT of label-matched hands (every pair of the other
cameras, and the best pair per hand chosen with the held-out camera's help: an oracle).
Also: single-camera PnP wrist (at the average hand's scale, and at the fused track's
triangulated scale) against the wrist fused from the other cameras, in that camera's frame;
bone-length CV of fused tracks; the share of frames with a fused hand where two or more
cameras detect a hand of that side.

Synthetic (tools/multiview_synthetic.py): wrist error against the number of views with the
landmark model's measured 2D noise, beside single-view PnP; a moving hand seen by cameras
that capture 0 / 10 / 33 ms apart; outlier-view rejection; still-hand fingertip jitter; ms
per fused set for 2, 4 and 8 cameras.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from itertools import combinations
import json
from pathlib import Path
import sys
import time

from hand_pose_ros.cli.arguments import add_setting_arguments, given_settings
from hand_pose_ros.cli.fuse import detect_views, view_from_json, view_to_json
from hand_pose_ros.core.fusion.calibration import load_rig, Rig
from hand_pose_ros.core.fusion.fuser import FusionOptions, MultiViewFuser
from hand_pose_ros.core.fusion.results import ViewHand
from hand_pose_ros.core.fusion.triangulation import dlt
from hand_pose_ros.core.metric.metric3d import solve_camera_frame
from hand_pose_ros.core.options import BASE_SPECS, tracker_options, TRACKER_SPECS
from hand_pose_ros.core.tracking.skeleton import bone_length_cv
from hand_pose_ros.tools import multiview_synthetic as syn
from hand_pose_ros.tools.shared_data import shared_data_dir
import numpy as np

# The detection settings of the measured run: small, fast, distant hands (50-120 px in
# 1920-px frames) need the detector's extra views and the body-guided ROIs.
DETECTION = {'running_mode': 'video', 'detection_tiles': 1, 'body_rois': True,
             'body_every_n_frames': 1}
Sets = list[dict[str, list[ViewHand]]]


def load_detections(folder: Path, cache: Path | None, settings: dict,
                    max_frames: int | None) -> tuple[Sets, float]:
    """Every camera's hands per frame (cached as JSON: detection costs minutes on a CPU)."""
    key = {'settings': settings, 'max_frames': max_frames}
    if cache is not None and cache.is_file():
        data = json.loads(cache.read_text())
        if data.get('key') == key:
            sets = [{cam: [view_from_json(cam, v) for v in hands] for cam, hands in s.items()}
                    for s in data['sets']]
            return sets, float(data['fps'])
    inputs = {p.stem: p for p in sorted(folder.glob('*.mp4'))}
    sets, fps = detect_views(inputs, tracker_options(settings), max_frames)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({'key': key, 'fps': fps, 'sets': [
            {cam: [view_to_json(v) for v in hands] for cam, hands in s.items()}
            for s in sets]}))
    return sets, fps


def _stats(values: Sequence[float]) -> dict:
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=np.float64)
    if not v.size:
        return {'n': 0}
    return {'n': int(v.size), 'median': round(float(np.median(v)), 4),
            'p25': round(float(np.percentile(v, 25)), 4),
            'p90': round(float(np.percentile(v, 90)), 4)}


def held_out_error(points: np.ndarray, camera: str, rig: Rig,
                   detections: list[ViewHand]) -> float:
    """Mean keypoint distance to the nearest detection in `camera`, in its hand sizes."""
    if not detections or not np.all(np.isfinite(points)):
        return float('nan')
    proj = rig[camera].project(points)
    errors = [np.mean(np.linalg.norm(proj - d.keypoints[:, :2], axis=1)) / d.size
              for d in detections]
    return float(min(errors))


def _by_label(hands: list[ViewHand]) -> dict[str, ViewHand]:
    best: dict[str, ViewHand] = {}
    for hand in hands:
        if hand.handedness and (hand.handedness not in best
                                or hand.score > best[hand.handedness].score):
            best[hand.handedness] = hand
    return best


def two_view_dlt(a: ViewHand, b: ViewHand, rig: Rig) -> np.ndarray:
    """Triangulate the plain baseline: unweighted two-view DLT, no gate, no refinement."""
    ca, cb = rig[a.camera], rig[b.camera]
    return dlt(np.stack([ca.pose, cb.pose]),
               np.stack([ca.normalize(a.keypoints), cb.normalize(b.keypoints)]),
               np.ones((2, 21)))


def detection_error(detection: ViewHand, candidates: list[np.ndarray], camera: str,
                    rig: Rig) -> float:
    """Mean keypoint distance (its hand sizes) from a detection to the nearest projection."""
    errors = [np.mean(np.linalg.norm(rig[camera].project(p) - detection.keypoints[:, :2],
                                     axis=1)) / detection.size
              for p in candidates if np.all(np.isfinite(p))]
    return float(min(errors)) if errors else float('nan')


def leave_one_out(sets: Sets, rig: Rig, fps: float, options: FusionOptions) -> dict:
    """
    Fused (from the other cameras) and two-view baselines, projected into the held-out.

    Two rules, the same for every method. Per held-out detection (primary): each hand the
    held-out camera finds is compared with the nearest hand the method puts there (a missing
    hand counts: NaN is reported in `missing`). Per fused hand: each fused hand with the
    held-out camera's nearest detection, which also counts hands the held-out camera does
    not see at all (occluded there), so it is pessimistic.
    """
    per_det = {'fused': [], 'two_view_label_pairs': [], 'best_pair_oracle': []}
    missing = dict.fromkeys(per_det, 0)
    fused_err, single_err = [], []
    pnp_avg, pnp_track, ranges = [], [], []
    cams = sorted(rig)
    for held in cams:
        others = [c for c in cams if c != held]
        fuser = MultiViewFuser({c: rig[c] for c in others}, options)
        for index, views in enumerate(sets):
            target = views.get(held, [])
            result = fuser.process({c: views.get(c, []) for c in others}, index / fps)
            fused = [h.keypoints_world for h in result.hands if not h.single_view]
            labelled = {c: _by_label(views.get(c, [])) for c in others}
            pairs = []
            for a, b in combinations(others, 2):
                pairs.append([two_view_dlt(labelled[a][s], labelled[b][s], rig)
                              for s in ('left', 'right')
                              if s in labelled[a] and s in labelled[b]])
            for det in target:
                err = detection_error(det, fused, held, rig)
                per_det['fused'].append(err)
                missing['fused'] += not np.isfinite(err)
                pair_errs = [detection_error(det, p, held, rig) for p in pairs if p]
                per_det['two_view_label_pairs'] += pair_errs
                missing['two_view_label_pairs'] += len(pairs) - len(pair_errs)
                finite = [e for e in pair_errs if np.isfinite(e)]
                per_det['best_pair_oracle'].append(min(finite) if finite else float('nan'))
                missing['best_pair_oracle'] += not finite
            for hand in result.hands:
                err = held_out_error(hand.keypoints_world, held, rig, target)
                (single_err if hand.single_view else fused_err).append(err)
                if hand.single_view or not target or not err <= 0.5:
                    continue
                # Single-camera PnP in the held-out camera against the fused wrist there.
                proj = rig[held].project(hand.keypoints_world)
                nearest = min(target, key=lambda d: float(np.mean(np.linalg.norm(
                    proj - d.keypoints, axis=1))))
                if nearest.world is None:
                    continue
                wrist = rig[held].to_camera(hand.wrist)
                frames = [solve_camera_frame(nearest.keypoints, nearest.world,
                                             rig[held].intrinsics, hand_scale=scale,
                                             handedness=nearest.handedness or None)
                          for scale in (1.0, hand.hand_scale)]
                if all(f.valid for f in frames):
                    ranges.append(float(np.linalg.norm(wrist)))
                    pnp_avg.append(float(np.linalg.norm(frames[0].keypoints[0] - wrist)))
                    pnp_track.append(float(np.linalg.norm(frames[1].keypoints[0] - wrist)))
    ranges_a = np.maximum(np.asarray(ranges), 1e-9)
    return {
        'per_held_out_detection': {k: _stats(v) for k, v in per_det.items()},
        'per_held_out_detection_missing': missing,
        'per_fused_hand': {'fused': _stats(fused_err),
                           'single_view_fallback': _stats(single_err)},
        'pnp_average_scale_m': _stats(pnp_avg),
        'pnp_average_scale_pct_of_range': _stats(100 * np.asarray(pnp_avg) / ranges_a),
        'pnp_track_scale_m': _stats(pnp_track),
        'pnp_track_scale_pct_of_range': _stats(100 * np.asarray(pnp_track) / ranges_a),
        'range_m': _stats(ranges),
    }


def all_cameras(sets: Sets, rig: Rig, fps: float) -> dict:
    """Fusion from every camera: coverage where 2+ cameras see a side, bone-length CV."""
    out = {}
    for name, options in (('tracked', FusionOptions()),
                          ('raw', FusionOptions(smoothing=False, skeleton_lock=False))):
        fuser = MultiViewFuser(rig, options)
        tracks: dict[int, list[np.ndarray]] = {}
        wanted = covered = 0
        views_used = []
        for index, views in enumerate(sets):
            result = fuser.process(views, index / fps)
            fused = [h for h in result.hands if not h.single_view]
            for side in ('left', 'right'):
                seen = sum(any(h.handedness == side for h in hands) for hands in views.values())
                if seen >= 2:
                    wanted += 1
                    covered += any(h.handedness == side for h in fused)
            for hand in fused:
                views_used.append(len(hand.cameras))
                tracks.setdefault(hand.id, []).append(hand.keypoints_world)
        cvs = [bone_length_cv(np.asarray(t)) for t in tracks.values() if len(t) >= 10]
        skip = options.skeleton_lock_frames if options.skeleton_lock else 0
        locked = [bone_length_cv(np.asarray(t[skip:])) for t in tracks.values()
                  if len(t) >= skip + 10]
        out[name] = {
            'frames_side_seen_by_2plus': wanted,
            'fused_share': round(covered / max(wanted, 1), 4),
            'mean_cameras_per_fused_hand': round(float(np.mean(views_used)), 3)
            if views_used else 0.0,
            'tracks_10plus_frames': len(cvs),
            'bone_length_cv': round(float(np.mean(cvs)), 4) if cvs else None,
            'bone_length_cv_after_lock_frames': round(float(np.mean(locked)), 4)
            if locked else None,
        }
    return out


MOVING_SPEEDS_M_S = (0.5, 1.0)  # a teleop hand reaching (0.5) and moving fast (1.0)
CAPTURE_OFFSETS_MS = ((0.0, 0.0, 0.0), (0.0, 10.0, 33.0))  # synced; free-running at 30 Hz


def moving_hand(sets: int, rng: np.random.Generator, options: FusionOptions,
                noise: float = syn.NOISE_SIGMA) -> dict:
    """
    Wrist error of a moving hand, 3 views, against the hand at the set's stamp.

    The cameras capture 0 / 10 / 33 ms after the stamp (free-running cameras grouped by
    the node's approximate sync; 33 ms is one frame at 30 Hz), beside synchronized ones.
    """
    out = {}
    for speed in MOVING_SPEEDS_M_S:
        for offsets in CAPTURE_OFFSETS_MS:
            errors = []
            for _ in range(sets):
                rig = syn.teleop_rig(3, rng)
                hand = syn.random_hand(rng)
                direction = rng.normal(size=3)
                direction /= np.linalg.norm(direction)
                late = {f'cam{i}': ms / 1000.0 for i, ms in enumerate(offsets)}
                views = syn.observe_moving(rig, hand, speed * direction, late, rng, noise)
                fused = [h for h in MultiViewFuser(rig, options).process(
                    list(views.values()), 0.0).hands if not h.single_view]
                errors.append(float(np.linalg.norm(fused[0].wrist - hand[0]))
                              if fused else float('nan'))
            key = f'{speed} m/s, offsets {"/".join(f"{o:g}" for o in offsets)} ms'
            out[key] = _stats(1000 * np.asarray(errors))
    return out


def synthetic(sets_per_point: int, seed: int = 0) -> dict:
    """Exactness against the number of views, outlier rejection, jitter, cost."""
    rng = np.random.default_rng(seed)
    raw = FusionOptions(smoothing=False, skeleton_lock=False)
    wrist: dict[int, list[float]] = {}
    rejected: dict[int, list[bool]] = {}
    pnp = []
    for n in (2, 3, 4, 6, 8):
        for k in range(sets_per_point):
            rig = syn.teleop_rig(n, rng, fisheye=0 if k % 2 else -1)
            hand = syn.random_hand(rng)
            views = syn.observe(rig, hand, rng)
            result = MultiViewFuser(rig, raw).process(list(views.values()), 0.0)
            fused = [h for h in result.hands if not h.single_view]
            wrist.setdefault(n, []).append(
                float(np.linalg.norm(fused[0].wrist - hand[0])) if fused else float('nan'))
            if n == 2:
                view, cam = views['cam0'], rig['cam0']
                frame = solve_camera_frame(view.keypoints, view.world, cam.intrinsics,
                                           hand_scale=syn.HAND_M_PALM / 0.085)
                pnp.append(float(np.linalg.norm(cam.to_world(frame.keypoints[0]) - hand[0])))
            if n >= 3:
                other = syn.random_hand(rng, centre=hand.mean(axis=0)
                                        + rng.uniform(-0.15, 0.15, 3))
                views['cam1'] = syn.observe({'cam1': rig['cam1']}, other, rng)['cam1']
                result = MultiViewFuser(rig, raw).process(list(views.values()), 0.0)
                fused = [h for h in result.hands if not h.single_view]
                rejected.setdefault(n, []).append(bool(fused) and 'cam1' not in fused[0].cameras)
    # Its own generator: the rows after it stay as measured before it was added.
    moving = moving_hand(sets_per_point, np.random.default_rng(seed + 2), raw)
    # Still hand, 4 views, 60 frames at 30 Hz: fingertip jitter raw and tracked.
    rig = syn.teleop_rig(4, rng)
    hand = syn.random_hand(rng)
    jitter = {}
    for name, options in (('raw', raw), ('tracked', FusionOptions())):
        fuser = MultiViewFuser(rig, options)
        rng_j = np.random.default_rng(seed + 1)
        tips = [fuser.process(list(syn.observe(rig, hand, rng_j).values()), k / 30.0)
                .hands[0].keypoints_world[8] for k in range(60)]
        jitter[name] = round(1000 * float(np.mean(np.std(np.asarray(tips)[10:], axis=0))), 2)
    cost = {}
    for n in (2, 4, 8):
        rig = syn.teleop_rig(n, rng)
        right = syn.random_hand(rng, centre=np.array([0.0, 0.12, 0.0]))
        left = syn.random_hand(rng, centre=np.array([0.0, -0.12, 0.0]), mirrored=True)
        views = (list(syn.observe(rig, right, rng).values())
                 + list(syn.observe(rig, left, rng, handedness='left', index=1).values()))
        fuser = MultiViewFuser(rig)
        times = []
        for k in range(30):
            t0 = time.perf_counter()
            fuser.process(views, k / 30.0)
            times.append(1000 * (time.perf_counter() - t0))
        cost[n] = round(float(np.median(times)), 2)
    return {
        'noise_sigma_hand_sizes': round(syn.NOISE_SIGMA, 4),
        'wrist_mm': {n: _stats(1000 * np.asarray(v)) for n, v in wrist.items()},
        'single_view_pnp_true_scale_wrist_mm': _stats(1000 * np.asarray(pnp)),
        'outlier_view_rejected': {n: round(float(np.mean(v)), 3) for n, v in rejected.items()},
        'moving_hand_3_views_wrist_mm': moving,
        'still_hand_index_tip_jitter_mm_std': jitter,
        'ms_per_fused_set_two_hands': cost,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='hand-pose-ros eval-multiview', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data', type=Path, default=None,
                        help='folder of camNN.mp4 and calibration.yaml (default: '
                             '../shared/data/multiview/pose2sim_single)')
    parser.add_argument('--calibration', type=Path, default=None,
                        help='calibration file (default: calibration.yaml in --data)')
    parser.add_argument('--cache', type=Path, default=None,
                        help='JSON cache of the per-camera detections')
    parser.add_argument('--max-frames', type=int, default=None)
    parser.add_argument('--synthetic-sets', type=int, default=100,
                        help='synthetic sets per number of views (0: skip)')
    parser.add_argument('--skip-real', action='store_true')
    parser.add_argument('--json', type=Path, default=None, help='write the report here')
    add_setting_arguments(parser, BASE_SPECS + TRACKER_SPECS)
    args = parser.parse_args(argv)
    report: dict = {}
    if not args.skip_real:
        folder = args.data or shared_data_dir('multiview', 'pose2sim_single')
        rig = load_rig(args.calibration or folder / 'calibration.yaml')
        settings = {**DETECTION, **given_settings(args, BASE_SPECS + TRACKER_SPECS)}
        sets, fps = load_detections(folder, args.cache, settings, args.max_frames)
        report['detection'] = settings
        report['frames'] = len(sets)
        report['detections_per_camera'] = {
            c: sum(bool(s.get(c)) for s in sets) for c in sorted(rig)}
        report['leave_one_out_raw'] = leave_one_out(
            sets, rig, fps, FusionOptions(smoothing=False, skeleton_lock=False))
        report['leave_one_out_tracked'] = leave_one_out(sets, rig, fps, FusionOptions())
        report['all_cameras'] = all_cameras(sets, rig, fps)
    if args.synthetic_sets:
        report['synthetic'] = synthetic(args.synthetic_sets)
    text = json.dumps(report, indent=1)
    print(text)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
