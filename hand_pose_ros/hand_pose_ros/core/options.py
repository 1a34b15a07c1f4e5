"""Every knob of the hand tracker, validated once so a bad value fails with a clear message."""

from __future__ import annotations

import math
from dataclasses import dataclass

from hand_pose_ros.core.models import MODEL_VARIANTS as MODELS
from hand_pose_ros.core.models import PRECISIONS

# Level 3 windows are a quarter of the short side: 270 px on 1080p, 180 px on 720p (below
# tiles.MIN_TILE_SIDE, so none there); finer levels would only upsample.
MAX_TILE_LEVELS = 3
# The ROI stops moving after 2-3 passes on a still image; more only costs time.
MAX_REFINEMENT_PASSES = 5


@dataclass
class TrackerOptions:
    """Options of HandTracker; defaults are MediaPipe's (except `mirrored` and, in static
    mode, `detection_tiles` and `landmark_refinement`; see below).

    mirrored: MediaPipe's handedness assumes a selfie (mirrored) image. Robot cameras are not
        mirrored, so by default the label is swapped to give the anatomical hand.
    static_image_mode: run the palm detector on every image and carry nothing over.
    detect_every_n_frames: in tracking mode, while at least one hand is tracked but fewer
        than max_num_hands, run the palm detector only every N frames (1 = MediaPipe's rule).
    smoothing: One Euro filter on 2D and world landmarks per track; None = on in tracking
        mode. Never applied in static mode, where ids are per-image indices, not tracks.
    roi_similarity: IoU above which two hand ROIs are the same hand (tracked hand wins).
    suppress_duplicates: also drop a hand whose next ROI overlaps an older track's in the
        same frame (MediaPipe only merges them one frame later, briefly reporting 3 hands).
    hand_scale: real hand size relative to the average hand the world landmarks assume;
        passed to metric 3D.
    precision: 'fp32' (default) or 'int8': the landmark model with int8 conv weights derived
        by quantize.py (litert only; ~1.5x faster landmark model on CPUs with int8 dot
        products, within the static parity tolerances; the palm detector stays fp32).
        runtime 'auto' then resolves to litert (with device 'cpu' or 'auto').
    device: 'auto' (a CUDA GPU when torch sees one, else the CPU), 'cpu', 'cuda' or 'cuda:N';
        runtime 'auto' picks torch on CUDA devices and litert on the CPU.
    detection_tiles: levels of extra detector views (core/tiles.py), run only when the
        whole-image view finds fewer than max_num_hands hands: 0 is MediaPipe's single view;
        1 adds a zoomed-out view (hands filling the frame) and windows of the image's short
        side (small hands; 16:9 -> 1.8x the resolution); 2 adds windows half that size; 3 a
        quarter (1080p and up). None = 2 in static mode (photos; up to 19 more detector calls
        on a 720p image, ~30 ms on 2 CPU cores) and 0 in tracking mode (where the detector
        runs on most frames). The views only add hands: the hands the single view finds,
        and their landmarks, are unchanged.
    tile_detector: the palm detector the tile views run: 'lite' (default; on SYNTHETIC
        45 px hands in 1280x720 frames it finds 29/57 against the full detector's 21/57, at
        60 px 42/57 against 33/57, with one more false hand on 38 hand-free images) or
        'full'. The whole-image view always runs `model`'s detector, as MediaPipe does.
    landmark_refinement: extra landmark-model passes per hand and image, each on the ROI
        derived from the previous pass's landmarks (the ROI tracking mode uses on the next
        frame). The landmark model was trained on such ROIs; the palm detector's ROI is
        rotated and centred less well, so the first pass on a photo is the least accurate.
        None = 2 in static mode (on the annotated photos: PCK@0.2 0.81 -> 0.86 and the wrist
        error -23 % with the full model, at one ~4 ms landmark call per hand and pass) and 0
        in tracking mode (consecutive frames converge the same way). A pass whose presence
        score falls below min_tracking_confidence keeps the previous pass's hand.
    """

    model: str = 'full'
    runtime: str = 'litert'
    device: str = 'cpu'
    num_threads: int = 2
    max_num_hands: int = 2
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    static_image_mode: bool = False
    detect_every_n_frames: int = 1
    mirrored: bool = False
    smoothing: bool | None = None
    one_euro_min_cutoff: float = 1.0
    one_euro_beta: float = 10.0
    one_euro_d_cutoff: float = 1.0
    default_fps: float = 30.0
    roi_similarity: float = 0.5
    suppress_duplicates: bool = True
    enable_gestures: bool = True
    gesture_hold_frames: int = 3
    hand_scale: float = 1.0
    precision: str = 'fp32'
    detection_tiles: int | None = None
    tile_detector: str = 'lite'
    landmark_refinement: int | None = None

    def __post_init__(self) -> None:
        self.validate()

    @property
    def tracking(self) -> bool:
        return not self.static_image_mode

    @property
    def tile_levels(self) -> int:
        if self.detection_tiles is None:
            return 2 if self.static_image_mode else 0
        return self.detection_tiles

    @property
    def refinement_passes(self) -> int:
        if self.landmark_refinement is None:
            return 2 if self.static_image_mode else 0
        return self.landmark_refinement

    @property
    def smoothing_enabled(self) -> bool:
        return self.tracking and (self.smoothing is None or bool(self.smoothing))

    def validate(self) -> None:
        """Raise ValueError naming the first invalid option."""
        if self.model not in MODELS:
            raise ValueError(f'model must be one of {MODELS}, got {self.model!r}')
        runtimes = ('auto', 'litert', 'torch')
        if self.runtime not in runtimes:
            raise ValueError(f'runtime must be one of {runtimes}, got {self.runtime!r}')
        if self.device not in ('auto', 'cpu', 'cuda') and not str(self.device).startswith('cuda:'):
            raise ValueError(
                f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}")
        _int_at_least('num_threads', self.num_threads, 1)
        _int_at_least('max_num_hands', self.max_num_hands, 1)
        _int_at_least('detect_every_n_frames', self.detect_every_n_frames, 1)
        _int_at_least('gesture_hold_frames', self.gesture_hold_frames, 1)
        for name in ('min_detection_confidence', 'min_tracking_confidence', 'roi_similarity'):
            _in_unit_interval(name, getattr(self, name))
        for name in ('one_euro_min_cutoff', 'one_euro_d_cutoff', 'default_fps', 'hand_scale'):
            _positive(name, getattr(self, name))
        _number(name := 'one_euro_beta', self.one_euro_beta)
        if self.one_euro_beta < 0:
            raise ValueError(f'{name} must be >= 0, got {self.one_euro_beta}')
        for name in ('static_image_mode', 'mirrored', 'suppress_duplicates', 'enable_gestures'):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(  # noqa: TRY004 - one exception type for all options
                    f'{name} must be a bool, got {getattr(self, name)!r}')
        if self.precision not in PRECISIONS:
            raise ValueError(f'precision must be one of {PRECISIONS}, got {self.precision!r}')
        if self.precision == 'int8' and self.runtime not in ('litert', 'auto'):
            raise ValueError(
                f"precision 'int8' needs runtime 'litert' (or 'auto'), got {self.runtime!r}")
        _optional_int_in('detection_tiles', self.detection_tiles, 0, MAX_TILE_LEVELS)
        if self.tile_detector not in MODELS:
            raise ValueError(
                f'tile_detector must be one of {MODELS}, got {self.tile_detector!r}')
        _optional_int_in('landmark_refinement', self.landmark_refinement, 0,
                         MAX_REFINEMENT_PASSES)
        if self.smoothing is not None and not isinstance(self.smoothing, bool):
            raise ValueError(f'smoothing must be a bool or None, got {self.smoothing!r}')


def _number(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f'{name} must be a number, got {value!r}')  # noqa: TRY004
    if math.isnan(value):  # type: ignore[arg-type]
        raise ValueError(f'{name} must not be NaN')


def _optional_int_in(name: str, value: object, low: int, high: int) -> None:
    """None (the mode's default) or an integer in [low, high]."""
    if value is None:
        return
    _int_at_least(name, value, low)
    if value > high:  # type: ignore[operator]
        raise ValueError(f'{name} must be <= {high}, got {value}')


def _int_at_least(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f'{name} must be an integer, got {value!r}')  # noqa: TRY004
    if value < low:
        raise ValueError(f'{name} must be >= {low}, got {value}')


def _in_unit_interval(name: str, value: object) -> None:
    _number(name, value)
    if not 0.0 <= value <= 1.0:  # type: ignore[operator]
        raise ValueError(f'{name} must be in [0, 1], got {value}')


def _positive(name: str, value: object) -> None:
    _number(name, value)
    if not value > 0 or value == float('inf'):  # type: ignore[operator]
        raise ValueError(f'{name} must be a finite number > 0, got {value}')
