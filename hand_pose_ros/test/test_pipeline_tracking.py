"""Tracking mode on the motion sequences: ids, smoothing, detect-every-N and batching."""

from __future__ import annotations

from conftest import shared_path
import cv2
from hand_pose_ros.core.models.runtimes.litert import LiteRtRuntime
from hand_pose_ros.core.options import BaseOptions, RunningMode, TrackerOptions
from hand_pose_ros.core.tracker import FrameInput, HandTracker
from hand_pose_ros.core.tracking.smoothing import OneEuroFilter, OneEuroParams, shape_jitter
import numpy as np
import pytest

SEQUENCES = ('seq0', 'seq1', 'seq2')


@pytest.fixture(scope='module')
def frames() -> dict[str, list[np.ndarray]]:
    out = {}
    for name in SEQUENCES:
        files = sorted(shared_path('motion', name).glob('*.jpg'))
        out[name] = [cv2.imread(str(f)) for f in files]
    return out


def _run(frames: list[np.ndarray], **options) -> list:
    options.setdefault('running_mode', RunningMode.VIDEO)
    tracker = HandTracker(TrackerOptions(base=BaseOptions(model='full'), enable_gestures=False,
                                         **options))
    return [tracker.process(f, 'bgr', timestamp=k / 30.0) for k, f in enumerate(frames)]


def test_track_ids_are_stable(frames, golden_video) -> None:
    for name in SEQUENCES:
        results = _run(frames[name], smoothing=False)
        previous = {}
        for result in results:
            ids = [h.id for h in result.hands]
            assert len(set(ids)) == len(ids)
            for hand in result.hands:
                # The same physical hand (close to where a tracked id was) keeps that id.
                for old_id, old in previous.items():
                    size = np.ptp(old[:, :2], axis=0).max()
                    if np.linalg.norm(hand.keypoints[0, :2] - old[0, :2]) < 0.3 * size:
                        assert hand.id == old_id, name
            previous = {h.id: h.keypoints for h in result.hands}
    # seq2: one hand for 30 frames, then a second one enters: the first keeps its id.
    results = _run(frames['seq2'], smoothing=False)
    first = {h.id for r in results[:30] for h in r.hands}
    assert len(first) == 1
    assert first <= {h.id for h in results[-1].hands}
    assert len(results[-1].hands) == 2


def test_smoothing_cuts_jitter(frames) -> None:
    for name in SEQUENCES:
        jitter = {}
        for smoothing in (False, True):
            tracks: dict[int, list] = {}
            for result in _run(frames[name], smoothing=smoothing):
                for hand in result.hands:
                    size = np.ptp(hand.keypoints[:, :2], axis=0).max()
                    tracks.setdefault(hand.id, []).append((hand.keypoints[:, :2] / size,
                                                           hand.world))
            long = [t for t in tracks.values() if len(t) > 10]
            jitter[smoothing] = (
                np.mean([shape_jitter(np.array([k for k, _ in t])) for t in long]),
                np.mean([shape_jitter(np.array([w for _, w in t])) for t in long]))
        (raw2, raw3), (sm2, sm3) = jitter[False], jitter[True]
        print(f'\n{name} shape jitter: 2D {raw2:.2%} -> {sm2:.2%} of hand size, '
              f'world {raw3 * 1000:.2f} -> {sm3 * 1000:.2f} mm per frame^2')
        assert sm2 < 0.9 * raw2
        assert sm3 < 0.7 * raw3


def test_one_euro_follows_fast_motion_and_smooths_rest() -> None:
    rng = np.random.default_rng(0)
    filt = OneEuroFilter(OneEuroParams(min_cutoff=1.0, beta=10.0))
    noisy = 100 + rng.normal(0, 1.0, size=(120, 2))
    out = np.array([filt(x, k / 30.0, scale=100.0) for k, x in enumerate(noisy)])
    assert out[30:].std() < 0.5 * noisy[30:].std()
    filt.reset()
    ramp = np.array([[k * 5.0, 0.0] for k in range(60)])  # 150 px/s, 1.5 hand sizes/s
    out = np.array([filt(x, k / 30.0, scale=100.0) for k, x in enumerate(ramp)])
    assert abs(out[-1, 0] - ramp[-1, 0]) < 10.0  # lag under 2 frames of motion


def test_smoothing_off_by_default_in_static_mode() -> None:
    assert not TrackerOptions(running_mode=RunningMode.IMAGE).smoothing
    assert TrackerOptions(running_mode=RunningMode.VIDEO).smoothing


def test_detect_every_n_frames(frames) -> None:
    every = _run(frames['seq2'], smoothing=False)
    sparse = _run(frames['seq2'], smoothing=False, detect_every_n_frames=5)
    ran_every = sum(r.palm_detector_ran for r in every)
    ran_sparse = sum(r.palm_detector_ran for r in sparse)
    print(f'\nseq2 palm detector runs: every frame rule {ran_every}, every 5 frames '
          f'{ran_sparse} of {len(every)} frames')
    assert ran_sparse <= ran_every / 3
    # The second hand (from frame 30) is picked up within 5 frames; the first never drops.
    assert all(len(r.hands) >= 1 for r in sparse)
    assert all(len(r.hands) == 2 for r in sparse[35:])


class CountingRuntime(LiteRtRuntime):
    """The real LiteRT runtime, counting how many calls and inputs reach it."""

    def __init__(self) -> None:
        super().__init__('full')
        self.landmark_calls: list[int] = []
        self.palm_calls: list[int] = []

    def palm_detection(self, images, transforms, image_index=None, variant=None):
        self.palm_calls.append(len(transforms))
        return super().palm_detection(images, transforms, image_index, variant)

    def hand_landmarks(self, images, image_index, transforms):
        self.landmark_calls.append(len(transforms))
        return super().hand_landmarks(images, image_index, transforms)


def test_process_batch_matches_streams_and_batches_calls(frames) -> None:
    runtime = CountingRuntime()
    tracker = HandTracker(TrackerOptions(base=BaseOptions(model='full'),
                                         running_mode=RunningMode.VIDEO, smoothing=False,
                                         enable_gestures=False), runtime=runtime)
    states = [tracker.new_state() for _ in SEQUENCES]
    count = 12
    batched = [
        tracker.process_batch([FrameInput(frames[name][k], state, 'bgr')
                               for name, state in zip(SEQUENCES, states)])
        for k in range(count)]
    assert len(runtime.landmark_calls) == count  # one landmark call per batch of 3 frames
    assert max(runtime.landmark_calls) >= 4  # several hands from several cameras at once
    assert len(runtime.palm_calls) <= count
    for s, name in enumerate(SEQUENCES):
        single = _run(frames[name][:count], smoothing=False)
        for k in range(count):
            ours, ref = batched[k][s].hands, single[k].hands
            assert [h.id for h in ours] == [h.id for h in ref]
            for a, b in zip(ours, ref):
                np.testing.assert_allclose(a.keypoints, b.keypoints, atol=1e-6)
    with pytest.raises(ValueError, match='own TrackerState'):
        tracker.process_batch([FrameInput(frames['seq0'][0], states[0], 'bgr')] * 2)


def test_static_mode_carries_nothing(frames) -> None:
    results = _run(frames['seq0'][:5], running_mode=RunningMode.IMAGE)
    assert all(r.palm_detector_ran for r in results)
    assert all([h.id for h in r.hands] == list(range(len(r.hands))) for r in results)
