"""The torch runtime (CPU here; CI has no GPU) against LiteRT and the OpenCV warp.

Relative error of an output = max |torch - litert| / max |litert| over the whole batch: the
outputs mix near-zero and large values (logits, pixel coordinates), so an element-wise ratio
would measure noise around zero rather than the network.
"""

from __future__ import annotations

import ast
import dataclasses

import cv2
import numpy as np
import pytest
import torch
from conftest import shared_path

from hand_pose_ros.core.models import model_path
from hand_pose_ros.core.roi import full_image_roi, roi_affine, roi_from_landmarks
from hand_pose_ros.core.runtimes.base import (
    LANDMARK_INPUT_SIZE,
    PALM_INPUT_SIZE,
    warp_to_tensor,
)
from hand_pose_ros.core.runtimes.litert import LiteRtRuntime
from hand_pose_ros.core.runtimes.tflite_graph import load_graph
from hand_pose_ros.core.runtimes.torch_builder import (
    UnsupportedOpError,
    build_module,
    same_padding,
)
from hand_pose_ros.core.runtimes.torch_runtime import TorchRuntime, warp_on_device
from hand_pose_ros.core.types import Roi

torch.set_num_threads(2)

VARIANTS = ('lite', 'full')
RAW_RTOL = 1e-3


@pytest.fixture(scope='module')
def photos(annotations: list[dict]) -> list[tuple[np.ndarray, list[np.ndarray]]]:
    """Every shared photo (RGB) with its annotated hands' 2D keypoints in pixels."""
    out = []
    for entry in annotations['images']:
        bgr = cv2.imread(str(shared_path('hands', entry['file'])))
        assert bgr is not None, entry['file']
        hands = entry['hands']
        if isinstance(hands, str):  # some fixtures store the list as its repr
            hands = ast.literal_eval(hands)
        kps = [np.asarray(h['keypoints_2d'], np.float64)[:, :2] for h in hands]
        out.append((cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), kps))
    assert len(out) >= 19
    return out


@pytest.fixture(scope='module')
def palm_inputs(photos) -> tuple[list[np.ndarray], np.ndarray]:
    """Letterbox transforms of every photo, as the pipeline computes them."""
    images = [img for img, _ in photos]
    transforms = np.stack([
        roi_affine(full_image_roi(img.shape[1], img.shape[0]), PALM_INPUT_SIZE)[0]
        for img in images])
    return images, transforms


@pytest.fixture(scope='module')
def landmark_inputs(photos) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Rotated hand crops of every annotated hand (the tracking ROI of its keypoints)."""
    images, index, transforms = [], [], []
    for k, (img, hands) in enumerate(photos):
        images.append(img)
        for kp in hands:
            index.append(k)
            transforms.append(roi_affine(roi_from_landmarks(kp), LANDMARK_INPUT_SIZE)[0])
    assert len(transforms) >= len(photos)
    return images, np.array(index), np.stack(transforms)


@pytest.fixture(scope='module', params=VARIANTS)
def runtimes(request) -> tuple[TorchRuntime, LiteRtRuntime]:
    torch_rt = TorchRuntime(model=request.param, device='cpu', dtype='fp32')
    litert_rt = LiteRtRuntime(model=request.param, num_threads=2)
    yield torch_rt, litert_rt
    torch_rt.close()
    litert_rt.close()


def _nchw(batch: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous()


def _rel(a: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(a - ref).max() / np.abs(ref).max())


def test_palm_raw_outputs_match_litert(runtimes, palm_inputs) -> None:
    torch_rt, litert_rt = runtimes
    images, transforms = palm_inputs
    batch = np.stack([warp_to_tensor(i, t, PALM_INPUT_SIZE, False)
                      for i, t in zip(images, transforms)])
    ref = litert_rt.run_palm(batch)
    flat = torch_rt.run_palm_tensor(_nchw(batch)).numpy()
    n = len(batch)
    boxes = flat[:, :2016 * 18].reshape(n, 2016, 18)
    scores = flat[:, 2016 * 18:].reshape(n, 2016)
    assert _rel(boxes, ref.boxes) < RAW_RTOL
    assert _rel(scores, ref.scores) < RAW_RTOL
    # Per photo too, so one photo cannot hide behind another's larger values.
    for k in range(n):
        assert _rel(boxes[k], ref.boxes[k]) < RAW_RTOL
        assert _rel(scores[k], ref.scores[k]) < RAW_RTOL


def test_landmark_raw_outputs_match_litert(runtimes, landmark_inputs) -> None:
    torch_rt, litert_rt = runtimes
    images, index, transforms = landmark_inputs
    batch = np.stack([warp_to_tensor(images[i], t, LANDMARK_INPUT_SIZE, True)
                      for i, t in zip(index, transforms)])
    ref = litert_rt.run_landmarks(batch)
    flat = torch_rt.run_landmark_tensor(_nchw(batch)).numpy()
    m = len(batch)
    got = {
        'landmarks': flat[:, :63].reshape(m, 21, 3), 'presence': flat[:, 63],
        'handedness': flat[:, 64], 'world': flat[:, 65:128].reshape(m, 21, 3)}
    for name, value in got.items():
        assert _rel(value, getattr(ref, name)) < RAW_RTOL, name
    # The crops are real hands: the outputs must say so (guards against testing on noise).
    assert np.median(ref.presence) > 0.5


def test_runtime_interface_matches_litert_on_hands(runtimes, landmark_inputs) -> None:
    """Through the Runtime interface (device warp included) the landmarks agree to sub-pixel."""
    torch_rt, litert_rt = runtimes
    images, index, transforms = landmark_inputs
    got = torch_rt.hand_landmarks(images, index, transforms)
    ref = litert_rt.hand_landmarks(images, index, transforms)
    confident = ref.presence > 0.5
    err = np.abs(got.landmarks[confident, :, :2] - ref.landmarks[confident, :, :2])
    assert err.mean() < 0.25  # 224-pixel crop units
    assert np.abs(got.presence - ref.presence).max() < 0.02


def _random_rois(images: list[np.ndarray], per_image: int, seed: int) -> tuple:
    """ROIs of all sizes and rotations, many reaching past the image border."""
    rng = np.random.default_rng(seed)
    index, rois = [], []
    for k, img in enumerate(images):
        h, w = img.shape[:2]
        for _ in range(per_image):
            rois.append(Roi(rng.uniform(-0.1, 1.1) * w, rng.uniform(-0.1, 1.1) * h,
                            rng.uniform(0.2, 1.2) * w, rng.uniform(0.2, 1.2) * h,
                            rng.uniform(-np.pi, np.pi)))
            index.append(k)
    return np.array(index), rois


# Bounds for the device warp vs cv2.warpAffine (values in [0, 1]). OpenCV samples at 1/32
# pixel with fixed-point weights, so the two differ by a few grey levels where the image has
# strong edges; measured: mean 3.3e-4 (palm) / 2.9e-4 (landmark), max 5/255, and 0.24% of
# values more than 1.5/255 apart.
WARP_MEAN_BOUND = 1e-3
WARP_OUTLIER_LEVEL = 1.5 / 255
WARP_OUTLIER_FRACTION = 0.01
WARP_MAX_BOUND = 8 / 255


def _assert_warp_close(got: np.ndarray, ref: np.ndarray) -> None:
    diff = np.abs(got - ref)
    assert diff.mean() < WARP_MEAN_BOUND
    assert (diff > WARP_OUTLIER_LEVEL).mean() < WARP_OUTLIER_FRACTION
    assert diff.max() < WARP_MAX_BOUND


def test_device_warp_matches_cpu_warp_palm(palm_inputs) -> None:
    images, transforms = palm_inputs
    rt = TorchRuntime(model='lite', device='cpu')
    got = rt.palm_tensors(images, transforms).numpy().transpose(0, 2, 3, 1)
    ref = np.stack([warp_to_tensor(i, t, PALM_INPUT_SIZE, False)
                    for i, t in zip(images, transforms)])
    _assert_warp_close(got, ref)
    # Letterbox bands must be exactly zero, as with BORDER_CONSTANT.
    assert np.array_equal(got == 0, ref == 0) or (
        np.logical_xor(got == 0, ref == 0).mean() < 1e-3)


def test_device_warp_matches_cpu_warp_rotated_crops(photos) -> None:
    images = [img for img, _ in photos]
    index, rois = _random_rois(images, per_image=3, seed=7)
    rt = TorchRuntime(model='lite', device='cpu')
    for size, replicate in ((LANDMARK_INPUT_SIZE, True), (PALM_INPUT_SIZE, False)):
        transforms = np.stack([roi_affine(r, size)[0] for r in rois])
        atlas = rt._uploader.upload(images)
        got = warp_on_device(atlas, index, transforms, size, replicate).numpy()
        got = got.transpose(0, 2, 3, 1)
        ref = np.stack([warp_to_tensor(images[i], t, size, replicate)
                        for i, t in zip(index, transforms)])
        _assert_warp_close(got, ref)


def test_crops_of_one_image_match_single_uploads(photos) -> None:
    """Several images of different sizes in one call give the same crops as one at a time."""
    images = [img for img, _ in photos[:6]]
    index, rois = _random_rois(images, per_image=2, seed=3)
    transforms = np.stack([roi_affine(r, LANDMARK_INPUT_SIZE)[0] for r in rois])
    rt = TorchRuntime(model='lite', device='cpu')
    together = rt.landmark_tensors(images, index, transforms).numpy()
    for k in range(len(index)):
        alone = rt.landmark_tensors([images[index[k]]], np.array([0]), transforms[k:k + 1])
        # Only float32 rounding of the atlas coordinates may differ: one grey level, rarely.
        diff = np.abs(alone.numpy()[0] - together[k])
        assert diff.max() <= 1 / 255 + 1e-6
        assert (diff > 0).mean() < 1e-2


def test_batches_larger_than_the_biggest_bucket_are_chunked(landmark_inputs) -> None:
    images, index, transforms = landmark_inputs
    index, transforms = index[:5], transforms[:5]
    big = TorchRuntime(model='lite', device='cpu').hand_landmarks(images, index, transforms)
    small = TorchRuntime(model='lite', device='cpu', buckets=(2,)).hand_landmarks(
        images, index, transforms)
    np.testing.assert_allclose(small.landmarks, big.landmarks, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(small.presence, big.presence, atol=1e-6)


def test_empty_batches() -> None:
    rt = TorchRuntime(model='lite', device='cpu')
    palm = rt.palm_detection([], np.zeros((0, 2, 3)))
    assert palm.boxes.shape == (0, 2016, 18) and palm.scores.shape == (0, 2016)
    lm = rt.hand_landmarks([], np.zeros(0, int), np.zeros((0, 2, 3)))
    assert lm.landmarks.shape == (0, 21, 3) and lm.presence.shape == (0,)


def test_fp16_landmarks_within_half_a_pixel_of_fp32(landmark_inputs) -> None:
    """fp16 (CPU kernels here; the same module code runs on CUDA) vs fp32, in image pixels."""
    images, index, transforms = landmark_inputs
    index, transforms = index[:8], transforms[:8]
    fp32 = TorchRuntime(model='full', device='cpu', dtype='fp32')
    fp16 = TorchRuntime(model='full', device='cpu', dtype='fp16')
    a = fp32.hand_landmarks(images, index, transforms)
    b = fp16.hand_landmarks(images, index, transforms)
    # Crop units -> image pixels: the crop's scale is |det(A)|^(1/2) px per image px.
    scale = np.sqrt(np.abs(np.linalg.det(transforms[:, :, :2])))
    err_px = np.linalg.norm(a.landmarks[:, :, :2] - b.landmarks[:, :, :2], axis=2)
    err_px = err_px / scale[:, None]
    assert err_px.mean() < 0.5
    assert np.abs(a.presence - b.presence).max() < 0.05


def test_same_padding_is_tflite_asymmetric() -> None:
    # Stride 2, kernel 3 on 224: TFLite pads 0 before, 1 after (torch 'same' would not).
    assert same_padding(224, 3, 2) == (0, 1)
    assert same_padding(112, 5, 1) == (2, 2)
    assert same_padding(7, 3, 2) == (1, 1)
    assert same_padding(6, 2, 2) == (0, 0)


def test_unsupported_op_is_named() -> None:
    graph = load_graph(model_path('palm_detection', 'lite'))
    victim = next(op for op in graph.operators if op.name == 'PRELU')
    graph.operators[graph.operators.index(victim)] = dataclasses.replace(
        victim, name='HARD_SWISH')
    with pytest.raises(UnsupportedOpError, match=rf'HARD_SWISH \(operator #{victim.index}'):
        build_module(graph)


def test_fp16_weights_are_dequantised_at_load() -> None:
    graph = load_graph(model_path('hand_landmark', 'lite'))
    assert 'DEQUANTIZE' not in graph.op_counts()
    raw = load_graph(model_path('hand_landmark', 'lite'), fold_dequantize=False)
    assert raw.op_counts()['DEQUANTIZE'] > 50
    conv = next(op for op in graph.operators if op.name == 'CONV_2D')
    weight = graph.tensors[conv.inputs[1]]
    assert weight.data is not None and weight.data.dtype == np.float32

