"""
`hand-pose-ros eval-teleop`: jitter, lag and metric-scale stability where the truth is known.

Teleoperation cares about three numbers the accuracy benchmarks do not show: how much a
still hand trembles (a robot copies it), how far the filter makes the hand lag (a robot
feels it) and whether the metric hand keeps its size (a robot hand that breathes). Real
recordings with ground-truth motion are not in the project's data, so the truth is built
from the shared photos (everything below is SYNTHETIC motion over real photos):

- still: one photo repeated with fresh Gaussian sensor noise per frame; the true motion is
  zero, so every frame-to-frame change is jitter.
- motion: one photo warped by a known affine per frame (translation, rotation, scale, all
  smooth sinusoids) plus the same noise; the true image motion of every keypoint is the
  affine, so jitter is what remains after removing it and the lag is the delay, found by
  cross-correlation, between the reported and the true keypoint trajectories.

The camera's focal length is chosen so that the hand is 0.5 m away (metric numbers are
those of a hand at 0.5 m). Bone-length stability is measured on shared/data/motion (real
photos under synthetic camera motion) with official MediaPipe's golden video output beside
it. The network runs once per frame: a caching runtime replays its outputs for every
filter setting, whose post-processing is all that differs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
import json
import math
from pathlib import Path

import cv2
from hand_pose_ros.core.anatomy import FINGERTIPS, HandLandmark
from hand_pose_ros.core.metric.metric3d import solve_camera_frame
from hand_pose_ros.core.models.runtimes import create_runtime
from hand_pose_ros.core.models.runtimes.base import Runtime
from hand_pose_ros.core.options import BaseOptions, RunningMode, TrackerOptions
from hand_pose_ros.core.results import CameraIntrinsics, FrameResult
from hand_pose_ros.core.tracker import HandTracker
from hand_pose_ros.core.tracking.skeleton import bone_length_cv
from hand_pose_ros.tools.shared_data import shared_data_dir
import numpy as np
from tqdm import tqdm

# Joints the jitter is reported for (indices from anatomy).
TIPS = list(FINGERTIPS)
WRIST = HandLandmark.WRIST
CANVAS = (640, 480)
TARGET_DISTANCE_M = 0.5
DEFAULT_PHOTOS = ('onehand10k/784.jpg', 'onehand10k/9.jpg')
# name -> tracker option overrides; the first is the unfiltered reference.
FILTERS: dict[str, dict[str, object]] = {
    'raw': {'smoothing': False},
    'one_euro 1.0/10 (old default)': {'one_euro_min_cutoff': 1.0, 'one_euro_beta': 10.0},
    'one_euro 0.5/10 (default)': {'one_euro_min_cutoff': 0.5, 'one_euro_beta': 10.0},
    'one_euro 1.0/3': {'one_euro_min_cutoff': 1.0, 'one_euro_beta': 3.0},
    'one_euro 0.5/2': {'one_euro_min_cutoff': 0.5, 'one_euro_beta': 2.0},
    'one_euro 0.5/1': {'one_euro_min_cutoff': 0.5, 'one_euro_beta': 1.0},
    'one_euro 0.2/1': {'one_euro_min_cutoff': 0.2, 'one_euro_beta': 1.0},
    'one_euro 0.3/50': {'one_euro_min_cutoff': 0.3, 'one_euro_beta': 50.0},
}


class CachedRuntime(Runtime):
    """Replays a runtime's outputs for inputs seen before (same images, same crops)."""

    def __init__(self, inner: Runtime):
        self.inner = inner
        self._cache: dict[bytes, object] = {}

    def _key(self, name: str, images: Sequence[np.ndarray], *arrays: object) -> bytes:
        parts = [name.encode()] + [np.ascontiguousarray(im[::7, ::7]).tobytes()
                                   for im in images]
        parts += [repr(a).encode() if not isinstance(a, np.ndarray)
                  else np.ascontiguousarray(a).tobytes() for a in arrays]
        return b'|'.join(parts)

    def _cached(self, key: bytes, call: Callable[[], object]) -> object:
        if key not in self._cache:
            self._cache[key] = call()
        return self._cache[key]

    def palm_detection(self, images, transforms, image_index=None, variant=None):
        key = self._key('palm', images, transforms, image_index, variant)
        return self._cached(key, lambda: self.inner.palm_detection(
            images, transforms, image_index, variant=variant))

    def hand_landmarks(self, images, image_index, transforms):
        key = self._key('hand', images, image_index, transforms)
        out = self._cached(key, lambda: self.inner.hand_landmarks(
            images, image_index, transforms))
        return _copy(out)

    def run_graph(self, path, batch):
        key = self._key('graph', [batch], str(path))
        return self._cached(key, lambda: self.inner.run_graph(path, batch))

    def close(self) -> None:
        self.inner.close()


def _copy(out):
    """Copy a dataclass of arrays (the tracker must not alter the cached outputs)."""
    from dataclasses import fields, replace
    return replace(out, **{f.name: np.array(getattr(out, f.name)) for f in fields(out)})


# ---------------------------------------------------------------- synthetic sequences

@dataclass
class SyntheticSequence:
    """Frames with the true per-frame image affine (2x3, reference photo -> frame)."""

    name: str
    frames: list[np.ndarray]
    affines: np.ndarray  # (T, 2, 3)
    fps: float
    still: bool


def _canvas(photo: np.ndarray) -> np.ndarray:
    """Fit the photo into a 640x480 canvas (edges replicated)."""
    w, h = CANVAS
    scale = min(w / photo.shape[1], h / photo.shape[0])
    small = cv2.resize(photo, (round(photo.shape[1] * scale), round(photo.shape[0] * scale)),
                       interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    top, left = (h - small.shape[0]) // 2, (w - small.shape[1]) // 2
    return cv2.copyMakeBorder(small, top, h - small.shape[0] - top, left,
                              w - small.shape[1] - left, cv2.BORDER_REPLICATE)


def _noisy(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    noise = rng.normal(0.0, sigma, image.shape)
    return np.clip(image.astype(np.float64) + noise, 0, 255).astype(np.uint8)


def make_sequences(photo: np.ndarray, name: str, frames: int, fps: float, sigma: float,
                   seed: int = 0) -> list[SyntheticSequence]:
    """Make the still and the moving sequence of one photo (see the module docstring)."""
    rng = np.random.default_rng(seed)
    base = _canvas(photo)
    still = [_noisy(base, sigma, rng) for _ in range(frames)]
    identity = np.tile(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), (frames, 1, 1))
    centre = (CANVAS[0] / 2, CANVAS[1] / 2)
    affines, moving = [], []
    for k in range(frames):
        t = k / fps
        angle = 8.0 * math.sin(2 * math.pi * t / 3.0)
        scale = 1.0 + 0.06 * math.sin(2 * math.pi * t / 2.5)
        a = cv2.getRotationMatrix2D(centre, angle, scale)
        a[0, 2] += 40.0 * math.sin(2 * math.pi * t / 2.0)
        a[1, 2] += 25.0 * math.sin(2 * math.pi * t / 1.6)
        affines.append(a)
        warped = cv2.warpAffine(base, a, CANVAS, flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
        moving.append(_noisy(warped, sigma, rng))
    return [SyntheticSequence(f'{name} still', still, identity, fps, True),
            SyntheticSequence(f'{name} motion', moving, np.asarray(affines), fps, False)]


# ---------------------------------------------------------------- measurements

@dataclass
class Track:
    """The longest-lived hand of a run: per frame 2D, camera-frame 3D and wrist rotation."""

    keypoints: np.ndarray  # (T, 21, 2) px, NaN where the hand was not reported
    camera: np.ndarray  # (T, 21, 3) m, NaN where not valid
    rotation: np.ndarray  # (T, 3, 3)
    world: np.ndarray  # (T, 21, 3) m


def main_track(results: list[FrameResult]) -> Track:
    counts: dict[int, int] = {}
    for r in results:
        for h in r.hands:
            counts[h.id] = counts.get(h.id, 0) + 1
    n = len(results)
    kp, cam = np.full((n, 21, 2), np.nan), np.full((n, 21, 3), np.nan)
    rot, world = np.full((n, 3, 3), np.nan), np.full((n, 21, 3), np.nan)
    if counts:
        best = max(counts, key=counts.get)
        for k, r in enumerate(results):
            for h in r.hands:
                if h.id != best:
                    continue
                kp[k], world[k] = h.keypoints[:, :2], h.world
                if h.camera is not None and h.camera.valid:
                    cam[k], rot[k] = h.camera.keypoints, h.camera.wrist_rotation
    return Track(kp, cam, rot, world)


def _apply(affines: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(T, 2, 3) affines applied to (J, 2) points -> (T, J, 2)."""
    return np.einsum('tij,kj->tki', affines[:, :, :2], points) + affines[:, None, :, 2]


def true_trajectory(affines: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """Return the keypoints' true motion: each frame's affine applied to the best reference."""
    inv = np.array([cv2.invertAffineTransform(a) for a in affines])
    in_ref = np.einsum('tij,tkj->tki', inv[:, :, :2], keypoints) + inv[:, None, :, 2]
    ref = np.nanmedian(in_ref, axis=0)
    return _apply(affines, ref)


def step_rms(values: np.ndarray) -> float:
    """RMS length of the frame-to-frame change of (T, J, D) values (NaN frames skipped)."""
    steps = np.linalg.norm(np.diff(values, axis=0), axis=-1)
    steps = steps[np.isfinite(steps)]
    return float(np.sqrt(np.mean(steps ** 2))) if steps.size else float('nan')


def rotation_step_deg(rot: np.ndarray) -> float:
    """RMS angle between consecutive wrist orientations, degrees."""
    angles = []
    for a, b in zip(rot[:-1], rot[1:]):
        if np.all(np.isfinite(a)) and np.all(np.isfinite(b)):
            cos = np.clip((np.trace(a.T @ b) - 1.0) / 2.0, -1.0, 1.0)
            angles.append(math.degrees(math.acos(cos)))
    return float(np.sqrt(np.mean(np.square(angles)))) if angles else float('nan')


def lag_frames(measured: np.ndarray, truth: np.ndarray, max_lag: float = 6.0) -> float:
    """
    Measure the delay (frames) of `measured` behind `truth`, both (T, J, 2).

    It is the shift of the truth (linearly interpolated, 0.05-frame steps) that best matches
    the measurement.
    """
    t = np.arange(len(truth), dtype=np.float64)
    ok = np.all(np.isfinite(measured), axis=(1, 2))
    flat = truth.reshape(len(truth), -1)
    best, best_err = 0.0, float('inf')
    for lag in np.arange(-2.0, max_lag + 1e-9, 0.05):
        shifted = np.stack([np.interp(t - lag, t, flat[:, i]) for i in range(flat.shape[1])],
                           axis=1).reshape(truth.shape)
        keep = ok & (t - lag >= 0) & (t - lag <= t[-1])
        err = float(np.mean((measured[keep] - shifted[keep]) ** 2))
        if err < best_err:
            best, best_err = float(lag), err
    return best


@dataclass
class JitterRow:
    """One filter setting on one synthetic sequence."""

    sequence: str
    filter: str  # noqa: A003 (a key of the --json output)
    tip_px: float
    wrist_px: float
    tip_mm: float = float('nan')
    wrist_mm: float = float('nan')
    rot_deg: float = float('nan')
    lag_frames: float = float('nan')
    lag_ms: float = float('nan')
    tip_rms_px: float = float('nan')  # distance of the tips to their true positions


def measure(seq: SyntheticSequence, track: Track, filter_name: str) -> JitterRow:
    kp = track.keypoints
    if seq.still:
        return JitterRow(
            seq.name, filter_name, step_rms(kp[:, TIPS]), step_rms(kp[:, [WRIST]]),
            tip_mm=1000 * step_rms(track.camera[:, TIPS]),
            wrist_mm=1000 * step_rms(track.camera[:, [WRIST]]),
            rot_deg=rotation_step_deg(track.rotation))
    truth = true_trajectory(seq.affines, kp)
    residual = kp - truth
    joints = TIPS + [WRIST]
    lag = lag_frames(kp[:, joints], truth[:, joints])
    err = np.linalg.norm(residual[:, TIPS], axis=-1)
    return JitterRow(
        seq.name, filter_name, step_rms(residual[:, TIPS]), step_rms(residual[:, [WRIST]]),
        lag_frames=lag, lag_ms=1000.0 * lag / seq.fps,
        tip_rms_px=float(np.sqrt(np.nanmean(err ** 2))))


def run_sequence(make_tracker: Callable[[], object], seq: SyntheticSequence,
                 camera: CameraIntrinsics) -> list[FrameResult]:
    tracker = make_tracker()
    return [tracker.process(f, 'bgr', camera=camera, timestamp=k / seq.fps)
            for k, f in enumerate(seq.frames)]


def camera_for_distance(results: list[FrameResult], camera: CameraIntrinsics
                        ) -> CameraIntrinsics:
    """Intrinsics under which the tracked hand is TARGET_DISTANCE_M away (z scales with f)."""
    z = [h.camera.wrist_position[2] for r in results for h in r.hands
         if h.camera is not None and h.camera.valid]
    factor = TARGET_DISTANCE_M / float(np.median(z)) if z else 1.0
    return CameraIntrinsics(camera.fx * factor, camera.fy * factor, camera.cx, camera.cy)


# ---------------------------------------------------------------- bone-length stability

@dataclass
class StabilityRow:
    """Bone-length CV per track (mean over tracks), and camera-frame wrist distance noise."""

    pipeline: str
    cv_hand: float
    cv_camera: float
    wrist_noise_mm: float  # RMS second difference of the wrist's distance to the camera
    tracks: int = 0
    notes: list[str] = field(default_factory=list)


def _stability(name: str, tracks: list[tuple[np.ndarray, np.ndarray]]) -> StabilityRow:
    """tracks: per track (T, 21, 3) hand-centric and (T, 21, 3) camera (NaN = invalid)."""
    long = [(w, c) for w, c in tracks if len(w) >= 10]
    cv_hand = [bone_length_cv(w) for w, _ in long]
    cv_cam, noise = [], []
    for _, c in long:
        c = c[np.all(np.isfinite(c), axis=(1, 2))]
        if len(c) >= 10:
            cv_cam.append(bone_length_cv(c))
            dist = np.linalg.norm(c[:, WRIST], axis=-1)
            noise.append(float(np.sqrt(np.mean(np.diff(dist, 2) ** 2))) * 1000)
    return StabilityRow(name, float(np.mean(cv_hand)), float(np.mean(cv_cam)),
                        float(np.mean(noise)), len(long))


def _ours_tracks(results: list[FrameResult]) -> list[tuple[np.ndarray, np.ndarray]]:
    tracks: dict[int, tuple[list, list]] = {}
    for r in results:
        for h in r.hands:
            w, c = tracks.setdefault(h.id, ([], []))
            w.append(h.world)
            c.append(h.camera.keypoints if h.camera is not None and h.camera.valid
                     else np.full((21, 3), np.nan))
    return [(np.asarray(w), np.asarray(c)) for w, c in tracks.values()]


def golden_tracks(sequence: dict, width: int, height: int, camera: CameraIntrinsics
                  ) -> list[tuple[np.ndarray, np.ndarray]]:
    """
    Link official MediaPipe's hands into tracks (nearest wrist: it gives no ids).

    Their camera frame comes from this package's PnP of MediaPipe's own world landmarks.
    """
    open_tracks: list[dict] = []
    done: list[dict] = []
    for entry in sequence['frames']:
        hands = []
        for h in entry['hands']:
            px = np.asarray(h['landmarks_norm'])[:, :2] * [width, height]
            world = np.asarray(h['world_m'])
            cam = solve_camera_frame(px, world, camera, image_size=(width, height))
            hands.append((px, world, cam.keypoints if cam.valid else np.full((21, 3), np.nan)))
        still_open = []
        for px, world, cam in hands:
            size = np.ptp(px, axis=0).max()
            match = min(open_tracks, default=None, key=lambda t: np.linalg.norm(
                t['px'][WRIST] - px[WRIST]))
            if match is not None and np.linalg.norm(match['px'][WRIST] - px[WRIST]) < 0.3 * size:
                open_tracks = [t for t in open_tracks if t is not match]
            else:
                match = {'world': [], 'cam': []}
            match['px'] = px
            match['world'].append(world)
            match['cam'].append(cam)
            still_open.append(match)
        done += open_tracks
        open_tracks = still_open
    return [(np.asarray(t['world']), np.asarray(t['cam'])) for t in done + open_tracks]


def detect_json_tracks(path: Path, camera_given: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    """Tracks of a `hand-pose-ros detect --running-mode video` JSON (by track id)."""
    doc = json.loads(path.read_text())
    tracks: dict[int, tuple[list, list]] = {}
    for image in doc['images']:
        for h in image['hands']:
            w, c = tracks.setdefault(h['id'], ([], []))
            w.append(h['keypoints_3d'])
            cam = h.get('keypoints_camera')
            c.append(cam if cam is not None else np.full((21, 3), np.nan))
    return [(np.asarray(w, dtype=np.float64), np.asarray(c, dtype=np.float64))
            for w, c in tracks.values()]


def motion_stability(data: Path, base: BaseOptions, runtime: Runtime
                     ) -> list[StabilityRow]:
    """
    Measure the bone-length CV on shared/data/motion.

    This package with and without skeleton_lock, and official MediaPipe's golden video
    output on the same frames.
    """
    golden = json.loads((data / 'motion' / 'golden_mediapipe_video.json').read_text())
    rows: dict[str, list] = {'skeleton_lock off': [], 'skeleton_lock on': [],
                             'official MediaPipe (golden)': []}
    for sequence in tqdm(golden['sequences'].values(), desc='motion sequences'):
        frames = [cv2.imread(str(data / 'motion' / e['file'])) for e in sequence['frames']]
        h, w = frames[0].shape[:2]
        camera = CameraIntrinsics(0.9 * w, 0.9 * w, w / 2, h / 2)
        for lock in (False, True):
            tracker = HandTracker(TrackerOptions(base=base, running_mode=RunningMode.VIDEO,
                                                 skeleton_lock=lock), runtime=runtime)
            results = [tracker.process(f, 'bgr', camera=camera, timestamp=k / 30.0)
                       for k, f in enumerate(frames)]
            rows[f'skeleton_lock {"on" if lock else "off"}'] += _ours_tracks(results)
        rows['official MediaPipe (golden)'] += golden_tracks(sequence, w, h, camera)
    return [_stability(name, tracks) for name, tracks in rows.items()]


# ---------------------------------------------------------------- command line

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='hand-pose-ros eval-teleop', description=__doc__.strip().split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--photos', nargs='*', default=list(DEFAULT_PHOTOS),
                        help='photos under shared/data/hands to build the sequences from')
    parser.add_argument('--frames', type=int, default=60, help='frames per sequence')
    parser.add_argument('--fps', type=float, default=30.0)
    parser.add_argument('--noise', type=float, default=3.0,
                        help='sensor noise, grey levels (std of the per-pixel Gaussian)')
    parser.add_argument('--model', default='full')
    parser.add_argument('--no-mediapipe', action='store_true',
                        help='skip the official MediaPipe pipeline even if installed')
    parser.add_argument('--no-motion', action='store_true',
                        help='skip the bone-length benchmark on shared/data/motion')
    parser.add_argument('--detect-json', nargs='*', type=Path, default=[],
                        help='also report bone-length CV of these detect --running-mode video '
                             'outputs (with --camera for the camera-frame columns)')
    parser.add_argument('--json', type=Path, default=None, help='write all rows here')
    return parser


def _mediapipe_factory(model: str) -> Callable[[], object] | None:
    try:
        from hand_pose_ros.core.mediapipe_tracker import MediaPipeTasksTracker
        options = TrackerOptions(base=BaseOptions(model=model),
                                 running_mode=RunningMode.VIDEO)
        MediaPipeTasksTracker(options)
    except Exception as exc:  # noqa: BLE001 - optional reference, any failure skips it
        print(f'official MediaPipe pipeline not available ({exc}); golden output only')
        return None
    return lambda: MediaPipeTasksTracker(options)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    data = shared_data_dir()
    base = BaseOptions(model=args.model)
    runtime = CachedRuntime(create_runtime(base))
    rows: list[JitterRow] = []
    official = None if args.no_mediapipe else _mediapipe_factory(args.model)
    for photo_name in args.photos:
        photo = cv2.imread(str(data / 'hands' / photo_name))
        if photo is None:
            raise SystemExit(f'cannot read {data / "hands" / photo_name}')
        for seq in make_sequences(photo, photo_name, args.frames, args.fps, args.noise):
            camera = CameraIntrinsics(0.9 * CANVAS[0], 0.9 * CANVAS[0], CANVAS[0] / 2,
                                      CANVAS[1] / 2)

            def ours(overrides: dict[str, object]) -> Callable[[], HandTracker]:
                return lambda: HandTracker(TrackerOptions(
                    base=base, running_mode=RunningMode.VIDEO, **overrides), runtime=runtime)
            camera = camera_for_distance(
                run_sequence(ours(FILTERS['raw']), seq, camera), camera)
            runs = [(name, ours(o)) for name, o in FILTERS.items()]
            if official is not None:
                runs.append(('official MediaPipe (raw)', official))
            for name, factory in tqdm(runs, desc=seq.name):
                rows.append(measure(seq, main_track(run_sequence(factory, seq, camera)), name))
    _print_jitter(rows)
    stability: list[StabilityRow] = []
    if not args.no_motion:
        stability = motion_stability(data, base, runtime)
    for path in args.detect_json:
        stability.append(_stability(f'detect JSON {path.name}',
                                    detect_json_tracks(path, True)))
    if stability:
        _print_stability(stability)
    if args.json is not None:
        from dataclasses import asdict
        args.json.write_text(json.dumps({'jitter': [asdict(r) for r in rows],
                                         'stability': [asdict(r) for r in stability]},
                                        indent=1))
    runtime.close()
    return 0


def _print_jitter(rows: list[JitterRow]) -> None:
    print('\nJitter: RMS frame-to-frame motion after removing the true motion (synthetic '
          'sequences).\nmm and deg: camera frame, hand at 0.5 m (still sequences only); '
          'lag: vs the true motion.')
    head = (f'{"sequence":30s} {"filter":26s} {"tip px":>7s} {"wrist px":>8s} '
            f'{"tip mm":>7s} {"wrist mm":>8s} {"rot deg":>7s} {"lag fr":>6s} '
            f'{"lag ms":>6s} {"tip err px":>10s}')
    print(head)
    print('-' * len(head))
    for r in rows:
        print(f'{r.sequence:30s} {r.filter:26s} {r.tip_px:7.2f} {r.wrist_px:8.2f} '
              f'{r.tip_mm:7.2f} {r.wrist_mm:8.2f} {r.rot_deg:7.2f} {r.lag_frames:6.2f} '
              f'{r.lag_ms:6.0f} {r.tip_rms_px:10.2f}'.replace('nan', '  -'))


def _print_stability(rows: list[StabilityRow]) -> None:
    print('\nMetric hand stability on shared/data/motion (per-track bone-length CV, mean '
          'over tracks; wrist noise: RMS 2nd difference of its camera distance)')
    head = f'{"pipeline":40s} {"tracks":>6s} {"CV hand":>8s} {"CV camera":>9s} ' \
           f'{"wrist mm":>8s}'
    print(head)
    print('-' * len(head))
    for r in rows:
        print(f'{r.pipeline:40s} {r.tracks:6d} {r.cv_hand:8.2%} {r.cv_camera:9.2%} '
              f'{r.wrist_noise_mm:8.2f}')
