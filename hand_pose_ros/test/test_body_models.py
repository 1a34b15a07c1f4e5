"""Body-guided hand ROIs (core/detection/body.py, option body_rois): the body models on both
runtimes, and a hand the palm detector alone misses on a labelled body photo.

Relative error of an output = max |torch - litert| / max |litert| (as in
test_torch_runtime.py): the outputs mix near-zero logits and large pixel coordinates.
"""

from __future__ import annotations

import json

from conftest import shared_path
import cv2
from hand_pose_ros.core.detection.body import BodyNetworks, hand_roi_from_pose, roi_from_recrop
from hand_pose_ros.core.models.catalog import body_model_path, BODY_MODEL_SHA256
from hand_pose_ros.core.models.runtimes.litert import LiteRtRuntime
from hand_pose_ros.core.options import TrackerOptions
from hand_pose_ros.core.tracker import HandTracker
import numpy as np
import pytest

BODY_PHOTO = 'posetrack18/009473_mpii_test_000000.jpg'


@pytest.fixture(scope='module')
def litert() -> LiteRtRuntime:
    runtime = LiteRtRuntime('full', 2)
    yield runtime
    runtime.close()


@pytest.mark.parametrize('name', [n.removesuffix('.tflite') for n in BODY_MODEL_SHA256])
def test_body_model_raw_outputs_torch_match_litert(name: str) -> None:
    """Every body model builds in torch (sparse weights, DEPTH_TO_SPACE, STRIDED_SLICE) and
    its raw outputs match LiteRT's on a random input."""
    from ai_edge_litert.interpreter import Interpreter
    from hand_pose_ros.core.models.runtimes.torch_builder import build_module
    from hand_pose_ros.core.models.tflite_file import load_graph
    import torch

    path = body_model_path(name)
    interp = Interpreter(model_path=str(path), num_threads=1)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    x = np.random.default_rng(0).random(inp['shape'], dtype=np.float32)
    interp.set_tensor(inp['index'], x)
    interp.invoke()
    expected = {d['name']: interp.get_tensor(d['index']) for d in interp.get_output_details()}
    graph = load_graph(path)
    with torch.no_grad():
        outs = build_module(graph)(torch.from_numpy(x).permute(0, 3, 1, 2))
    assert len(outs) == len(expected)
    for tid, out in zip(graph.outputs, outs):
        ref = expected[graph.tensors[tid].name]
        got = out.numpy()
        assert got.shape == ref.shape
        scale = max(float(np.abs(ref).max()), 1e-6)
        assert float(np.abs(got - ref).max()) / scale < 1e-3, graph.tensors[tid].name


def test_hand_roi_from_pose_geometry() -> None:
    """Holistic's rule: centre at (2 index + pinky) / 3, side 2.7 x 2 |middle - wrist|,
    shifted 0.1 side towards the fingers; a hand pointing up is unrotated."""
    wrist, pinky, index = np.array([100.0, 200.0]), np.array([90.0, 170.0]), np.array(
        [105.0, 170.0])
    roi = hand_roi_from_pose(wrist, pinky, index)
    middle = (2 * index + pinky) / 3
    side = 2 * np.hypot(*(middle - wrist)) * 2.7
    assert roi.width == pytest.approx(side) and roi.height == pytest.approx(side)
    assert abs(roi.rotation) < 0.2
    assert roi.cy < middle[1]  # moved towards the fingers
    # hand_recrop's points: centre then a point below it (target angle -90 degrees).
    rect = roi_from_recrop(np.array([[50.0, 50.0], [50.0, 70.0]]))
    assert rect.rotation == pytest.approx(0.0, abs=1e-9)
    assert rect.width == pytest.approx(40.0)


def _labelled_photo() -> tuple[np.ndarray, dict]:
    folder = shared_path('bodies')
    ann = json.loads((folder / 'annotations.json').read_text())
    entry = next(im for im in ann['images'] if im['file'] == BODY_PHOTO)
    image = cv2.cvtColor(cv2.imread(str(folder / BODY_PHOTO)), cv2.COLOR_BGR2RGB)
    return image, entry


def _near_labelled_wrist(hand, entry: dict) -> bool:
    for person in entry['people']:
        for side in ('left', 'right'):
            x, y, v = person[f'{side}_wrist']
            limit = 0.5 * (person['forearm_px'] or 50.0)
            if v and np.hypot(*(hand.keypoints[0, :2] - (x, y))) < limit:
                return True
    return False


def test_body_rois_find_a_hand_the_palm_detector_misses(litert: LiteRtRuntime) -> None:
    """A dancer's hand (posetrack18, 1920x1080, forearm ~60 px) that the whole-image palm
    detector does not find; the body pass finds it at the labelled wrist."""
    image, entry = _labelled_photo()
    plain = TrackerOptions(detection_tiles=0, landmark_refinement=0)
    off = HandTracker(plain, runtime=litert).process(image)
    assert not any(_near_labelled_wrist(h, entry) for h in off.hands)
    assert not off.body_pass_ran and off.bodies == []
    on = HandTracker(plain.replace(body_rois=True), runtime=litert).process(image)
    assert on.body_pass_ran and len(on.bodies) >= 1
    body_hands = [h for h in on.hands if h.found_by == 'body']
    assert body_hands and all(_near_labelled_wrist(h, entry) for h in body_hands)
    assert len(on.hands) <= plain.max_num_hands


def test_body_networks_several_people(litert: LiteRtRuntime) -> None:
    """Two labelled people, both found by one pose detector pass (max_bodies 2)."""
    folder = shared_path('bodies')
    image = cv2.cvtColor(cv2.imread(str(
        folder / 'aic/ff945ae2e729f24eea992814639d59b3bdec8bd8.jpg')), cv2.COLOR_BGR2RGB)
    net = BodyNetworks(litert)
    rois = net.detect(image, 4)
    poses = [p for p in net.landmarks([image], [(0, r) for r in rois]) if p is not None]
    assert len(poses) >= 2
    hands = net.hands([image], [(0, p) for p in poses])
    assert {h.side for _, h in hands} == {'left', 'right'}


def test_body_rois_off_by_default_and_tracking_schedule() -> None:
    options = TrackerOptions()
    assert options.body_rois is False
    tracking = TrackerOptions(running_mode='video', body_rois=True, body_every_n_frames=5)
    from hand_pose_ros.core.tracker import TrackerState
    state = TrackerState(tracking)
    assert state.should_run_body(0)
    state.last_body_frame, state.frame_index = 0, 3
    assert not state.should_run_body(1)
    state.frame_index = 5
    assert state.should_run_body(1)
    assert not state.should_run_body(tracking.max_num_hands)
