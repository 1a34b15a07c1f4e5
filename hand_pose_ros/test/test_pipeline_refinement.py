"""Landmark refinement: more landmark-model passes per hand, each on its landmarks' own ROI.

Measured on the annotated photos against their ground truth, not against MediaPipe (whose
static mode reads each hand once; the parity tests pin landmark_refinement=0).
"""

from __future__ import annotations

from conftest import shared_path
import cv2
from hand_pose_ros.core.detection.roi import roi_from_landmarks, roi_iou
from hand_pose_ros.core.options import (
    BaseOptions,
    MAX_REFINEMENT_PASSES,
    RunningMode,
    TrackerOptions,
)
from hand_pose_ros.core.tracker import HandTracker
import numpy as np
import pytest
from test_pipeline_accuracy import evaluate
from test_pipeline_tracking import CountingRuntime


def _photos(annotations: dict) -> dict[str, np.ndarray]:
    images = {}
    for entry in annotations['images']:
        image = cv2.imread(str(shared_path('hands', entry['file'])))
        assert image is not None, entry['file']
        images[entry['file']] = image
    return images


def _mean_errors(predictions: dict[str, list[np.ndarray]], annotations: dict) -> np.ndarray:
    """Per annotated hand found by both settings' tracker: mean visible-keypoint error over
    the bbox's long side (the nearest predicted hand)."""
    errors = []
    for entry in annotations['images']:
        for gt in entry['hands']:
            truth = np.asarray(gt['keypoints_2d'], np.float64)
            visible = truth[:, 2] > 0
            side = max(gt['bbox'][2:])
            per_hand = [np.linalg.norm(p[:, :2] - truth[:, :2], axis=1)[visible].mean() / side
                        for p in predictions[entry['file']]]
            errors.append(min(per_hand, default=np.inf))
    return np.array(errors)


@pytest.mark.parametrize('model', ['full', 'lite'])
def test_refinement_improves_accuracy_on_photos(model: str, annotations: dict) -> None:
    """Measured (detection_tiles=0, so the same hands are found): full PCK@0.2 0.764 -> 0.797,
    lite 0.598 -> 0.595; mean visible-keypoint error of the found hands 0.084 -> 0.074
    (full) and 0.075 -> 0.072 (lite) of the hand's bbox side. The full model gains most."""
    images = _photos(annotations)
    results = {}
    for passes in (0, 2):
        tracker = HandTracker(TrackerOptions(base=BaseOptions(model=model),
                                             running_mode=RunningMode.IMAGE, enable_gestures=False,
                                             detection_tiles=0, landmark_refinement=passes))
        results[passes] = {name: [h.keypoints for h in tracker.process(image, 'bgr').hands]
                           for name, image in images.items()}
        tracker.close()
    (recall0, pck0), (recall2, pck2) = (evaluate(results[p], annotations) for p in (0, 2))
    err0, err2 = (_mean_errors(results[p], annotations) for p in (0, 2))
    found = np.isfinite(err0) & (err0 < 0.5)
    print(f'\nrefinement {model}: PCK@0.2 {pck0:.3f} -> {pck2:.3f}, mean error '
          f'{err0[found].mean():.4f} -> {err2[found].mean():.4f} of hand size')
    assert recall2 == recall0  # the same hands
    assert err2[found].mean() < err0[found].mean()
    if model == 'full':
        assert pck2 >= pck0 + 0.02
    else:
        assert pck2 >= pck0 - 0.01


def test_each_pass_is_one_batched_call_and_a_lost_hand_keeps_its_last_pass(
        annotations: dict) -> None:
    """Two hands (Panoptic, with tiles): 2 passes = 2 more landmark calls, each with every
    crop that held a hand. A runtime that loses every hand on the refined crops leaves pass
    0's hands, unchanged, and is not asked again."""
    image = _photos(annotations)['panoptic/005880453_01_r.jpg']
    runtime = CountingRuntime()
    tracker = HandTracker(TrackerOptions(base=BaseOptions(model='full'),
                                         running_mode=RunningMode.IMAGE, enable_gestures=False,
                                         landmark_refinement=2),
                          runtime=runtime)
    refined = tracker.process(image, 'bgr').hands
    assert len(refined) == 2
    first, *passes = runtime.landmark_calls
    assert passes == [passes[0]] * 2 and 2 <= passes[0] <= first
    for hand in refined:
        # The reported ROI is the one the reported landmarks were read from.
        assert roi_iou(hand.roi, roi_from_landmarks(hand.keypoints)) > 0.8

    class LosingRuntime(CountingRuntime):
        def hand_landmarks(self, images, image_index, transforms):
            out = super().hand_landmarks(images, image_index, transforms)
            if len(self.landmark_calls) > 1:
                out.presence[:] = 0.0
            return out

    losing = LosingRuntime()
    tracker = HandTracker(TrackerOptions(base=BaseOptions(model='full'),
                                         running_mode=RunningMode.IMAGE, enable_gestures=False,
                                         landmark_refinement=2),
                          runtime=losing)
    kept = tracker.process(image, 'bgr').hands
    single = HandTracker(TrackerOptions(base=BaseOptions(model='full'),
                                        running_mode=RunningMode.IMAGE, enable_gestures=False,
                                        landmark_refinement=0),
                         runtime=CountingRuntime()).process(image, 'bgr').hands
    assert len(losing.landmark_calls) == 2
    assert len(kept) == len(single) == 2
    for a, b in zip(kept, single):
        np.testing.assert_array_equal(a.keypoints, b.keypoints)


def test_refinement_option_defaults_and_validation() -> None:
    assert TrackerOptions(running_mode=RunningMode.IMAGE).landmark_refinement == 2
    assert TrackerOptions(running_mode=RunningMode.VIDEO).landmark_refinement == 0
    video, image = RunningMode.VIDEO, RunningMode.IMAGE
    assert TrackerOptions(running_mode=video, landmark_refinement=1).landmark_refinement == 1
    assert TrackerOptions(running_mode=image, landmark_refinement=0).landmark_refinement == 0
    for bad in (-1, MAX_REFINEMENT_PASSES + 1, 1.5, True, '2'):
        with pytest.raises(ValueError, match='landmark_refinement'):
            TrackerOptions(running_mode=RunningMode.VIDEO, landmark_refinement=bad)
