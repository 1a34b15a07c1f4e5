"""
The one reader and writer of .tflite flatbuffers, and the one fp16 weight fold.

Three parts of the package look inside the model files rather than run them: the torch
runtime rebuilds the graph as torch modules (it needs every op, its options and the weights),
quantize.py derives the int8 landmark models (it edits weights and writes a new file), and
the MediaPipe Tasks reference copies a TFLite metadata block between two models. All three go
through this module, which uses the flatbuffer schema that ai-edge-litert ships
(`ai_edge_litert.schema_py_generated`, generated from the same schema.fbs as its
interpreter, operator options included) and its flatbuffer_utils for reading and writing. So
the schema always matches the interpreter the default runtime uses, and no other TFLite
schema package (`tflite` from PyPI, mediapipe's metadata schema) is needed.

fold_fp16_constants is the only place fp16 weights become fp32: the MediaPipe models store
their weights as fp16 constants behind DEQUANTIZE ops, which the interpreter folds at load
time; the torch graph and the int8 derivation both start from the same folded fp32 weights.
Little-endian hosts only, like the models themselves (flatbuffer_utils byte-swaps on
big-endian ones).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.tools import flatbuffer_utils as fbu
import numpy as np

#: Name of the metadata entry holding a TFLite Metadata flatbuffer (input normalisation etc.).
TFLITE_METADATA = 'TFLITE_METADATA'

# TensorType values (schema.fbs) -> numpy dtypes.
_NUMPY_TYPES: dict[int, Any] = {
    schema.TensorType.FLOAT32: np.float32,
    schema.TensorType.FLOAT16: np.float16,
    schema.TensorType.INT32: np.int32,
    schema.TensorType.UINT8: np.uint8,
    schema.TensorType.INT64: np.int64,
    schema.TensorType.INT16: np.int16,
    schema.TensorType.INT8: np.int8,
    schema.TensorType.BOOL: np.bool_,
}


def _enum_names(enum: type) -> dict[int, str]:
    return {v: k for k, v in vars(enum).items() if not k.startswith('_')}


OP_NAMES: dict[int, str] = _enum_names(schema.BuiltinOperator)
ACTIVATION_NAMES: dict[int, str] = _enum_names(schema.ActivationFunctionType)
PADDING_NAMES: dict[int, str] = _enum_names(schema.Padding)


class TfliteGraphError(RuntimeError):
    """The file is not a graph this module can describe."""


# ---- the flatbuffer as an editable object tree (schema.ModelT) ----

def read_model(data: bytes) -> Any:
    """Read the model as ai-edge-litert's object tree (schema.ModelT), ready to edit."""
    return fbu.read_model_from_bytearray(bytearray(data))


def model_bytes(model: Any) -> bytes:
    """Serialise the object tree back into a .tflite file (identifier TFL3)."""
    return bytes(fbu.convert_object_to_bytearray(model))


def opcode_indices(model: Any, name: str) -> set[int]:
    """Return the indices into model.operatorCodes of the builtin op `name` (e.g. 'CONV_2D')."""
    code = getattr(schema.BuiltinOperator, name)
    return {i for i, oc in enumerate(model.operatorCodes)
            if fbu.get_builtin_code_from_operator_code(oc) == code}


def buffer_bytes(model: Any, tensor: Any) -> bytes:
    """Return the constant data of `tensor` (b'' for a tensor computed at run time)."""
    data = model.buffers[tensor.buffer].data
    return b'' if data is None else bytes(bytearray(data))


def metadata(model: Any, name: str = TFLITE_METADATA) -> bytes | None:
    """Return the bytes of the metadata entry `name`, or None when the model has none."""
    for entry in model.metadata or []:
        if _text(entry.name) == name:
            data = model.buffers[entry.buffer].data
            return b'' if data is None else bytes(bytearray(data))
    return None


def add_metadata(model: Any, data: bytes, name: str = TFLITE_METADATA) -> None:
    """Append a metadata entry `name` holding `data` (in a new buffer) to the model."""
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(data, np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = name
    entry.buffer = len(model.buffers) - 1
    model.metadata = list(model.metadata or []) + [entry]


def fold_fp16_constants(model: Any) -> int:
    """
    Replace each fp16 constant -> DEQUANTIZE pair by an fp32 constant; returns the count.

    The folded graph is what the interpreter builds at load time anyway, and it is what the
    torch builder and the int8 quantizer start from. The fp16 tensors are dropped; their
    buffers stay (emptied) so no buffer index moves. The new fp32 buffers are appended in
    operator order, so the result (and quantize.py's pinned sha256) is deterministic.
    """
    dequantize = opcode_indices(model, 'DEQUANTIZE')
    folded = 0
    for graph in model.subgraphs:
        kept_ops, dead = [], set()
        for op in graph.operators:
            source = _fp16_constant(model, graph, op, dequantize)
            if source is None:
                kept_ops.append(op)
                continue
            weights = np.frombuffer(buffer_bytes(model, source), np.float16).astype(np.float32)
            buffer = schema.BufferT()
            buffer.data = np.frombuffer(weights.tobytes(), np.uint8)
            model.buffers.append(buffer)
            graph.tensors[op.outputs[0]].buffer = len(model.buffers) - 1
            dead.add(op.inputs[0])
            folded += 1
        graph.operators = kept_ops
        dead -= {i for op in kept_ops for i in op.inputs}
        _drop_tensors(model, graph, dead)
    return folded


def _fp16_constant(model: Any, graph: Any, op: Any, dequantize: set[int]) -> Any | None:
    """Return the fp16 constant tensor a DEQUANTIZE op reads, or None for any other op."""
    if op.opcodeIndex not in dequantize:
        return None
    tensor = graph.tensors[op.inputs[0]]
    data = model.buffers[tensor.buffer].data
    if tensor.type != schema.TensorType.FLOAT16 or data is None or not len(data):
        return None
    return tensor


def _drop_tensors(model: Any, graph: Any, dead: set[int]) -> None:
    remap, tensors = {}, []
    for i, tensor in enumerate(graph.tensors):
        if i in dead:
            model.buffers[tensor.buffer].data = None
            continue
        remap[i] = len(tensors)
        tensors.append(tensor)
    graph.tensors = tensors

    def moved(indices) -> list[int]:
        return [remap[i] if i >= 0 else i for i in indices]

    for op in graph.operators:
        op.inputs, op.outputs = moved(op.inputs), moved(op.outputs)
        if op.intermediates is not None and len(op.intermediates):
            op.intermediates = moved(op.intermediates)
    graph.inputs, graph.outputs = moved(graph.inputs), moved(graph.outputs)


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ''
    return value.decode() if isinstance(value, bytes) else value


# ---- a plain view of the graph, for the torch builder ----

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
    """
    One op: its builtin name, input/output tensor indices (-1 = absent) and options.

    `index` is the operator's position in the file (before folding), as tools show it.
    """

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


# Option fields (schema.fbs names, snake_case) read per builtin op: only those the builder
# needs; an op missing here still parses (with empty options).
_OPTION_FIELDS: dict[str, tuple[str, ...]] = {
    'CONV_2D': ('padding', 'stride_w', 'stride_h', 'dilation_w_factor', 'dilation_h_factor',
                'fused_activation_function'),
    'DEPTHWISE_CONV_2D': ('padding', 'stride_w', 'stride_h', 'depth_multiplier',
                          'dilation_w_factor', 'dilation_h_factor', 'fused_activation_function'),
    'MAX_POOL_2D': ('padding', 'stride_w', 'stride_h', 'filter_width', 'filter_height',
                    'fused_activation_function'),
    'AVERAGE_POOL_2D': ('padding', 'stride_w', 'stride_h', 'filter_width', 'filter_height',
                        'fused_activation_function'),
    'ADD': ('fused_activation_function',),
    'MUL': ('fused_activation_function',),
    'CONCATENATION': ('axis', 'fused_activation_function'),
    'RESIZE_BILINEAR': ('align_corners', 'half_pixel_centers'),
    'FULLY_CONNECTED': ('fused_activation_function', 'keep_num_dims', 'weights_format'),
    'MEAN': ('keep_dims',),
    'DEPTH_TO_SPACE': ('block_size',),
    'STRIDED_SLICE': ('begin_mask', 'end_mask', 'ellipsis_mask', 'new_axis_mask',
                      'shrink_axis_mask', 'offset'),
}


def _camel(name: str) -> str:
    """schema.fbs field name -> the object API's attribute ('stride_w' -> 'strideW')."""
    head, *rest = name.split('_')
    return head + ''.join(part[:1].upper() + part[1:] for part in rest)


def _options(op: Any, name: str) -> dict[str, Any]:
    fields = _OPTION_FIELDS.get(name)
    if fields is None or op.builtinOptions is None:
        return {}
    return {f: getattr(op.builtinOptions, _camel(f)) for f in fields}


def _tensor(model: Any, index: int, t: Any) -> Tensor:
    if t.type not in _NUMPY_TYPES:
        raise TfliteGraphError(f'tensor {_text(t.name)!r} has unsupported type code {t.type}')
    dtype = _NUMPY_TYPES[t.type]
    shape = tuple(int(s) for s in t.shape) if t.shape is not None else ()
    tensor = Tensor(index=index, name=_text(t.name), shape=shape, dtype=dtype)
    raw = buffer_bytes(model, t)
    if raw:
        values = np.frombuffer(raw, dtype=dtype)
        tensor.data = (values.reshape(shape).copy() if t.sparsity is None
                       else _densify(values, shape, t.sparsity, tensor.name))
    q = t.quantization
    if q is not None and q.scale is not None and len(q.scale):
        tensor.quant_scale = np.asarray(q.scale, dtype=np.float32)
        tensor.quant_zero_point = np.asarray(q.zeroPoint, dtype=np.int64)
    return tensor


def _densify(values: np.ndarray, shape: tuple[int, ...], sparsity: Any, name: str
             ) -> np.ndarray:
    """
    Build a dense array from TFLite's sparse storage (dense / CSR levels, no block map).

    MediaPipe's pose detector stores its fp16 1x1 conv weights this way (zeros pruned
    along the input channels). Levels run in traversal order; a dense level enumerates its
    dense_size, a CSR level reads its segments (indexed by the parent position) and the
    indices of the stored entries. The values follow the traversal.
    """
    order = list(sparsity.traversalOrder) if sparsity.traversalOrder is not None else []
    if (sparsity.blockMap is not None and len(sparsity.blockMap)) or len(order) != len(shape):
        raise TfliteGraphError(f'sparse tensor {name!r}: block sparsity is not supported')
    coords = np.zeros((1, 0), np.int64)  # one row per position reached so far
    parent = np.zeros(1, np.int64)  # each position's index into the next level's segments
    for meta in sparsity.dimMetadata or []:
        if meta.format == schema.DimensionType.DENSE:
            size = meta.denseSize
            child = np.tile(np.arange(size), len(parent))
            rows = np.repeat(np.arange(len(parent)), size)
            parent = parent[rows] * size + child
        else:
            segments = _index_vector(meta.arraySegments, name)
            indices = _index_vector(meta.arrayIndices, name)
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


def _index_vector(vector: Any, name: str) -> np.ndarray:
    """Return the values of a sparse level's Int32/Uint16/Uint8 index vector."""
    if vector is None or not hasattr(vector, 'values'):
        raise TfliteGraphError(f'sparse tensor {name!r}: unsupported index vector')
    if vector.values is None:
        return np.zeros(0, np.int64)
    return np.asarray(vector.values, dtype=np.int64)


def load_graph(path: str | Path, fold_dequantize: bool = True) -> TfliteGraph:
    """
    Parse a .tflite file; with fold_dequantize, fp16 weights become fp32 constants.

    Folding (fold_fp16_constants) is what makes the fp16-stored MediaPipe models plain fp32
    graphs: their 100+ DEQUANTIZE ops only ever read weights, so they disappear at load time.
    A DEQUANTIZE of anything else (a run-time tensor, integer weights) stays an op. DENSIFY
    of a sparse constant (the pose detector's pruned weights, densified when read) is always
    folded the same way.
    """
    model = read_model(Path(path).read_bytes())
    if len(model.subgraphs) != 1:
        raise TfliteGraphError(
            f'{path}: {len(model.subgraphs)} subgraphs; only single-graph models are supported')
    graph = model.subgraphs[0]
    file_index = {id(op): i for i, op in enumerate(graph.operators)}
    if fold_dequantize:
        fold_fp16_constants(model)
    tensors = [_tensor(model, i, t) for i, t in enumerate(graph.tensors)]
    operators: list[Operator] = []
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        # Newer schemas keep codes > 127 in builtinCode; old files only in the deprecated byte.
        builtin = fbu.get_builtin_code_from_operator_code(code)
        name = OP_NAMES.get(builtin, f'BUILTIN_{builtin}')
        if name == 'CUSTOM':
            name = f'CUSTOM:{_text(code.customCode)}'
        inputs = [int(x) for x in op.inputs] if op.inputs is not None else []
        outputs = [int(x) for x in op.outputs] if op.outputs is not None else []
        if name == 'DENSIFY' and tensors[inputs[0]].data is not None:
            source, out = tensors[inputs[0]], tensors[outputs[0]]
            out.data, out.dtype = source.data, source.dtype
            out.quant_scale, out.quant_zero_point = source.quant_scale, source.quant_zero_point
            continue
        source = tensors[inputs[0]] if inputs else None
        if (name == 'DEQUANTIZE' and fold_dequantize and source is not None
                and source.data is not None and source.dtype == np.float16):
            # An fp16 constant that only became one here (a densified sparse weight).
            out = tensors[outputs[0]]
            out.data, out.dtype = source.data.astype(np.float32), np.float32
            continue
        operators.append(Operator(file_index[id(op)], name, inputs, outputs, _options(op, name)))
    return TfliteGraph(
        tensors=tensors, operators=operators,
        inputs=[int(x) for x in graph.inputs], outputs=[int(x) for x in graph.outputs])
