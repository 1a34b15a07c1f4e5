"""
Derive the opt-in int8 hand landmark models from the verified fp32 (fp16-stored) ones.

Why: the landmark model dominates tracking time. Its CONV_2D weights stored as per-channel
symmetric int8, with no DEQUANTIZE op in front, make XNNPACK run those convs with its
dynamically quantized "qd8" kernels (activations quantized to int8 per inference at run time,
int8 dot products, VNNI where the CPU has it): hand_landmark_full runs ~1.47x faster per
call on an x86 VNNI CPU, static parity with the official graph stays within the issue's
tolerances and accuracy on the annotated photos does not drop.

What stays fp32, and why (measured layer by layer on the golden images):
- the early convs conv2d .. conv2d_6 (the stem and first blocks, outputs at 112x112 and
  56x56): quantizing them loses the most accuracy while gaining little (few channels);
- conv2d_30, the last 1x1 expansion whose pooled output feeds every head: it carries the
  presence and handedness scores;
- every DEPTHWISE_CONV_2D: XNNPACK's int8 depthwise path is slower than fp32 here;
- the FULLY_CONNECTED heads: int8 moves the world landmarks by 8.7 mm;
- the palm detector (not touched here): int8 scores flip detections near the threshold.

The kept layers are named per source model (the weight tensor's TensorFlow layer name,
model_1/model/<layer>/...), and a model is only quantized when its sha256 is one of the
pinned sources, so the same bytes always come out (models.py pins the outputs' sha256).
The tflite flatbuffer is read, folded (fp16 weights to fp32) and written by tflite_file.py,
on ai-edge-litert's own flatbuffer schema, and edited with numpy: no quantization toolkit is
needed. Little-endian hosts only (x86-64, ARM64).
"""

from __future__ import annotations

from collections.abc import Collection
import hashlib

import numpy as np

# Layers that stay fp32 in both landmark variants (same layer names; see the docstring).
KEEP_FP32_LAYERS: tuple[str, ...] = (
    'conv2d', 'conv2d_1', 'conv2d_2', 'conv2d_3', 'conv2d_4', 'conv2d_5', 'conv2d_6',
    'conv2d_30')

# sha256 of the source model -> the CONV_2D layers kept fp32 in it.
KEEP_FP32_BY_SOURCE: dict[str, tuple[str, ...]] = {
    # hand_landmark_lite.tflite (mediapipe 0.10.21)
    '048edd3645c9bf7397d19a9f6e3a42957d6e414c9bea6598030a2e9b624156e6': KEEP_FP32_LAYERS,
    # hand_landmark_full.tflite (mediapipe 0.10.21)
    '11c272b891e1a99ab034208e23937a8008388cf11ed2a9d776ed3d01d0ba00e3': KEEP_FP32_LAYERS,
}


def int8_landmark_model(source: bytes) -> bytes:
    """Derive the int8 landmark model from the bytes of a pinned fp32 landmark model."""
    from hand_pose_ros.core.models import tflite_file

    digest = hashlib.sha256(source).hexdigest()
    if digest not in KEEP_FP32_BY_SOURCE:
        raise ValueError(f'no int8 recipe for a landmark model with sha256 {digest[:12]}...')
    model = tflite_file.read_model(source)
    tflite_file.fold_fp16_constants(model)
    quantize_conv_weights(model, KEEP_FP32_BY_SOURCE[digest])
    return tflite_file.model_bytes(model)


def layer_name(tensor) -> str:
    """Return a weight tensor's TensorFlow layer: 'conv2d_3' in model_1/model/conv2d_3/Conv2D..."""
    parts = tensor.name.decode().split('/')
    return parts[2] if len(parts) > 2 else parts[-1]


def quantize_conv_weights(model, keep_fp32: Collection[str]) -> int:
    """
    Per-output-channel symmetric int8 weights for every CONV_2D not in keep_fp32.

    Dynamic-range form: int8 weights with scales and no DEQUANTIZE, float activations, so
    the interpreter picks the qd8 kernels. Returns how many convs were quantized; raises
    when a kept layer is not in the model (a recipe for a different model).
    """
    from ai_edge_litert import schema_py_generated as schema
    from hand_pose_ros.core.models.tflite_file import buffer_bytes, opcode_indices

    conv = opcode_indices(model, 'CONV_2D')
    seen, quantized = set(), 0
    for graph in model.subgraphs:
        for op in graph.operators:
            if op.opcodeIndex not in conv:
                continue
            tensor = graph.tensors[op.inputs[1]]
            name = layer_name(tensor)
            seen.add(name)
            if name in keep_fp32:
                continue
            if tensor.type != schema.TensorType.FLOAT32:
                raise ValueError(f'conv {name} weights are not fp32 (fold fp16 first)')
            weights = np.frombuffer(buffer_bytes(model, tensor), np.float32).reshape(tensor.shape)
            peak = np.abs(weights).reshape(len(weights), -1).max(axis=1)
            scale = np.where(peak > 0, peak / np.float32(127.0), np.float32(1.0)).astype(
                np.float32)
            q = np.clip(np.round(weights / scale.reshape(-1, *[1] * (weights.ndim - 1))),
                        -127, 127).astype(np.int8)
            model.buffers[tensor.buffer].data = np.frombuffer(q.tobytes(), np.uint8)
            tensor.type = schema.TensorType.INT8
            params = schema.QuantizationParametersT()
            params.scale = scale.tolist()
            params.zeroPoint = [0] * len(scale)
            params.quantizedDimension = 0
            tensor.quantization = params
            quantized += 1
    missing = set(keep_fp32) - seen
    if missing:
        raise ValueError(f'layers to keep fp32 not found in the model: {sorted(missing)}')
    return quantized
