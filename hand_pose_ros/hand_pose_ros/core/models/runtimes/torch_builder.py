"""
Build a torch module from a parsed .tflite graph, op by op, for any graph in the op set.

Layout: every rank-4 tensor lives as NCHW inside the module (the conversion from TFLite's
NHWC happens once, on the weights and on the few ops whose meaning depends on axis order:
RESHAPE, CONCATENATION, PAD, MEAN, FULLY_CONNECTED); lower-rank tensors keep TFLite's layout.
The module therefore takes rank-4 inputs as NCHW, which is what grid_sample produces.

Padding follows TFLite exactly: SAME pads total = max((ceil(in/s) - 1) * s + k_eff - in, 0)
with the smaller half before, which is asymmetric for stride 2 on even inputs and is not what
torch's padding='same' does; VALID pads nothing. Dimension 0 of every tensor is the batch.
"""

from __future__ import annotations

from collections.abc import Callable
import math

from hand_pose_ros.core.models.tflite_file import ACTIVATION_NAMES, Operator, Tensor, TfliteGraph
import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

# NHWC axis -> NCHW axis, for ops whose axes refer to rank-4 tensors.
_NHWC_TO_NCHW_AXIS = (0, 2, 3, 1)
_PADDING_SAME = 0
_PADDING_VALID = 1


class UnsupportedOpError(NotImplementedError):
    """The graph holds an op (or an op option) the builder cannot translate."""


def _activation(code: int, op: Operator) -> Callable[[torch.Tensor], torch.Tensor]:
    name = ACTIVATION_NAMES.get(code, str(code))
    if name == 'NONE':
        return lambda x: x
    if name == 'RELU':
        return F.relu
    if name == 'RELU6':
        return lambda x: torch.clamp(x, 0.0, 6.0)
    if name == 'RELU_N1_TO_1':
        return lambda x: torch.clamp(x, -1.0, 1.0)
    if name == 'TANH':
        return torch.tanh
    raise UnsupportedOpError(
        f'TFLite op {op.name} (operator #{op.index}) has fused activation {name}, '
        'which the torch builder does not support')


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """Compute TFLite SAME padding (before, after) for one spatial dimension."""
    effective = (kernel - 1) * dilation + 1
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def _spatial_padding(
    op: Operator, in_shape: tuple[int, ...], kh: int, kw: int, sh: int, sw: int,
    dh: int = 1, dw: int = 1,
) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) for an NHWC input shape."""
    padding = op.options['padding']
    if padding == _PADDING_VALID:
        return 0, 0, 0, 0
    if padding != _PADDING_SAME:
        raise UnsupportedOpError(f'TFLite op {op.name} #{op.index}: padding code {padding}')
    top, bottom = same_padding(in_shape[1], kh, sh, dh)
    left, right = same_padding(in_shape[2], kw, sw, dw)
    return left, right, top, bottom


def _to_internal(array: np.ndarray) -> torch.Tensor:
    """Put a constant in the module's layout (rank 4 -> NCHW)."""
    t = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    return t.permute(0, 3, 1, 2).contiguous() if t.ndim == 4 else t


class Step(nn.Module):
    """One op: reads `input_ids` from the environment, writes `output_id`."""

    def __init__(self, op: Operator, input_ids: list[int], output_id: int) -> None:
        super().__init__()
        self.op_name = op.name
        self.op_index = op.index
        self.input_ids = input_ids
        self.output_id = output_id
        self.free_ids: list[int] = []


class Conv(Step):
    """CONV_2D and DEPTHWISE_CONV_2D (groups = input channels)."""

    def __init__(self, op: Operator, g: TfliteGraph, depthwise: bool) -> None:
        super().__init__(op, [op.inputs[0]], op.outputs[0])
        x, w = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]]
        if w.data is None:
            raise UnsupportedOpError(f'{op.name} #{op.index}: non-constant weights')
        o = op.options
        weight = w.data.astype(np.float32)
        if depthwise:  # [1, KH, KW, C*M] -> [C*M, 1, KH, KW]
            weight = weight.transpose(3, 0, 1, 2)
            self.groups = x.shape[3]
        else:  # [O, KH, KW, I] -> [O, I, KH, KW]
            weight = weight.transpose(0, 3, 1, 2)
            self.groups = 1
        kh, kw = weight.shape[2], weight.shape[3]
        self.stride = (o['stride_h'], o['stride_w'])
        self.dilation = (o.get('dilation_h_factor', 1) or 1, o.get('dilation_w_factor', 1) or 1)
        left, right, top, bottom = _spatial_padding(
            op, x.shape, kh, kw, *self.stride, *self.dilation)
        # Symmetric padding goes into the conv; asymmetric needs an explicit pad first.
        if left == right and top == bottom:
            self.pre_pad: tuple[int, ...] | None = None
            self.padding = (top, left)
        else:
            self.pre_pad = (left, right, top, bottom)
            self.padding = (0, 0)
        self.register_buffer('weight', torch.from_numpy(np.ascontiguousarray(weight)))
        bias = g.tensors[op.inputs[2]].data if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
        self.register_buffer(
            'bias', None if bias is None else torch.from_numpy(bias.astype(np.float32)))
        self.act = _activation(o['fused_activation_function'], op)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pre_pad is not None:
            x = F.pad(x, self.pre_pad)
        y = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                     self.groups)
        return self.act(y)


class MaxPool(Step):
    def __init__(self, op: Operator, g: TfliteGraph) -> None:
        super().__init__(op, [op.inputs[0]], op.outputs[0])
        o = op.options
        self.kernel = (o['filter_height'], o['filter_width'])
        self.stride = (o['stride_h'], o['stride_w'])
        pads = _spatial_padding(op, g.tensors[op.inputs[0]].shape, *self.kernel, *self.stride)
        # TFLite ignores padded cells in a max; -inf padding is the same thing.
        self.pre_pad = pads if any(pads) else None
        self.act = _activation(o['fused_activation_function'], op)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pre_pad is not None:
            x = F.pad(x, self.pre_pad, value=float('-inf'))
        return self.act(F.max_pool2d(x, self.kernel, self.stride))


class Add(Step):
    """ADD with broadcasting; either operand may be a constant."""

    def __init__(self, op: Operator, g: TfliteGraph) -> None:
        a, b = (g.tensors[i] for i in op.inputs[:2])
        runtime = [t.index for t in (a, b) if t.data is None]
        super().__init__(op, runtime, op.outputs[0])
        const = [t for t in (a, b) if t.data is not None]
        if len(const) == 2:
            raise UnsupportedOpError(f'ADD #{op.index}: both operands constant')
        self.register_buffer('const', _to_internal(_broadcast4(const[0], g.tensors[
            op.outputs[0]])) if const else None)
        self.act = _activation(op.options['fused_activation_function'], op)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        y = xs[0] + (xs[1] if self.const is None else self.const)
        return self.act(y)


def _broadcast4(const: Tensor, out: Tensor) -> np.ndarray:
    """Pad a constant with leading ones to its output's rank, so the NCHW permute applies."""
    data = const.data.astype(np.float32)
    return data.reshape((1,) * (len(out.shape) - data.ndim) + data.shape)


class Prelu(Step):
    def __init__(self, op: Operator, g: TfliteGraph) -> None:
        super().__init__(op, [op.inputs[0]], op.outputs[0])
        alpha = g.tensors[op.inputs[1]]
        if alpha.data is None:
            raise UnsupportedOpError(f'PRELU #{op.index}: non-constant alpha')
        self.register_buffer('alpha', _to_internal(_broadcast4(alpha, g.tensors[op.outputs[0]])))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.where(x >= 0, x, x * self.alpha)


class Pad(Step):
    def __init__(self, op: Operator, g: TfliteGraph) -> None:
        super().__init__(op, [op.inputs[0]], op.outputs[0])
        paddings = g.tensors[op.inputs[1]].data
        if paddings is None:
            raise UnsupportedOpError(f'PAD #{op.index}: non-constant paddings')
        paddings = paddings.reshape(-1, 2).astype(int)
        if paddings[0].any():
            raise UnsupportedOpError(f'PAD #{op.index}: padding the batch axis')
        if len(paddings) == 4:  # NHWC pads -> NCHW order
            paddings = paddings[[0, 3, 1, 2]]
        # F.pad lists (before, after) from the last axis backwards.
        self.pads = tuple(int(v) for pair in paddings[::-1] for v in pair)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self.pads)


class Reshape(Step):
    def __init__(self, op: Operator, g: TfliteGraph) -> None:
        super().__init__(op, [op.inputs[0]], op.outputs[0])
        self.in_nchw = len(g.tensors[op.inputs[0]].shape) == 4
        out_shape = g.tensors[op.outputs[0]].shape
        self.out_nchw = len(out_shape) == 4
        self.tail = tuple(out_shape[1:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.in_nchw:
            x = x.permute(0, 2, 3, 1)
        y = x.reshape((x.shape[0],) + self.tail)
        return y.permute(0, 3, 1, 2) if self.out_nchw else y


class Concat(Step):
    def __init__(self, op: Operator, g: TfliteGraph) -> None:
        if any(g.tensors[i].data is not None for i in op.inputs):
            raise UnsupportedOpError(f'CONCATENATION #{op.index}: constant operand')
        super().__init__(op, list(op.inputs), op.outputs[0])
        rank = len(g.tensors[op.outputs[0]].shape)
        axis = op.options['axis'] % rank
        if axis == 0:
            raise UnsupportedOpError(f'CONCATENATION #{op.index}: along the batch axis')
        self.axis = _NHWC_TO_NCHW_AXIS[axis] if rank == 4 else axis
        self.act = _activation(op.options['fused_activation_function'], op)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return self.act(torch.cat(xs, dim=self.axis))


class ResizeBilinear(Step):
    def __init__(self, op: Operator, g: TfliteGraph) -> None:
        super().__init__(op, [op.inputs[0]], op.outputs[0])
        out = g.tensors[op.outputs[0]].shape
        self.size = (out[1], out[2])
        self.align_corners = bool(op.options['align_corners'])
        half_pixel = bool(op.options['half_pixel_centers'])
        if not self.align_corners and not half_pixel:
            # Legacy TF sampling (src = dst * in / out): no torch mode matches it exactly.
            raise UnsupportedOpError(
                f'RESIZE_BILINEAR #{op.index} with align_corners=False and '
                'half_pixel_centers=False (legacy TF sampling) is not supported')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # half_pixel_centers == torch's align_corners=False sampling (TFLite clamps the same way).
        return F.interpolate(x, size=self.size, mode='bilinear', align_corners=self.align_corners)


class FullyConnected(Step):
    def __init__(self, op: Operator, g: TfliteGraph) -> None:
        super().__init__(op, [op.inputs[0]], op.outputs[0])
        w = g.tensors[op.inputs[1]]
        if w.data is None:
            raise UnsupportedOpError(f'FULLY_CONNECTED #{op.index}: non-constant weights')
        if op.options.get('weights_format', 0) != 0:
            raise UnsupportedOpError(f'FULLY_CONNECTED #{op.index}: shuffled weights format')
        self.register_buffer('weight', torch.from_numpy(w.data.astype(np.float32)))
        bias = g.tensors[op.inputs[2]].data if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
        self.register_buffer(
            'bias', None if bias is None else torch.from_numpy(bias.astype(np.float32)))
        x_shape = g.tensors[op.inputs[0]].shape
        self.in_nchw = len(x_shape) == 4
        self.keep_tail = tuple(x_shape[1:-1]) if op.options.get('keep_num_dims') else None
        self.act = _activation(op.options['fused_activation_function'], op)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.in_nchw:
            x = x.permute(0, 2, 3, 1)
        if self.keep_tail is not None:
            y = self.act(F.linear(x, self.weight, self.bias))
            return y.permute(0, 3, 1, 2) if self.in_nchw else y  # rank 4 stays NCHW
        return self.act(F.linear(x.reshape(-1, self.weight.shape[1]), self.weight, self.bias))


class Logistic(Step):
    def __init__(self, op: Operator, g: TfliteGraph) -> None:
        super().__init__(op, [op.inputs[0]], op.outputs[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x)


class Mean(Step):
    def __init__(self, op: Operator, g: TfliteGraph) -> None:
        super().__init__(op, [op.inputs[0]], op.outputs[0])
        axes = g.tensors[op.inputs[1]].data
        if axes is None:
            raise UnsupportedOpError(f'MEAN #{op.index}: non-constant axes')
        rank = len(g.tensors[op.inputs[0]].shape)
        axes = sorted(int(a) % rank for a in np.atleast_1d(axes))
        if 0 in axes:
            raise UnsupportedOpError(f'MEAN #{op.index}: reducing the batch axis')
        self.keep_dims = bool(op.options.get('keep_dims'))
        self.permute_first = rank == 4 and not self.keep_dims
        if rank == 4 and self.keep_dims:
            axes = sorted(_NHWC_TO_NCHW_AXIS[a] for a in axes)
        self.axes = tuple(axes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.permute_first:  # the result leaves NCHW: reduce in TFLite's axis order
            x = x.permute(0, 2, 3, 1)
        return torch.mean(x, dim=self.axes, keepdim=self.keep_dims)


class Dequantize(Step):
    """DEQUANTIZE of a runtime fp16 tensor (constants were folded by the parser)."""

    def __init__(self, op: Operator, g: TfliteGraph) -> None:
        super().__init__(op, [op.inputs[0]], op.outputs[0])
        if g.tensors[op.inputs[0]].dtype != np.float16:
            raise UnsupportedOpError(f'DEQUANTIZE #{op.index}: runtime integer input')
        self.register_buffer('ref', torch.zeros(()))  # follows module.to(dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.ref.dtype)


class DepthToSpace(Step):
    """
    DEPTH_TO_SPACE (the pose detector's upsampling): TFLite's DCR channel order.

    Output pixel (h * b + i, w * b + j) channel c reads input channel (i * b + j) * C + c;
    torch's pixel_shuffle reads c * b * b + i * b + j instead, hence the explicit view.
    """

    def __init__(self, op: Operator, g: TfliteGraph) -> None:
        super().__init__(op, [op.inputs[0]], op.outputs[0])
        self.block = int(op.options['block_size'])
        self.channels = g.tensors[op.outputs[0]].shape[3]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        b, c = self.block, self.channels
        y = x.reshape(n, b, b, c, h, w).permute(0, 3, 4, 1, 5, 2)
        return y.reshape(n, c, h * b, w * b)


class StridedSlice(Step):
    """
    STRIDED_SLICE with constant begin/end/strides and no ellipsis/new/shrink axes.

    hand_recrop uses it for channel padding (keeping the first channels of a tensor).
    The batch axis is always kept whole.
    """

    def __init__(self, op: Operator, g: TfliteGraph) -> None:
        super().__init__(op, [op.inputs[0]], op.outputs[0])
        begin, end, strides = (g.tensors[i].data for i in op.inputs[1:4])
        o = op.options
        if begin is None or end is None or strides is None:
            raise UnsupportedOpError(f'STRIDED_SLICE #{op.index}: non-constant bounds')
        if o['ellipsis_mask'] or o['new_axis_mask'] or o['shrink_axis_mask'] or o['offset']:
            raise UnsupportedOpError(
                f'STRIDED_SLICE #{op.index}: ellipsis/new-axis/shrink/offset masks')
        shape = g.tensors[op.inputs[0]].shape
        slices = []
        for axis, (lo, hi, step) in enumerate(zip(begin, end, strides)):
            lo = None if o['begin_mask'] >> axis & 1 else int(lo)
            hi = None if o['end_mask'] >> axis & 1 else int(hi)
            if step <= 0:
                raise UnsupportedOpError(f'STRIDED_SLICE #{op.index}: stride {step}')
            slices.append(slice(lo, hi, int(step)))
        if slices[0].indices(shape[0]) != (0, shape[0], 1):
            raise UnsupportedOpError(f'STRIDED_SLICE #{op.index}: slicing the batch axis')
        slices[0] = slice(None)
        if len(slices) == 4:  # NHWC slices -> NCHW order
            slices = [slices[0], slices[3], slices[1], slices[2]]
        self.slices = tuple(slices)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[self.slices]


_BUILDERS: dict[str, Callable[[Operator, TfliteGraph], Step]] = {
    'CONV_2D': lambda op, g: Conv(op, g, depthwise=False),
    'DEPTHWISE_CONV_2D': lambda op, g: Conv(op, g, depthwise=True),
    'ADD': Add,
    'PAD': Pad,
    'MAX_POOL_2D': MaxPool,
    'PRELU': Prelu,
    'RESHAPE': Reshape,
    'CONCATENATION': Concat,
    'RESIZE_BILINEAR': ResizeBilinear,
    'FULLY_CONNECTED': FullyConnected,
    'LOGISTIC': Logistic,
    'MEAN': Mean,
    'DEQUANTIZE': Dequantize,
    'DEPTH_TO_SPACE': DepthToSpace,
    'STRIDED_SLICE': StridedSlice,
}

SUPPORTED_OPS: tuple[str, ...] = tuple(sorted(_BUILDERS))


class TfliteModule(nn.Module):
    """
    The graph as a torch module: forward(*inputs) -> tuple of outputs (TFLite layout).

    Rank-4 inputs are NCHW. Tensors are released after their last use, so peak memory at
    large batch is that of a normal feed-forward network, not of every activation at once.
    """

    def __init__(self, graph: TfliteGraph) -> None:
        super().__init__()
        self.input_ids = list(graph.inputs)
        self.output_ids = list(graph.outputs)
        self.input_shapes = [graph.tensors[i].shape for i in graph.inputs]
        self.output_nchw = [len(graph.tensors[i].shape) == 4 for i in graph.outputs]
        steps = []
        for op in graph.operators:
            builder = _BUILDERS.get(op.name)
            if builder is None:
                out = graph.tensors[op.outputs[0]].name if op.outputs else '?'
                raise UnsupportedOpError(
                    f'TFLite op {op.name} (operator #{op.index}, output {out!r}) is not '
                    f'supported by the torch builder; supported ops: {", ".join(SUPPORTED_OPS)}')
            steps.append(builder(op, graph))
        self.steps = nn.ModuleList(steps)
        self._plan_frees()

    def _plan_frees(self) -> None:
        last_use: dict[int, int] = {}
        for k, step in enumerate(self.steps):
            for i in step.input_ids:
                last_use[i] = k
        keep = set(self.output_ids)
        for tid, k in last_use.items():
            if tid not in keep:
                self.steps[k].free_ids.append(tid)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        env: dict[int, torch.Tensor] = dict(zip(self.input_ids, inputs))
        for step in self.steps:
            env[step.output_id] = step(*[env[i] for i in step.input_ids])
            for tid in step.free_ids:
                del env[tid]
        return tuple(
            env[i].permute(0, 2, 3, 1) if nchw else env[i]
            for i, nchw in zip(self.output_ids, self.output_nchw))


def build_module(graph: TfliteGraph) -> TfliteModule:
    """Build a float32 module for the graph; move/cast it with .to(device, dtype)."""
    return TfliteModule(graph).eval()
