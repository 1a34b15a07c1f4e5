"""Parity with the official MediaPipe 0.10.21 graph on its recorded outputs (golden files)."""

from __future__ import annotations

from conftest import shared_path
import cv2
from hand_pose_ros.core.options import BaseOptions, RunningMode, TrackerOptions
from hand_pose_ros.core.tracker import HandTracker
from hand_pose_ros.tools.gpu_check import gold_pixels, match_hands
import numpy as np
import pytest


def assert_static_parity(tracker: HandTracker, golden_static: dict, model: str,
                         score_tolerance: float = 0.02) -> np.ndarray:
    """The core issue's static tolerances on every golden image; returns the worst figures.

    Same hand count, per hand mean 2D diff <= 1 % and max <= 4 % of hand size, world
    landmarks <= 2 mm, same raw handedness; handedness score within score_tolerance (not an
    issue tolerance: int8 moves it by up to 0.042). Shared by every runtime's parity test.
    Returns [worst mean 2D, worst max 2D (fractions of hand size), worst world (m), hands].
    """
    # Golden parity is with MediaPipe's single detector view; tiles add the small hands it
    # misses (test_pipeline_tiles.py checks that they leave its hands unchanged).
    assert tracker.options.detection_tiles == 0, 'parity needs detection_tiles=0'
    # Likewise MediaPipe reads each hand once, from the palm detector's ROI.
    assert tracker.options.landmark_refinement == 0, 'parity needs landmark_refinement=0'
    worst = np.zeros(4)
    for entry in golden_static['models'][model]:
        image = cv2.imread(str(shared_path('hands', entry['file'])))
        height, width = image.shape[:2]
        result = tracker.process(image, 'bgr')
        gold = [gold_pixels(h, width, height) for h in entry['hands']]
        assert len(result.hands) == len(gold), f'{entry["file"]}: hand count'
        for i, j, _ in match_hands(result.hands, gold):
            ours, ref = result.hands[i], entry['hands'][j]
            size = np.ptp(gold[j], axis=0).max()
            err = np.linalg.norm(ours.keypoints[:, :2] - gold[j], axis=1) / size
            world = np.linalg.norm(ours.world - np.asarray(ref['world_m']), axis=1).mean()
            assert err.mean() <= 0.01, f'{entry["file"]}: mean 2D diff {err.mean():.4f}'
            assert err.max() <= 0.04, f'{entry["file"]}: max 2D diff {err.max():.4f}'
            assert world <= 0.002, f'{entry["file"]}: world diff {world * 1000:.2f} mm'
            assert ours.raw_handedness == ref['handedness_raw'], entry['file']
            assert ours.handedness_score == pytest.approx(ref['handedness_score'],
                                                        abs=score_tolerance)
            worst = np.maximum(worst, [err.mean(), err.max(), world, 0])
            worst[3] += 1
    return worst


@pytest.mark.parametrize('model', ['lite', 'full'])
def test_static_parity(model: str, golden_static: dict) -> None:
    tracker = HandTracker(TrackerOptions(base=BaseOptions(model=model),
                                         running_mode=RunningMode.IMAGE, enable_gestures=False,
                                         detection_tiles=0, landmark_refinement=0))
    worst = assert_static_parity(tracker, golden_static, model)
    print(f'\nstatic parity {model}: {int(worst[3])} hands, worst mean 2D {worst[0]:.3%}, '
          f'worst max 2D {worst[1]:.3%} of hand size, worst world {worst[2] * 1000:.3f} mm')


def test_video_parity(golden_video: dict) -> None:
    frames = same = 0
    diffs = []
    for sequence in golden_video['sequences'].values():
        tracker = HandTracker(TrackerOptions(base=BaseOptions(model='full'),
                                             running_mode=RunningMode.VIDEO, smoothing=False,
                                             enable_gestures=False))
        for entry in sequence['frames']:
            image = cv2.imread(str(shared_path('motion', entry['file'])))
            height, width = image.shape[:2]
            result = tracker.process(image, 'bgr')
            gold = [gold_pixels(h, width, height) for h in entry['hands']]
            frames += 1
            same += len(result.hands) == len(gold)
            for _, j, dist in match_hands(result.hands, gold):
                diffs.append(dist / np.ptp(gold[j], axis=0).max())
        tracker.close()
    agreement, mean_diff = same / frames, float(np.mean(diffs))
    print(f'\nvideo parity full: same hand count on {same}/{frames} frames ({agreement:.1%}), '
          f'mean 2D diff {mean_diff:.3%} of hand size over {len(diffs)} hands')
    assert agreement >= 0.95
    assert mean_diff <= 0.015
