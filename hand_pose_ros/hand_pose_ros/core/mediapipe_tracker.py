"""
The official MediaPipe Tasks HandLandmarker (mediapipe 1.x): a second Tracker, for reference.

This is not a runtime: MediaPipe runs its own graph end to end (palm detection, ROI,
landmarks, tracking), so this wraps the whole task and, like HandTracker, implements the
Tracker protocol (tracker_protocol.py) and returns the same FrameResult. It exists to compare
against: its outputs are what the current official library produces from the same two models.
`hand-pose-ros detect --tracker mediapipe` runs it.

It is built on mediapipe 1.2.3 (requirements/mediapipe.txt, installed with --no-deps so it does
not pull opencv-contrib-python over opencv-python-headless). Differences from the core tracker,
all caused by what the Tasks API exposes:

- `score` is NaN: the Tasks result carries no hand presence score (hands below
  min_tracking_confidence are simply not returned).
- `roi` is derived from the returned landmarks with MediaPipe's landmarks-to-ROI rule (the rect
  tracking would use next), because the Tasks API does not return the rect it cropped.
- Track ids in video mode come from matching each hand to the previous frame's hands by
  ROI overlap; MediaPipe itself does not number hands.
- `palm_detector_ran` is True in static mode; in video mode it follows MediaPipe's rule (the
  detector runs when the previous frame had fewer than max_num_hands hands), since the Tasks API
  does not report it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
import tempfile
import zipfile

from hand_pose_ros.core.anatomy import OTHER_HAND
from hand_pose_ros.core.detection.roi import roi_from_landmarks, roi_iou
from hand_pose_ros.core.inputs.image import to_rgb
from hand_pose_ros.core.meaning.views import attach_views
from hand_pose_ros.core.metric.hand_metric import attach_camera_frames
from hand_pose_ros.core.models import tflite_file
from hand_pose_ros.core.models.catalog import default_model_dir, model_path, MODEL_SHA256
from hand_pose_ros.core.options import TrackerOptions
from hand_pose_ros.core.results import CameraIntrinsics, FrameResult, HandResult
import numpy as np

_LOG = logging.getLogger(__name__)

# Member names the Tasks HandLandmarker looks for inside a .task bundle.
_BUNDLE_MEMBERS = {
    'hand_detector.tflite': 'palm_detection',
    'hand_landmarks_detector.tflite': 'hand_landmark',
}

# Default spacing of synthetic video timestamps when the caller gives none (30 frames/s).
_DEFAULT_FRAME_MS = 33

# Two hands in consecutive frames are the same track above this ROI overlap.
_TRACK_MATCH_IOU = 0.3


def _palm_detector_bytes(variant: str, folder: Path) -> bytes:
    """
    palm_detection_<variant> as the Tasks API accepts it.

    The Tasks API reads the input normalisation from TFLite metadata, which the 0.10.21
    palm_detection_lite.tflite lacks (the full one has it). Both detectors have the same input
    and outputs, so the full model's metadata is copied in; the graph itself is unchanged.
    """
    data = model_path('palm_detection', variant, folder).read_bytes()
    model = tflite_file.read_model(data)
    if tflite_file.metadata(model) is not None:
        return data
    donor = tflite_file.metadata(
        tflite_file.read_model(model_path('palm_detection', 'full', folder).read_bytes()))
    if donor is None:
        raise RuntimeError('palm_detection_full.tflite carries no TFLite metadata to borrow')
    tflite_file.add_metadata(model, donor)
    return tflite_file.model_bytes(model)


def _bundle_stamp(variant: str) -> bytes:
    """Zip comment naming the verified source models, so a stale bundle is rebuilt."""
    names = [f'{kind}_{variant}.tflite' for kind in _BUNDLE_MEMBERS.values()]
    return ('hand_pose_ros ' + ' '.join(MODEL_SHA256[n][:16] for n in names)).encode()


def task_bundle(variant: str, model_dir: Path | None = None) -> Path:
    """
    Path of hand_landmarker_<variant>.task, built from the fetched models when needed.

    The Tasks API only loads models from a .task zip; mediapipe 1.x wheels ship none, so the
    bundle is assembled from the same verified models the core uses. It is rebuilt whenever it
    was made from other models, and written atomically so concurrent loads are safe.
    """
    folder = model_dir or default_model_dir()
    landmark = model_path('hand_landmark', variant, folder)
    bundle = folder / f'hand_landmarker_{variant}.task'
    stamp = _bundle_stamp(variant)
    try:
        with zipfile.ZipFile(bundle) as zf:
            if zf.comment == stamp and sorted(zf.namelist()) == sorted(_BUNDLE_MEMBERS):
                return bundle
    except (OSError, zipfile.BadZipFile):
        pass
    fd, tmp = tempfile.mkstemp(prefix=bundle.name, suffix='.part', dir=folder)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, 'w', zipfile.ZIP_STORED) as zf:
            zf.writestr('hand_detector.tflite', _palm_detector_bytes(variant, folder))
            zf.write(landmark, 'hand_landmarks_detector.tflite')
            zf.comment = stamp
        os.chmod(tmp, 0o644)
        os.replace(tmp, bundle)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    _LOG.info('built %s', bundle)
    return bundle


class MediaPipeTasksTracker:
    """
    Official MediaPipe Tasks HandLandmarker behind the core tracker's process() signature.

    `options` is the core TrackerOptions (already validated); it uses base.model,
    running_mode, max_num_hands, min_detection_confidence, min_tracking_confidence and
    mirrored; smoothing, detect_every_n_frames, detection_tiles, tile_detector,
    landmark_refinement and the runtime knobs do not apply (it is the official pipeline,
    single detector view and single landmark pass included). Running mode IMAGE runs the
    task in IMAGE mode (detector on every image), the tracking modes in VIDEO mode
    (MediaPipe's own tracking).
    """

    def __init__(self, options: TrackerOptions, model_dir: Path | None = None) -> None:
        try:
            import mediapipe as mp
            from mediapipe.tasks.python.core import base_options
            from mediapipe.tasks.python.vision import hand_landmarker
            from mediapipe.tasks.python.vision.core import vision_task_running_mode as modes
        except ImportError as exc:
            raise RuntimeError(
                'the mediapipe reference tracker needs mediapipe 1.x: pip install --no-deps '
                '-r requirements/mediapipe.txt') from exc
        self._mp = mp
        self.options = options
        running = (modes.VisionTaskRunningMode.IMAGE if not options.tracking
                   else modes.VisionTaskRunningMode.VIDEO)
        task_options = hand_landmarker.HandLandmarkerOptions(
            base_options=base_options.BaseOptions(
                model_asset_path=str(task_bundle(options.base.model, model_dir))),
            running_mode=running,
            num_hands=options.max_num_hands,
            min_hand_detection_confidence=options.min_detection_confidence,
            min_hand_presence_confidence=options.min_tracking_confidence,
            min_tracking_confidence=options.min_tracking_confidence,
        )
        self._task = hand_landmarker.HandLandmarker.create_from_options(task_options)
        self._last_ms = -1
        self._previous: list[HandResult] = []
        self._next_id = 0

    def process(
        self, image: np.ndarray, pixel_format: str = 'rgb',
        camera: CameraIntrinsics | None = None, depth: np.ndarray | None = None,
        timestamp: float | None = None,
    ) -> FrameResult:
        """
        Find the hands in one image, with the same arguments and results as HandTracker's.

        camera: metric 3D per hand, with optional registered depth. In video mode timestamps
        (seconds) must increase; without them frames are 1/30 s apart.
        """
        rgb = to_rgb(image, pixel_format)
        mp_image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=rgb)
        height, width = rgb.shape[:2]
        if not self.options.tracking:
            result = self._task.detect(mp_image)
            detector_ran = True
        else:
            timestamp_ms = (self._last_ms + _DEFAULT_FRAME_MS if timestamp is None
                            else round(timestamp * 1000.0))
            if timestamp_ms <= self._last_ms:
                raise ValueError(f'timestamp must increase: {timestamp_ms} ms after '
                                 f'{self._last_ms} ms (MediaPipe timestamp_ms must increase)')
            self._last_ms = timestamp_ms
            detector_ran = len(self._previous) < self.options.max_num_hands
            result = self._task.detect_for_video(mp_image, timestamp_ms)
        hands = [
            self._hand(lms, world, cats, width, height)
            for lms, world, cats in zip(
                result.hand_landmarks, result.hand_world_landmarks, result.handedness)
        ]
        if not self.options.tracking:
            for index, hand in enumerate(hands):
                hand.id = index
        else:
            self._assign_track_ids(hands)
        if camera is not None:
            attach_camera_frames(hands, camera, (width, height), depth, self.options.hand_scale)
        for hand in hands:
            attach_views(hand)
        return FrameResult(width=width, height=height, hands=hands,
                           palm_detector_ran=detector_ran)

    def _hand(self, landmarks, world, categories, width: int, height: int) -> HandResult:
        keypoints = np.array([[p.x * width, p.y * height, p.z * width] for p in landmarks],
                             dtype=np.float64)
        world_m = np.array([[p.x, p.y, p.z] for p in world], dtype=np.float64)
        top = categories[0]
        # mediapipe 1.x labels the unmirrored (anatomical) hand; 0.10.21 and the core's
        # raw_handedness use the selfie label, which is the opposite.
        anatomical = top.category_name
        raw = OTHER_HAND[anatomical]
        if self.options.mirrored:
            anatomical = raw
        return HandResult(
            id=-1, handedness=anatomical.lower(), handedness_score=float(top.score),
            raw_handedness=raw, score=float('nan'), keypoints=keypoints, world=world_m,
            roi=roi_from_landmarks(keypoints))

    def _assign_track_ids(self, hands: list[HandResult]) -> None:
        """Greedy ROI-overlap matching to last frame's hands: ids live while a hand is tracked."""
        pairs = sorted(
            ((roi_iou(h.roi, p.roi), i, j)
             for i, h in enumerate(hands) for j, p in enumerate(self._previous)),
            reverse=True)
        used_new: set[int] = set()
        used_old: set[int] = set()
        for iou, i, j in pairs:
            if iou < _TRACK_MATCH_IOU or i in used_new or j in used_old:
                continue
            hands[i].id = self._previous[j].id
            used_new.add(i)
            used_old.add(j)
        for hand in hands:
            if hand.id < 0:
                hand.id = self._next_id
                self._next_id += 1
        self._previous = hands

    def close(self) -> None:
        """Release the MediaPipe graph (explicitly: its __del__ fails at interpreter exit)."""
        if self._task is not None:
            self._task.close()
            self._task = None

    def __enter__(self) -> MediaPipeTasksTracker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
