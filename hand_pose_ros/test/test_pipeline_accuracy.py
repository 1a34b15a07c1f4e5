"""Accuracy on the annotated photos, against official MediaPipe's numbers on the same files.

PCK@0.2: per annotated hand, the fraction of its visible keypoints within 0.2 x the longer
side of its annotated bounding box, averaged over all annotated hands (a missed hand scores
0). Recall: fraction of annotated hands matched by a detected hand. Computed this way from
golden_mediapipe_static.json, official MediaPipe 0.10.21 scores exactly the reference values.
"""

from __future__ import annotations

from conftest import shared_path
import cv2
from hand_pose_ros.core.options import BaseOptions, RunningMode, TrackerOptions
from hand_pose_ros.core.tracker import HandTracker
import numpy as np
import pytest

OFFICIAL = {'full': (0.842, 0.762), 'lite': (0.632, 0.598)}  # recall, PCK@0.2


def evaluate(predictions: dict[str, list[np.ndarray]], annotations: dict) -> tuple[float, float]:
    """(recall, PCK@0.2); a hand matches when its mean error is < half the bbox side."""
    matched, pck = 0, []
    for image in annotations['images']:
        preds = predictions[image['file']]
        for gt in image['hands']:
            keypoints = np.asarray(gt['keypoints_2d'], dtype=np.float64)
            visible = keypoints[:, 2] > 0
            side = max(gt['bbox'][2], gt['bbox'][3])  # bbox is x, y, w, h
            errors = [np.linalg.norm(p[:, :2] - keypoints[:, :2], axis=1)[visible]
                      for p in preds]
            best = min(errors, key=np.mean, default=None)
            if best is not None and best.mean() < 0.5 * side:
                matched += 1
                pck.append(float((best < 0.2 * side).mean()))
            else:
                pck.append(0.0)
    return matched / len(pck), float(np.mean(pck))


def test_metric_reproduces_official_numbers(annotations: dict, golden_static: dict) -> None:
    for model, (recall, pck) in OFFICIAL.items():
        predictions = {}
        for entry, image in zip(golden_static['models'][model], annotations['images']):
            assert entry['file'] == image['file']
            predictions[entry['file']] = [
                np.asarray(h['landmarks_norm'])[:, :2] * [image['width'], image['height']]
                for h in entry['hands']]
        got = evaluate(predictions, annotations)
        assert got == pytest.approx((recall, pck), abs=0.0006)


def assert_accuracy_at_least_official(options: TrackerOptions, annotations: dict) -> str:
    """Recall and PCK@0.2 on the annotated photos >= official's (1e-3 margin); a summary."""
    tracker = HandTracker(options)
    predictions = {}
    for image in annotations['images']:
        result = tracker.process(cv2.imread(str(shared_path('hands', image['file']))), 'bgr')
        predictions[image['file']] = [h.keypoints for h in result.hands]
    tracker.close()
    recall, pck = evaluate(predictions, annotations)
    official_recall, official_pck = OFFICIAL[options.base.model]
    summary = (f'recall {recall:.3f} (official {official_recall}), PCK@0.2 {pck:.3f} '
               f'(official {official_pck})')
    assert recall >= official_recall - 1e-3, summary
    assert pck >= official_pck - 1e-3, summary
    return summary


@pytest.mark.parametrize('model', ['full', 'lite'])
def test_accuracy_at_least_official(model: str, annotations: dict) -> None:
    summary = assert_accuracy_at_least_official(
        TrackerOptions(base=BaseOptions(model=model), running_mode=RunningMode.IMAGE,
                       enable_gestures=False), annotations)
    print(f'\naccuracy {model}: {summary}')


@pytest.mark.parametrize('model', ['full', 'lite'])
def test_rhd_handedness_anatomical(model: str, annotations: dict) -> None:
    tracker = HandTracker(TrackerOptions(base=BaseOptions(model=model),
                                         running_mode=RunningMode.IMAGE, mirrored=False,
                                         enable_gestures=False))
    mirrored = HandTracker(TrackerOptions(base=BaseOptions(model=model),
                                          running_mode=RunningMode.IMAGE, mirrored=True,
                                          enable_gestures=False))
    rhd = [im for im in annotations['images'] if im['hands'][0]['handedness']]
    assert len(rhd) == 3
    correct = 0
    for image in rhd:
        bgr = cv2.imread(str(shared_path('hands', image['file'])))
        hands = tracker.process(bgr, 'bgr').hands
        assert len(hands) == 1, image['file']
        correct += hands[0].handedness == image['hands'][0]['handedness'].lower()
        selfie = mirrored.process(bgr, 'bgr').hands[0]
        assert selfie.handedness != hands[0].handedness
        assert selfie.raw_handedness == hands[0].raw_handedness
    print(f'\nRHD handedness {model}: {correct}/3')
    assert correct == 3
