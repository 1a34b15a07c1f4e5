"""The opt-in int8 landmark models: deterministic derivation, structure, parity and accuracy.

Parity and accuracy use the same assertions as the fp32 pipeline (imported, not copied):
the issue's static tolerances against official MediaPipe 0.10.21, and recall / PCK@0.2 at
least official's on the annotated photos.
"""

from __future__ import annotations

import hashlib
import shutil

from hand_pose_ros.core.models import quantize
from hand_pose_ros.core.models.catalog import (
    default_model_dir,
    FETCH_COMMAND,
    fetch_models,
    INT8_MODEL_SHA256,
    model_path,
    MODEL_SHA256,
    ModelError,
)
from hand_pose_ros.core.models.runtimes import create_runtime
from hand_pose_ros.core.options import BaseOptions, RunningMode, TrackerOptions
from hand_pose_ros.core.tracker import HandTracker
from hand_pose_ros.ros import parameters
import numpy as np
import pytest
from test_pipeline_accuracy import assert_accuracy_at_least_official
from test_pipeline_parity import assert_static_parity

INT8 = {'lite': 'hand_landmark_lite_int8.tflite', 'full': 'hand_landmark_full_int8.tflite'}


def _source(variant: str) -> bytes:
    return model_path('hand_landmark', variant).read_bytes()


@pytest.mark.parametrize('variant', ['lite', 'full'])
def test_derivation_is_deterministic_and_pinned(variant: str) -> None:
    first = quantize.int8_landmark_model(_source(variant))
    second = quantize.int8_landmark_model(_source(variant))
    assert first == second
    assert hashlib.sha256(first).hexdigest() == INT8_MODEL_SHA256[INT8[variant]]


def test_fetch_models_derives_the_int8_models_from_present_fp32_ones(tmp_path) -> None:
    # All four fetched models present: no download, only the int8 derivation runs.
    for name in MODEL_SHA256:
        shutil.copy(default_model_dir() / name, tmp_path / name)
    with pytest.raises(ModelError, match=FETCH_COMMAND):
        model_path('hand_landmark', 'full', tmp_path, precision='int8')
    assert fetch_models(tmp_path) == tmp_path
    for variant, name in INT8.items():
        path = model_path('hand_landmark', variant, tmp_path, precision='int8')
        assert path.name == name
        assert hashlib.sha256(path.read_bytes()).hexdigest() == INT8_MODEL_SHA256[name]
    (tmp_path / INT8['lite']).write_bytes(b'truncated')
    with pytest.raises(ModelError, match='corrupt'):
        model_path('hand_landmark', 'lite', tmp_path, precision='int8')


def test_int8_model_structure() -> None:
    """23 of 31 CONV_2D run int8 (no DEQUANTIZE left); kept convs, depthwise and FC stay fp32."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(model_path('hand_landmark', 'full', precision='int8')))
    tensors = interp.get_tensor_details()
    ops = interp._get_ops_details()  # noqa: SLF001 - the public API has no op list
    assert not [op for op in ops if op['op_name'] == 'DEQUANTIZE']
    int8_convs, fp32_convs = set(), set()
    for op in ops:
        if op['op_name'] not in ('CONV_2D', 'DEPTHWISE_CONV_2D', 'FULLY_CONNECTED'):
            continue
        weights = tensors[op['inputs'][1]]
        if op['op_name'] == 'CONV_2D':
            layer = weights['name'].split('/')[2]
            (int8_convs if weights['dtype'] == np.int8 else fp32_convs).add(layer)
            if weights['dtype'] == np.int8:  # per output channel, symmetric
                q = weights['quantization_parameters']
                assert len(q['scales']) == weights['shape'][0]
                assert not q['zero_points'].any()
        else:
            assert weights['dtype'] == np.float32, op
    assert fp32_convs == set(quantize.KEEP_FP32_LAYERS)
    assert len(int8_convs) == 23


def test_unknown_source_model_is_refused() -> None:
    with pytest.raises(ValueError, match='no int8 recipe'):
        quantize.int8_landmark_model(model_path('palm_detection', 'full').read_bytes())


def test_int8_outputs_do_not_depend_on_thread_count() -> None:
    """The litert runtime runs crops on 1-thread lanes or the N-thread interpreter."""
    rng = np.random.default_rng(0)
    crops = rng.random((2, 224, 224, 3), dtype=np.float32)
    outputs = []
    for threads in (1, 2):
        runtime = create_runtime(BaseOptions(runtime='litert', model='lite', num_threads=threads,
                                             precision='int8'))
        outputs.append(runtime.run_landmarks(crops))
        runtime.close()
    np.testing.assert_array_equal(outputs[0].landmarks, outputs[1].landmarks)
    np.testing.assert_array_equal(outputs[0].world, outputs[1].world)


@pytest.mark.parametrize('model', ['lite', 'full'])
def test_int8_static_parity(model: str, golden_static: dict) -> None:
    tracker = HandTracker(TrackerOptions(base=BaseOptions(model=model, precision='int8'),
                                         running_mode=RunningMode.IMAGE, enable_gestures=False,
                                         detection_tiles=0, landmark_refinement=0))
    # Issue tolerances as for fp32; the handedness score moves up to 0.042 (full) in int8.
    worst = assert_static_parity(tracker, golden_static, model, score_tolerance=0.05)
    tracker.close()
    print(f'\nint8 static parity {model}: {int(worst[3])} hands, worst mean 2D {worst[0]:.3%}, '
          f'worst max 2D {worst[1]:.3%} of hand size, worst world {worst[2] * 1000:.3f} mm')


@pytest.mark.parametrize('model', ['full', 'lite'])
def test_int8_accuracy_at_least_official(model: str, annotations: dict) -> None:
    summary = assert_accuracy_at_least_official(
        TrackerOptions(base=BaseOptions(model=model, precision='int8'),
                       running_mode=RunningMode.IMAGE, enable_gestures=False), annotations)
    print(f'\nint8 accuracy {model}: {summary}')


def test_precision_option_validation() -> None:
    with pytest.raises(ValueError, match='precision must be one of'):
        TrackerOptions(base=BaseOptions(precision='int4'), running_mode=RunningMode.VIDEO)
    with pytest.raises(ValueError, match="needs runtime 'litert'"):
        TrackerOptions(base=BaseOptions(precision='int8', runtime='torch'),
                       running_mode=RunningMode.VIDEO)
    with pytest.raises(ValueError, match='needs the litert runtime'):
        create_runtime(BaseOptions(model='lite', device='cuda', precision='int8'))
    with pytest.raises(ValueError, match='precision must be one of'):
        model_path('hand_landmark', 'full', precision='fp16')
    with pytest.raises(ValueError, match='unknown model'):
        model_path('palm_detection', 'full', precision='int8')
    # int8 exists for litert only.
    runtime = create_runtime(BaseOptions(model='lite', precision='int8'))
    assert (runtime.name, runtime.precision) == ('litert', 'int8')
    runtime.close()
    assert parameters.validate('precision', 'int4', running=False)
    assert parameters.validate('precision', 'int8', running=False) is None
    assert parameters.validate('precision', 'int8', running=True)  # restart needed
