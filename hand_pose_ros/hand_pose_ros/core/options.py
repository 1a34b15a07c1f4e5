"""
The tracker's settings, each defined once (see settings.py for what derives from them).

Split as MediaPipe Tasks does: `BaseOptions` selects and loads the networks (read once, when
the runtime is built), `TrackerOptions` says how the pipeline behaves and holds a
BaseOptions. Both are frozen: a live change makes a new object (HandTracker.update_options),
so a frame is always processed with one consistent set of values.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from hand_pose_ros.core.models.catalog import MODEL_VARIANTS, PRECISIONS
from hand_pose_ros.core.settings import (
    check_all,
    CLI,
    option,
    resolve_mode_defaults,
    RunningMode,
    Spec,
    specs,
)

# Level 3 windows are a quarter of the short side: 270 px on 1080p, 180 px on 720p (below
# tiles.MIN_TILE_SIDE, so none there); finer levels would only upsample.
MAX_TILE_LEVELS = 3
# The ROI stops moving after 2-3 passes on a still image; more only costs time.
MAX_REFINEMENT_PASSES = 5
RUNTIMES = ('auto', 'litert', 'torch')
DEVICE_PATTERN = r'auto|cpu|cuda(:\d+)?'
_IMAGE = RunningMode.IMAGE
_INTERNAL: tuple[str, ...] = ()  # exposed on no interface: a Python-only tuning knob


@dataclass(frozen=True)
class BaseOptions:
    """What networks run and where; fixed once a runtime is built (restart to change)."""

    model: str = option(
        'full', 'Model variant of the palm detector and landmark model.', live=False,
        choices=MODEL_VARIANTS)
    runtime: str = option(
        'auto', "Inference runtime: 'auto' = torch on a CUDA device, litert on the CPU.",
        live=False, choices=RUNTIMES)
    device: str = option(
        'auto', "Device: 'auto' (a CUDA GPU when torch sees one, else the CPU), 'cpu', "
        "'cuda' or 'cuda:N'.", live=False, pattern=DEVICE_PATTERN)
    precision: str = option(
        'fp32', "Landmark model precision: 'int8' = int8 conv weights derived from the fp32 "
        'model, about 1.5x faster on CPUs with int8 dot products, litert only (runtime '
        "'auto' then picks litert).", live=False, choices=PRECISIONS)
    num_threads: int = option(
        2, 'CPU threads of the litert runtime.', live=False, low=1, high=64)
    model_dir: str = option(
        '', "Folder of the model files; '' = $HAND_POSE_ROS_MODEL_DIR, else "
        '~/.cache/hand_pose_ros/models (filled by `hand-pose-ros fetch-models`).', live=False)

    def __post_init__(self) -> None:
        check_all(self)
        if self.precision == 'int8' and self.runtime not in ('litert', 'auto'):
            raise ValueError(
                f"precision 'int8' needs runtime 'litert' (or 'auto'), got {self.runtime!r}")


@dataclass(frozen=True)
class TrackerOptions:
    """
    How HandTracker behaves; defaults are MediaPipe's where MediaPipe has the setting.

    Differences, on purpose: `mirrored` is false (robot cameras are not mirrored, so the
    label is swapped to the anatomical hand), and in IMAGE mode `detection_tiles` and
    `landmark_refinement` default to 2 (photos; see docs/evaluation.md for the measured effect).
    """

    base: BaseOptions = field(default_factory=BaseOptions)
    running_mode: RunningMode = option(
        _IMAGE, "How frames relate: 'image' = independent photos (detector on every image), "
        "'video' = consecutive frames of one stream (tracking), 'live_stream' = a live "
        'camera, tracking (the node).', live=False,
        choices=tuple(m.value for m in RunningMode), expose=(CLI,))
    max_num_hands: int = option(
        2, 'Maximum hands reported per image or camera.', live=False, low=1, high=8)
    min_detection_confidence: float = option(
        0.5, 'Palm detector score threshold.', low=0.0, high=1.0)
    min_tracking_confidence: float = option(
        0.5, 'Hand presence below which a hand is not reported (and a track ends, so the '
        'palm detector runs again).', low=0.0, high=1.0)
    detect_every_n_frames: int = option(
        1, 'Tracking: while some but fewer than max_num_hands hands are tracked, run the palm '
        "detector only every N frames (1 = MediaPipe's rule; N picks a new hand up to N-1 "
        'frames later).', low=1, high=1000)
    detection_tiles: int = option(
        None, 'Extra palm detector views for far and near hands, run while fewer than '
        "max_num_hands hands are found (0 = MediaPipe's single view; 1 = a zoomed-out view "
        'and windows of the image height, +3 detector calls at 640x480; 2 = also '
        'half-height windows, +15; 3 = quarter-height, 1080p and up). They only add hands.',
        low=0, high=MAX_TILE_LEVELS, mode_defaults={_IMAGE: 2, RunningMode.VIDEO: 0,
                                                    RunningMode.LIVE_STREAM: 0})
    tile_detector: str = option(
        'lite', "Palm detector of the detection_tiles views ('lite' finds small hands better; "
        'the whole-image view always runs model).', choices=MODEL_VARIANTS)
    grey_detector_view: bool = option(
        True, 'On a grey frame (mono or IR camera: three equal channels) where fewer than '
        'max_num_hands hands are found, look again with more palm detector views: the full '
        "detector on the grey image and the model's on two skin-tinted copies (and, with "
        'detection_tiles, the tiles of one). The detector leans on skin colour and misses '
        'grey hands that the landmark model reads well. Their hands are checked like tile '
        'hands (check_extra_hands); colour frames are never affected.')
    landmark_refinement: int = option(
        None, 'Extra landmark passes per hand and image, each on the ROI of the previous '
        "pass's landmarks (the kind of ROI the model is trained on; tracking does this from "
        'frame to frame). Each costs one landmark call per hand; a pass that loses the hand '
        'keeps the previous one.', low=0, high=MAX_REFINEMENT_PASSES,
        mode_defaults={_IMAGE: 2, RunningMode.VIDEO: 0, RunningMode.LIVE_STREAM: 0})
    body_rois: bool = option(
        False, "Look for missed hands from people's bodies (MediaPipe Holistic's rule: pose "
        'detector and pose landmarks, a hand ROI at each visible wrist refined by hand_recrop, '
        'the landmark model on those no palm or track covers); the body also confirms or '
        'corrects handedness. Runs only while fewer than max_num_hands hands are found '
        '(tracking: every body_every_n_frames frames while so); needs `hand-pose-ros '
        "fetch-models`' body models.")
    body_every_n_frames: int = option(
        10, 'Tracking with body_rois: while fewer than max_num_hands hands are tracked, run the '
        'body pass every N frames (1 = every frame).', low=1, high=1000)
    max_bodies: int = option(
        2, 'body_rois: most people looked at per body pass (pose detections after NMS, each '
        'through the pose landmark model).', low=1, high=8)
    check_extra_hands: bool = option(
        True, 'Reject a hand found only by an extra view (detection_tiles) that lies mostly '
        'inside another hand or on a face unless the landmark model is very sure, and stop a '
        'landmark_refinement pass that jumps onto another hand (false hands, measured in '
        "docs/evaluation.md). False = the extra views' hands unchecked.")
    extra_min_presence: float = option(
        0.73, 'check_extra_hands: presence below which a hand found only by an extra view is '
        'rejected (false hands on faces and bodies score 0.5-0.9; tuned on the tuning half '
        'of eval-hands, see BENCHMARKS.md).', low=0.0, high=1.0, expose=_INTERNAL)
    extra_nested_overlap: float = option(
        0.6, "check_extra_hands: share of an extra hand's keypoint box (intersection over the "
        "smaller box) inside a kept hand's above which it is nested there.", low=0.0,
        high=1.0, expose=_INTERNAL)
    extra_nested_confident: float = option(
        0.99, 'check_extra_hands: presence above which a nested extra hand is kept anyway.',
        low=0.0, high=1.0, expose=_INTERNAL)
    mirrored: bool = option(
        False, 'The image is mirrored (selfie view): handedness is then taken as the model '
        'reports it; otherwise it is swapped to the anatomical side.')
    smoothing: bool = option(
        None, 'One Euro filtering of keypoints and wrist pose per track (tracking modes '
        'only).', mode_defaults={_IMAGE: False, RunningMode.VIDEO: True,
                                 RunningMode.LIVE_STREAM: True})
    one_euro_min_cutoff: float = option(
        0.5, 'One Euro min cutoff, Hz (lower = smoother; 0.5 chosen by eval-teleop, see '
        'BENCHMARKS.md).', low=0.001, high=100.0)
    one_euro_beta: float = option(
        10.0, 'One Euro speed coefficient (higher = less lag).', low=0.0, high=1000.0)
    one_euro_d_cutoff: float = option(
        1.0, 'One Euro cutoff of the speed estimate, Hz.', low=0.001, high=100.0,
        expose=_INTERNAL)
    default_fps: float = option(
        30.0, 'Frame rate assumed for smoothing when a frame has no timestamp.',
        low=0.1, high=10000.0, expose=_INTERNAL)
    roi_similarity: float = option(
        0.5, 'IoU above which two hand ROIs are the same hand (the tracked hand wins).',
        low=0.0, high=1.0, expose=_INTERNAL)
    suppress_duplicates: bool = option(
        True, "Drop a hand whose next ROI overlaps an older track's in the same frame "
        '(MediaPipe merges them one frame later, briefly reporting 3 hands).',
        expose=_INTERNAL)
    enable_gestures: bool = option(
        True, 'Recognise gestures.', expose=_INTERNAL)
    gesture_hold_frames: int = option(
        3, 'Frames a gesture must hold before it is reported.', low=1, high=100)
    hand_scale: float = option(
        1.0, "User's hand size relative to the model's average hand (metric 3D).",
        low=0.5, high=2.0)
    skeleton_lock: bool = option(
        None, 'Per track, lock bone lengths (and, with depth, the hand scale) after the first '
        'skeleton_lock_frames confident frames, so metric keypoints do not breathe (tracking '
        'modes only).', mode_defaults={_IMAGE: False, RunningMode.VIDEO: True,
                                       RunningMode.LIVE_STREAM: True})
    skeleton_lock_frames: int = option(
        10, 'Confident frames (presence >= 0.8) whose median bone lengths a track locks.',
        low=1, high=300)
    hold_lost_s: float = option(
        None, 'A lost hand is reported this long (s) after its last frame, flagged stale with '
        'its last pose, then dropped (0 = drop at once; tracking modes only).', low=0.0,
        high=10.0, mode_defaults={_IMAGE: 0.0, RunningMode.VIDEO: 0.2,
                                  RunningMode.LIVE_STREAM: 0.2})

    def __post_init__(self) -> None:
        if not isinstance(self.running_mode, RunningMode):
            if self.running_mode not in {m.value for m in RunningMode}:
                raise ValueError(f'running_mode must be one of '
                                 f'{", ".join(m.value for m in RunningMode)}, '
                                 f'got {self.running_mode!r}')
            object.__setattr__(self, 'running_mode', RunningMode(self.running_mode))
        if not isinstance(self.base, BaseOptions):
            raise ValueError(f'base must be BaseOptions, got {self.base!r}')  # noqa: TRY004
        resolve_mode_defaults(self, self.running_mode)
        check_all(self)
        if (self.skeleton_lock or self.hold_lost_s) and not self.tracking:
            raise ValueError('skeleton_lock and hold_lost_s need a tracking running_mode '
                             "('video' or 'live_stream'): images have no tracks")
        if self.smoothing and not self.tracking:
            raise ValueError("smoothing needs a tracking running_mode ('video' or "
                             "'live_stream'): images are not a sequence")

    @property
    def tracking(self) -> bool:
        return self.running_mode.tracking

    def replace(self, **changes: object) -> TrackerOptions:
        """Return a copy with changes (validated); BaseOptions fields may be given by name too."""
        base_names = {s.name for s in BASE_SPECS}
        base = {k: changes.pop(k) for k in list(changes) if k in base_names}
        if base:
            changes['base'] = dataclasses.replace(self.base, **base)
        return dataclasses.replace(self, **changes)


BASE_SPECS: tuple[Spec, ...] = specs(BaseOptions)
TRACKER_SPECS: tuple[Spec, ...] = specs(TrackerOptions)
# Every tracker setting by name, network selection included.
SETTINGS: dict[str, Spec] = {s.name: s for s in BASE_SPECS + TRACKER_SPECS}


def tracker_options(values: dict[str, object], **fixed: object) -> TrackerOptions:
    """
    Build TrackerOptions from flat {setting name: value} (e.g. ROS parameters).

    Other names are ignored.
    """
    base_names = {s.name for s in BASE_SPECS}
    names = {s.name for s in TRACKER_SPECS}
    base = BaseOptions(**{k: v for k, v in values.items() if k in base_names})
    kwargs = {k: v for k, v in values.items() if k in names}
    kwargs.update(fixed)
    return TrackerOptions(base=base, **kwargs)
