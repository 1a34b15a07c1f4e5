"""A plain-Python view of a .tflite flatbuffer: tensors, constant data and operators.

The torch builder needs the graph, not an interpreter: which op reads which tensors, with
which options, and the weights. Reading the flatbuffer directly (the `tflite` schema package)
gives all of that without running anything; fp16 weights stored behind DEQUANTIZE ops are
dequantised here so the builder only ever sees float32 constants.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tflite

# TensorType values (schema.fbs) -> numpy dtypes.
_NUMPY_TYPES: dict[int, Any] = {
    tflite.TensorType.FLOAT32: np.float32,
    tflite.TensorType.FLOAT16: np.float16,
    tflite.TensorType.INT32: np.int32,
    tflite.TensorType.UINT8: np.uint8,
    tflite.TensorType.INT64: np.int64,
    tflite.TensorType.INT16: np.int16,
    tflite.TensorType.INT8: np.int8,
    tflite.TensorType.BOOL: np.bool_,
}

OP_NAMES: dict[int, str] = {
    v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith('_')}

ACTIVATION_NAMES: dict[int, str] = {
    v: k for k, v in vars(tflite.ActivationFunctionType).items() if not k.startswith('_')}

PADDING_NAMES: dict[int, str] = {
    v: k for k, v in vars(tflite.Padding).items() if not k.startswith('_')}


class TfliteGraphError(RuntimeError):
    """The file is not a graph this module can describe."""


@dataclass
class Tensor:
    """One tensor of the graph; `data` is set for constants (weights, shapes, paddings)."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: Any
    data: np.ndarray | None = None
    quant_scale: np.ndarray | None = None
    quant_zero_point: np.ndarray | None = None


@dataclass
class Operator:
    """One op: its builtin name, input/output tensor indices (-1 = absent) and options."""

    index: int
    name: str
    inputs: list[int]
    outputs: list[int]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class TfliteGraph:
    """The first subgraph of a model, in execution order."""

    tensors: list[Tensor]
    operators: list[Operator]
    inputs: list[int]
    outputs: list[int]

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for op in self.operators:
            counts[op.name] = counts.get(op.name, 0) + 1
        return counts


# Options table class and the fields read from it, per builtin op. Only the fields the
# builder needs; an op missing here still parses (with empty options).
_OPTION_FIELDS: dict[str, tuple[type, tuple[str, ...]]] = {
    'CONV_2D': (tflite.Conv2DOptions, (
        'Padding', 'StrideW', 'StrideH', 'DilationWFactor', 'DilationHFactor',
        'FusedActivationFunction')),
    'DEPTHWISE_CONV_2D': (tflite.DepthwiseConv2DOptions, (
        'Padding', 'StrideW', 'StrideH', 'DepthMultiplier', 'DilationWFactor',
        'DilationHFactor', 'FusedActivationFunction')),
    'MAX_POOL_2D': (tflite.Pool2DOptions, (
        'Padding', 'StrideW', 'StrideH', 'FilterWidth', 'FilterHeight',
        'FusedActivationFunction')),
    'AVERAGE_POOL_2D': (tflite.Pool2DOptions, (
        'Padding', 'StrideW', 'StrideH', 'FilterWidth', 'FilterHeight',
        'FusedActivationFunction')),
    'ADD': (tflite.AddOptions, ('FusedActivationFunction',)),
    'MUL': (tflite.MulOptions, ('FusedActivationFunction',)),
    'CONCATENATION': (tflite.ConcatenationOptions, ('Axis', 'FusedActivationFunction')),
    'RESIZE_BILINEAR': (tflite.ResizeBilinearOptions, ('AlignCorners', 'HalfPixelCenters')),
    'FULLY_CONNECTED': (tflite.FullyConnectedOptions, (
        'FusedActivationFunction', 'KeepNumDims', 'WeightsFormat')),
    'MEAN': (tflite.ReducerOptions, ('KeepDims',)),
    'DEPTH_TO_SPACE': (tflite.DepthToSpaceOptions, ('BlockSize',)),
    'STRIDED_SLICE': (tflite.StridedSliceOptions, (
        'BeginMask', 'EndMask', 'EllipsisMask', 'NewAxisMask', 'ShrinkAxisMask', 'Offset')),
}


def _snake(name: str) -> str:
    return ''.join('_' + c.lower() if c.isupper() else c for c in name).lstrip('_')


def _read_options(op: Any, name: str) -> dict[str, Any]:
    spec = _OPTION_FIELDS.get(name)
    table = op.BuiltinOptions()
    if spec is None or table is None:
        return {}
    cls, fields = spec
    opts = cls()
    opts.Init(table.Bytes, table.Pos)
    return {_snake(f): getattr(opts, f)() for f in fields}


def _read_tensor(model: Any, graph: Any, index: int) -> Tensor:
    t = graph.Tensors(index)
    type_code = t.Type()
    if type_code not in _NUMPY_TYPES:
        raise TfliteGraphError(f'tensor {t.Name()!r} has unsupported type code {type_code}')
    dtype = _NUMPY_TYPES[type_code]
    shape = tuple(int(s) for s in t.ShapeAsNumpy()) if t.ShapeLength() else ()
    tensor = Tensor(index=index, name=t.Name().decode(), shape=shape, dtype=dtype)
    buf = model.Buffers(t.Buffer())
    if buf is not None and buf.DataLength() > 0:
        values = np.frombuffer(buf.DataAsNumpy().tobytes(), dtype=dtype)
        sparsity = t.Sparsity()
        tensor.data = (values.reshape(shape).copy() if sparsity is None
                       else _densify(values, shape, sparsity, tensor.name))
    q = t.Quantization()
    if q is not None and q.ScaleLength() > 0:
        tensor.quant_scale = q.ScaleAsNumpy().astype(np.float32)
        tensor.quant_zero_point = q.ZeroPointAsNumpy().astype(np.int64)
    return tensor


_SPARSE_INDEX_VECTORS: dict[int, type] = {
    tflite.SparseIndexVector.Int32Vector: tflite.Int32Vector,
    tflite.SparseIndexVector.Uint16Vector: tflite.Uint16Vector,
    tflite.SparseIndexVector.Uint8Vector: tflite.Uint8Vector,
}


def _index_vector(kind: int, table: Any, name: str) -> np.ndarray:
    cls = _SPARSE_INDEX_VECTORS.get(kind)
    if cls is None or table is None:
        raise TfliteGraphError(f'sparse tensor {name!r}: index vector type {kind}')
    vec = cls()
    vec.Init(table.Bytes, table.Pos)
    return vec.ValuesAsNumpy().astype(np.int64) if vec.ValuesLength() else np.zeros(0, np.int64)


def _densify(values: np.ndarray, shape: tuple[int, ...], sparsity: Any, name: str
             ) -> np.ndarray:
    """A dense array from TFLite's sparse storage (dense / CSR levels, no block map).

    MediaPipe's pose detector stores its fp16 1x1 conv weights this way (zeros pruned
    along the input channels). Levels run in traversal order; a dense level enumerates its
    dense_size, a CSR level reads its segments (indexed by the parent position) and the
    indices of the stored entries. The values follow the traversal.
    """
    order = sparsity.TraversalOrderAsNumpy() if sparsity.TraversalOrderLength() else []
    if sparsity.BlockMapLength() or len(order) != len(shape):
        raise TfliteGraphError(f'sparse tensor {name!r}: block sparsity is not supported')
    coords = np.zeros((1, 0), np.int64)  # one row per position reached so far
    parent = np.zeros(1, np.int64)  # each position's index into the next level's segments
    for level in range(sparsity.DimMetadataLength()):
        meta = sparsity.DimMetadata(level)
        if meta.Format() == tflite.DimensionType.DENSE:
            size = meta.DenseSize()
            child = np.tile(np.arange(size), len(parent))
            rows = np.repeat(np.arange(len(parent)), size)
            parent = parent[rows] * size + child
        else:
            segments = _index_vector(meta.ArraySegmentsType(), meta.ArraySegments(), name)
            indices = _index_vector(meta.ArrayIndicesType(), meta.ArrayIndices(), name)
            starts, ends = segments[parent], segments[parent + 1]
            rows = np.repeat(np.arange(len(parent)), ends - starts)
            parent = np.concatenate([np.arange(a, b) for a, b in zip(starts, ends)]
                                    ) if len(rows) else np.zeros(0, np.int64)
            child = indices[parent]
        coords = np.concatenate([coords[rows], child[:, None]], axis=1)
    if len(coords) != len(values):
        raise TfliteGraphError(f'sparse tensor {name!r}: {len(values)} values for '
                               f'{len(coords)} positions')
    dense = np.zeros(shape, values.dtype)
    dims = np.empty_like(coords)
    dims[:, np.asarray(order, dtype=np.int64)] = coords
    dense[tuple(dims.T)] = values
    return dense


def _dequantize(src: Tensor) -> np.ndarray:
    """Float32 value of a constant fp16 or affine-quantised (int8/uint8) tensor."""
    assert src.data is not None
    if src.dtype == np.float16 or src.dtype == np.float32:
        return src.data.astype(np.float32)
    if src.quant_scale is None:
        raise TfliteGraphError(f'DEQUANTIZE of {src.name!r}: integer tensor without scale')
    scale, zero = src.quant_scale, src.quant_zero_point
    if scale.size > 1:  # per-channel along the first axis (TFLite's quantized_dimension 0)
        bshape = (-1,) + (1,) * (src.data.ndim - 1)
        scale, zero = scale.reshape(bshape), zero.reshape(bshape)
    return ((src.data.astype(np.float32) - zero) * scale).astype(np.float32)


def load_graph(path: str | Path, fold_dequantize: bool = True) -> TfliteGraph:
    """Parse a .tflite file; with fold_dequantize, DEQUANTIZE of constants becomes a constant.

    Folding is what makes the fp16-stored MediaPipe models plain fp32 graphs: their 100+
    DEQUANTIZE ops only ever read weights, so they disappear at load time. DENSIFY of a
    sparse constant (the pose detector's pruned weights) is always folded the same way.
    """
    buf = Path(path).read_bytes()
    model = tflite.Model.GetRootAsModel(buf, 0)
    if model.SubgraphsLength() != 1:
        raise TfliteGraphError(
            f'{path}: {model.SubgraphsLength()} subgraphs; only single-graph models are supported')
    graph = model.Subgraphs(0)
    tensors = [_read_tensor(model, graph, i) for i in range(graph.TensorsLength())]
    operators: list[Operator] = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        # Newer schemas keep codes > 127 in BuiltinCode; old files only in the deprecated byte.
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        name = OP_NAMES.get(builtin, f'BUILTIN_{builtin}')
        if name == 'CUSTOM':
            name = f'CUSTOM:{code.CustomCode().decode()}'
        inputs = [int(x) for x in op.InputsAsNumpy()] if op.InputsLength() else []
        outputs = [int(x) for x in op.OutputsAsNumpy()] if op.OutputsLength() else []
        if (fold_dequantize and name == 'DEQUANTIZE'
                and tensors[inputs[0]].data is not None):
            out = tensors[outputs[0]]
            out.data = _dequantize(tensors[inputs[0]])
            out.dtype = np.float32
            continue
        if name == 'DENSIFY' and tensors[inputs[0]].data is not None:
            # The sparse constant was densified when read (_densify): pass it on.
            source, out = tensors[inputs[0]], tensors[outputs[0]]
            out.data, out.dtype = source.data, source.dtype
            out.quant_scale, out.quant_zero_point = source.quant_scale, source.quant_zero_point
            continue
        operators.append(Operator(i, name, inputs, outputs, _read_options(op, name)))
    return TfliteGraph(
        tensors=tensors, operators=operators,
        inputs=[int(x) for x in graph.InputsAsNumpy()],
        outputs=[int(x) for x in graph.OutputsAsNumpy()])
