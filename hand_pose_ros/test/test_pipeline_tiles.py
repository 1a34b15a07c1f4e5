"""Detection tiles (core/detection/tiles.py): small hands found, MediaPipe's own hands kept.

The small-hand test pastes the shared photos, scaled down, into a 1280x720 frame whose
background is the same photo blurred: SYNTHETIC scenes, built to measure how hand size
affects detection; the real-photo test uses the annotated Panoptic frame instead.
"""

from __future__ import annotations

from conftest import shared_path
import cv2
from hand_pose_ros.core.detection.roi import roi_from_landmarks, roi_iou
from hand_pose_ros.core.detection.tiles import (
    detection_tiles,
    is_cut,
    MIN_OVERLAP,
    MIN_TILE_SIDE,
    ZOOM_OUT,
)
from hand_pose_ros.core.options import BaseOptions, RunningMode, TrackerOptions
from hand_pose_ros.core.results import PalmDetection, Roi
from hand_pose_ros.core.tracker import HandTracker
import numpy as np
import pytest
from test_pipeline_tracking import CountingRuntime

PANOPTIC = 'panoptic/005880453_01_r.jpg'  # 1280x720, the annotated right hand is 77 px long


def _annotated(annotations: dict) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """(BGR image, (21, 3) keypoints with visibility, bbox long side) of every photo."""
    out = []
    for entry in annotations['images']:
        image = cv2.imread(str(shared_path('hands', entry['file'])))
        assert image is not None, entry['file']
        hand = entry['hands'][0]
        out.append((image, np.asarray(hand['keypoints_2d'], np.float64),
                    float(max(hand['bbox'][2], hand['bbox'][3]))))
    return out


def _mean_error(hand_keypoints: np.ndarray, truth: np.ndarray) -> float:
    visible = truth[:, 2] > 0
    return float(np.linalg.norm(hand_keypoints[:, :2] - truth[:, :2], axis=1)[visible].mean())


def _found(result, truth: np.ndarray, side: float) -> bool:
    """The annotated hand is among the results (mean error < 0.2 x its size)."""
    return any(_mean_error(h.keypoints, truth) < 0.2 * side for h in result.hands)


@pytest.mark.parametrize('size', [(1280, 720), (640, 480), (1920, 1080), (720, 1280),
                                  (3840, 2160), (320, 240)])
@pytest.mark.parametrize('levels', [1, 2, 3])
def test_tiles_are_square_inside_and_overlap(size: tuple[int, int], levels: int) -> None:
    width, height = size
    zoomed, *tiles = detection_tiles(width, height, levels)
    assert (zoomed.cx, zoomed.cy) == (width / 2, height / 2)
    assert zoomed.width == zoomed.height == ZOOM_OUT * max(width, height)
    assert tiles, 'every non-square image of these sizes gets level-1 windows'
    for side in sorted({t.width for t in tiles}):
        level = [t for t in tiles if t.width == side]
        assert side >= MIN_TILE_SIDE
        for t in level:
            assert t.width == t.height and t.rotation == 0.0
            assert t.cx - side / 2 >= -1e-9 and t.cx + side / 2 <= width + 1e-9
            assert t.cy - side / 2 >= -1e-9 and t.cy + side / 2 <= height + 1e-9
        # Along each axis the windows cover the whole image, neighbours overlapping >= 25%.
        for centres, extent in (({t.cx for t in level}, width), ({t.cy for t in level}, height)):
            c = np.sort(list(centres))
            assert c[0] - side / 2 <= 1e-9 and c[-1] + side / 2 >= extent - 1e-9
            if len(c) > 1:
                assert np.diff(c).max() <= (1.0 - MIN_OVERLAP) * side + 1e-9
        assert len(level) == len({(t.cx, t.cy) for t in level})


def test_no_windows_where_they_add_nothing() -> None:
    # Square and small: only the zoomed-out view (a window would be the image or upsample).
    assert [t.width for t in detection_tiles(224, 224, 3)] == [448.0]
    assert detection_tiles(640, 480, 0) == []
    # A square image has no level-1 window (it would be the image) but finer ones.
    assert {t.width for t in detection_tiles(1000, 1000, 2)} == {2000.0, 500.0}


def test_a_palm_at_an_inner_window_edge_is_cut() -> None:
    tile = Roi(600.0, 360.0, 720.0, 720.0, 0.0)  # x 240..960 of a 1280x720 image
    keypoints = np.zeros((7, 2))

    def palm(x0, y0, x1, y1):
        return PalmDetection(0.9, np.array([x0, y0, x1, y1], np.float64), keypoints)

    assert is_cut(palm(238.0, 300.0, 300.0, 360.0), tile, 1280, 720)  # left edge is inside
    assert is_cut(palm(900.0, 300.0, 961.0, 360.0), tile, 1280, 720)  # right edge too
    # Top and bottom edges are the image's: a palm there is whole as far as anyone can see.
    assert not is_cut(palm(400.0, 0.0, 460.0, 60.0), tile, 1280, 720)
    assert not is_cut(palm(400.0, 660.0, 460.0, 720.0), tile, 1280, 720)
    assert not is_cut(palm(400.0, 300.0, 460.0, 360.0), tile, 1280, 720)


def test_options_resolve_and_validate_tile_levels() -> None:
    assert TrackerOptions(running_mode=RunningMode.IMAGE).detection_tiles == 2
    assert TrackerOptions(running_mode=RunningMode.VIDEO).detection_tiles == 0
    assert TrackerOptions(running_mode=RunningMode.VIDEO, detection_tiles=1).detection_tiles == 1
    assert TrackerOptions(running_mode=RunningMode.IMAGE, detection_tiles=0).detection_tiles == 0
    for bad in (-1, 4, 1.5, True, '2'):
        with pytest.raises(ValueError, match='detection_tiles'):
            TrackerOptions(running_mode=RunningMode.VIDEO, detection_tiles=bad)


@pytest.fixture(scope='module')
def trackers() -> dict[int | str, HandTracker]:
    """0: single view; 2: tiles (lite detector in the tiles, the default); 'full': tiles
    with the full detector."""
    made = {levels: HandTracker(TrackerOptions(base=BaseOptions(model='full'),
                                               running_mode=RunningMode.IMAGE,
                                               enable_gestures=False, detection_tiles=levels))
            for levels in (0, 2)}
    made['full'] = HandTracker(TrackerOptions(base=BaseOptions(model='full'),
                                              running_mode=RunningMode.IMAGE,
                                              enable_gestures=False, detection_tiles=2,
                                              tile_detector='full'))
    yield made
    for tracker in made.values():
        tracker.close()


def test_tiles_only_add_hands(trackers, annotations: dict) -> None:
    """Every shared photo: the single view's hands come first, bit for bit, and no hand
    found through a tile duplicates another."""
    added = 0
    for image, _, _ in _annotated(annotations):
        single = trackers[0].process(image, 'bgr').hands
        tiled = trackers[2].process(image, 'bgr').hands
        assert len(single) <= len(tiled) <= 2
        for a, b in zip(single, tiled):
            np.testing.assert_array_equal(a.keypoints, b.keypoints)
            np.testing.assert_array_equal(a.world, b.world)
            assert a.handedness == b.handedness
        rois = [roi_from_landmarks(h.keypoints) for h in tiled]
        for i in range(len(rois)):
            for j in range(i):
                assert roi_iou(rois[i], rois[j]) <= 0.5
        added += len(tiled) - len(single)
    assert added >= 1


def test_tiles_find_the_small_hand_mediapipe_misses(trackers, annotations: dict) -> None:
    """Panoptic, 1280x720: the 77 px right hand is missed by the single view (official
    MediaPipe misses it too) and found, accurately, through a tile."""
    entry = next(e for e in annotations['images'] if e['file'] == PANOPTIC)
    image = cv2.imread(str(shared_path('hands', PANOPTIC)))
    truth = np.asarray(entry['hands'][0]['keypoints_2d'], np.float64)
    side = float(max(entry['hands'][0]['bbox'][2:]))
    assert not _found(trackers[0].process(image, 'bgr'), truth, side)
    tiled = trackers[2].process(image, 'bgr')
    errors = [_mean_error(h.keypoints, truth) / side for h in tiled.hands]
    assert min(errors) < 0.05, errors  # measured 0.028 of the hand's size
    assert len(tiled.hands) == 2  # and the left hand the single view found is still there


def test_small_hands_in_a_large_frame(trackers, annotations: dict) -> None:
    """SYNTHETIC: each shared hand scaled to 45 and 90 px in a 1280x720 frame.

    Found = mean keypoint error under 0.2 x the hand's size. Measured (full landmarks):
    45 px 0/19 with the single view, 10/19 with tiles run by the full detector, 18/19 with
    the lite detector in the tiles (the default); 90 px 3/17, 17/17 and 17/17.
    """
    rng = np.random.default_rng(0)
    for target, single_max, tiled_min in ((45, 0.1, 0.8), (90, 0.3, 0.9)):
        counts = dict.fromkeys(trackers, 0)
        n = 0
        for image, truth, side in _annotated(annotations):
            scale = target / side
            small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            h, w = small.shape[:2]
            if h >= 720 or w >= 1280:
                continue
            frame = cv2.GaussianBlur(cv2.resize(image, (1280, 720)), (0, 0), 25)
            x0, y0 = int(rng.integers(0, 1280 - w)), int(rng.integers(0, 720 - h))
            frame[y0:y0 + h, x0:x0 + w] = small
            moved = truth.copy()
            moved[:, :2] = truth[:, :2] * scale + (x0, y0)
            n += 1
            for key, tracker in trackers.items():
                counts[key] += _found(tracker.process(frame, 'bgr'), moved, target)
        print(f'\n{target} px hands in 1280x720: single view {counts[0]}/{n}, tiles '
              f'{counts[2]}/{n} (full detector in the tiles {counts["full"]}/{n})')
        assert counts[0] <= single_max * n
        assert counts[2] >= tiled_min * n
        assert counts[2] >= counts['full']
    assert counts['full'] >= tiled_min * n  # at 90 px both detectors find nearly all


def test_palm_variant_runs_the_other_detector(annotations: dict) -> None:
    """A full runtime's palm_detection(variant='lite') is the lite model's output."""
    from hand_pose_ros.core.detection.roi import full_image_roi, roi_affine
    from hand_pose_ros.core.models.catalog import PALM_INPUT_SIZE
    from hand_pose_ros.core.models.runtimes.litert import LiteRtRuntime

    image = cv2.imread(str(shared_path('hands', PANOPTIC)))[:, :, ::-1].copy()
    transform = roi_affine(full_image_roi(image.shape[1], image.shape[0]), PALM_INPUT_SIZE)[0]
    full, lite = LiteRtRuntime('full'), LiteRtRuntime('lite')
    own = full.palm_detection([image], transform[None])
    other = full.palm_detection([image], transform[None], variant='lite')
    alone = lite.palm_detection([image], transform[None])
    np.testing.assert_array_equal(other.scores, alone.scores)
    assert not np.array_equal(own.scores, other.scores)
    full.close()
    lite.close()


def test_tiles_in_tracking_mode(annotations: dict) -> None:
    """detection_tiles=1 in tracking mode: both Panoptic hands tracked from the first frame
    with stable ids, and once both are tracked the detector (tiles included) stops."""
    image = cv2.imread(str(shared_path('hands', PANOPTIC)))
    runtime = CountingRuntime()
    tracker = HandTracker(TrackerOptions(base=BaseOptions(model='full'),
                                         running_mode=RunningMode.VIDEO, detection_tiles=1,
                                         smoothing=False, enable_gestures=False), runtime=runtime)
    ids = [sorted(h.id for h in tracker.process(image, 'bgr').hands) for _ in range(4)]
    assert ids == [[0, 1]] * 4
    # Frame 0: the single view (1 input), then the zoomed-out view and the 3 level-1
    # windows; then no detector.
    assert runtime.palm_calls == [1, 4]
    plain = HandTracker(TrackerOptions(base=BaseOptions(model='full'),
                                       running_mode=RunningMode.VIDEO, smoothing=False,
                                       enable_gestures=False))
    assert len(plain.process(image, 'bgr').hands) == 1
    tracker.close()
    plain.close()


def test_hands_filling_the_frame(trackers, annotations: dict) -> None:
    """SYNTHETIC: each shared hand cropped so that it spans the whole 480x480 frame (a hand
    close to the camera), where the detector's anchors are too small for it.

    Measured (full landmarks): 7/19 with the single view, 12/19 with the zoomed-out view
    through the lite detector (the default), 13/19 through the full one.
    """
    counts = dict.fromkeys(trackers, 0)
    for image, truth, side in _annotated(annotations):
        centre = (truth[:, :2].min(axis=0) + truth[:, :2].max(axis=0)) / 2
        scale = 480.0 / side
        affine = np.array([[scale, 0.0, 240.0 - scale * centre[0]],
                           [0.0, scale, 240.0 - scale * centre[1]]])
        frame = cv2.warpAffine(image, affine, (480, 480), borderMode=cv2.BORDER_REPLICATE)
        moved = truth.copy()
        moved[:, :2] = truth[:, :2] * scale + affine[:, 2]
        for levels, tracker in trackers.items():
            counts[levels] += _found(tracker.process(frame, 'bgr'), moved, 480.0)
    print(f'\nhands filling the frame: single view {counts[0]}/19, tiles {counts[2]}/19 '
          f'(full detector in the tiles {counts["full"]}/19)')
    assert counts[0] <= 9
    assert counts[2] >= counts[0] + 4
