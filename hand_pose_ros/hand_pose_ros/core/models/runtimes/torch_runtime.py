"""
The `torch` runtime: the same .tflite models rebuilt as torch modules, batched, on CUDA or CPU.

Why it looks like this:
- Every crop of a call is sampled by ONE grid_sample. The call's images are uploaded once
  (pinned, non-blocking) into an atlas: a grid of cells, each image framed by a 1-pixel zero
  border. Each crop's sampling grid is clamped to its own image: to [0, W-1] x [0, H-1] for
  the landmark model (exactly OpenCV's BORDER_REPLICATE) and to [-1, W] x [-1, H] for the
  palm detector (the zero frame then gives exactly BORDER_CONSTANT 0). Images of different
  sizes and any number of crops per image cost one kernel, and no image is copied per crop.
- The crops equal cv2.warpAffine's (the CPU reference, base.warp_to_tensor) bit for bit:
  the grid follows OpenCV's fixed-point sampling positions and rounding. Sampling the ideal
  float positions instead moves palm boxes by up to a pixel on some photos, which the
  static golden parity notices.
- On CUDA the networks are launch-bound op by op at small batch, so each batch is padded
  to a bucket size and replayed as a CUDA graph (captured lazily, one per bucket); any
  capture failure falls back to eager for that bucket with a warning. torch.compile is
  optional (it fuses the PRELU/ADD epilogues, which is what pays at large batch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import logging
import math
from pathlib import Path

import cv2
from hand_pose_ros.core.models.catalog import (
    LANDMARK_INPUT_SIZE,
    model_path,
    NUM_ANCHORS,
    PALM_INPUT_SIZE,
)
from hand_pose_ros.core.models.runtimes.base import (
    LandmarkOutput,
    palm_image_index,
    palm_variant,
    PalmOutput,
    Runtime,
)
from hand_pose_ros.core.models.runtimes.torch_builder import build_module, TfliteModule
from hand_pose_ros.core.models.tflite_file import load_graph
import numpy as np
import torch
import torch.nn.functional as F

_LOG = logging.getLogger(__name__)

DEFAULT_BUCKETS: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256)
DTYPES = {'fp32': torch.float32, 'fp16': torch.float16}


@dataclass
class _Atlas:
    """The images of one call on the device, and where each one sits."""

    pixels: torch.Tensor  # (1, 3, 2^a, 2^b) float32, 0..255 (see _Uploader)
    origins: np.ndarray  # (B, 2) x, y of each image's pixel (0, 0) in the atlas
    sizes: np.ndarray  # (B, 2) width, height
    key: tuple


@dataclass
class _Layout:
    """Buffers for one list of image shapes: pinned host atlas, device atlas, cell grid."""

    host: torch.Tensor  # (Ha, Wa, 3) uint8, pinned on CUDA
    pixels: torch.Tensor  # (1, 3, 2^a, 2^b) float32 on the device
    origins: np.ndarray  # (B, 2) x, y of each image's pixel (0, 0)
    event: torch.cuda.Event | None = None  # the last upload from `host`


class _Uploader:
    """
    Copies a call's images into a reusable pinned host atlas and uploads it once.

    Buffers are kept per layout (the list of image shapes; a few layouts, since in tracking
    mode the detector often sees a subset of the cameras), so each zero frame is written
    once and no pinned memory is allocated per call; an event guards a host buffer against
    being rewritten while an asynchronous copy from it is still in flight. On the device
    the atlas sits in a float buffer whose sides are powers of two: grid_sample's normalized
    coordinates are then exact binary fractions, so sampling at OpenCV's 1/32-pixel
    positions is exact too.
    """

    MAX_LAYOUTS = 8

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.pinned = device.type == 'cuda'
        self._layouts: dict[tuple, _Layout] = {}

    def _layout(self, images: Sequence[np.ndarray]) -> tuple[tuple, _Layout]:
        key = tuple(img.shape for img in images)
        layout = self._layouts.pop(key, None)
        if layout is None:
            cell_h = max(img.shape[0] for img in images) + 2
            cell_w = max(img.shape[1] for img in images) + 2
            cols = math.ceil(math.sqrt(len(images)))
            rows = math.ceil(len(images) / cols)
            host = torch.zeros(
                (rows * cell_h, cols * cell_w, 3), dtype=torch.uint8, pin_memory=self.pinned)
            pixels = torch.zeros(
                (1, 3, _next_pow2(rows * cell_h), _next_pow2(cols * cell_w)),
                dtype=torch.float32, device=self.device)
            origins = np.array(
                [((k % cols) * cell_w + 1, (k // cols) * cell_h + 1) for k in range(len(images))],
                dtype=np.float64)
            layout = _Layout(host, pixels, origins)
            if len(self._layouts) >= self.MAX_LAYOUTS:
                oldest = next(iter(self._layouts))
                stale = self._layouts.pop(oldest)
                if stale.event is not None:
                    stale.event.synchronize()
        self._layouts[key] = layout  # most recently used last
        return key, layout

    def clear(self) -> None:
        """Drop every pinned host and device buffer (after any copy from them has finished)."""
        for layout in self._layouts.values():
            if layout.event is not None:
                layout.event.synchronize()
        self._layouts.clear()

    def upload(self, images: Sequence[np.ndarray]) -> _Atlas:
        for img in images:
            if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
                raise ValueError(f'images must be RGB uint8 (H, W, 3), got {img.dtype} '
                                 f'{img.shape}')
        key, layout = self._layout(images)
        if layout.event is not None:
            layout.event.synchronize()
        host = layout.host.numpy()
        for img, (ox, oy) in zip(images, layout.origins.astype(int)):
            host[oy:oy + img.shape[0], ox:ox + img.shape[1]] = img
        dev = layout.host.to(self.device, non_blocking=True)
        if self.device.type == 'cuda':
            layout.event = torch.cuda.Event()
            layout.event.record()
        layout.pixels[0, :, :dev.shape[0], :dev.shape[1]].copy_(dev.permute(2, 0, 1))
        sizes = np.array([(img.shape[1], img.shape[0]) for img in images], dtype=np.float64)
        return _Atlas(layout.pixels, layout.origins, sizes, key)


def _next_pow2(n: int) -> int:
    return 1 << max(n - 1, 0).bit_length()


# cv2.warpAffine's fixed point: coordinates in 1/1024 px (AB_BITS), sampled at 1/32 px.
_AB_SCALE = 1024.0
_SUBPIXEL = 32.0


def opencv_sampling_grid(transforms: np.ndarray, size: int, device: torch.device) -> torch.Tensor:
    """
    (K, size, size, 2) float32 source pixel (x, y) of every output pixel, as OpenCV picks it.

    cv2.warpAffine inverts the affine, then per output pixel adds a rounded row term and a
    rounded column term in 1/1024 px and truncates to 1/32 px. Following it exactly (rather
    than sampling the ideal float position) makes the device crops equal to the CPU ones; the
    palm detector is sensitive enough to tell the two apart. The per-row and per-column terms
    are rounded in float64 (small tensors); the big grid is float32, exact because the fixed-
    point sums are integers below 2^24 (terms are clamped to +-2^23, i.e. 8192 px, far beyond
    any image, where the crop clamps anyway).
    """
    inv = np.stack([cv2.invertAffineTransform(np.asarray(t, np.float64)) for t in transforms])
    inv_t = torch.from_numpy(inv).to(device, non_blocking=True)  # (K, 2, 3)
    idx = torch.arange(size, device=device, dtype=torch.float64)
    limit = float(2 ** 23)
    # row term (K, 2, S): (M[:, 1] * y + M[:, 2]) * 1024 rounded, plus half a 1/32 step.
    rows = torch.round((inv_t[:, :, 1:2] * idx + inv_t[:, :, 2:3]) * _AB_SCALE)
    rows = (rows + _AB_SCALE / _SUBPIXEL / 2).clamp_(-limit, limit).float()
    cols = torch.round(inv_t[:, :, 0:1] * idx * _AB_SCALE).clamp_(-limit, limit).float()
    fixed = rows[:, :, :, None] + cols[:, :, None, :]  # (K, 2, S_y, S_x)
    coords = torch.floor(fixed.mul_(_SUBPIXEL / _AB_SCALE)).mul_(1.0 / _SUBPIXEL)
    return coords.permute(0, 2, 3, 1)


def warp_on_device(
    atlas: _Atlas, image_index: np.ndarray, transforms: np.ndarray, size: int,
    replicate_border: bool,
) -> torch.Tensor:
    """
    (K, 3, size, size) float32 in [0, 1]: every crop of the batch in one grid_sample.

    Reproduces cv2.warpAffine(INTER_LINEAR) on uint8 bit for bit: OpenCV's sampling
    positions (opencv_sampling_grid), clamped to each crop's own image (replicate: its pixel
    centres; zero border: one pixel beyond, where the atlas frame is zero), moved into the
    power-of-two atlas (exact in float32, so bilinear weights are exact), and the result
    rounded half up like OpenCV's fixed-point cast.
    """
    k = len(transforms)
    ha, wa = atlas.pixels.shape[2], atlas.pixels.shape[3]
    origins = atlas.origins[image_index]
    sizes = atlas.sizes[image_index]
    margin = 0.0 if replicate_border else 1.0
    # Per crop: clamp low (x, y), clamp high (x, y), atlas origin (x, y).
    params = np.stack([np.full_like(sizes, -margin), sizes - 1 + margin, origins], axis=1)
    dev = atlas.pixels.device
    params_t = torch.from_numpy(params.astype(np.float32)).to(dev, non_blocking=True)
    px = opencv_sampling_grid(transforms, size, dev)
    px = torch.maximum(torch.minimum(px, params_t[:, None, None, 1]), params_t[:, None, None, 0])
    # Atlas px -> normalized (align_corners=False): u = (2 * x + 1) / W - 1.
    scale = torch.tensor([2.0 / wa, 2.0 / ha], device=dev)
    grid = (px + params_t[:, None, None, 2]).mul_(scale).add_(scale / 2 - 1)
    out = F.grid_sample(
        atlas.pixels, grid.reshape(1, k * size, size, 2), mode='bilinear',
        padding_mode='border' if replicate_border else 'zeros', align_corners=False)
    out = torch.floor(out.add_(0.5)).mul_(1.0 / 255.0)
    return out.view(3, k, size, size).transpose(0, 1)


class _Network:
    """
    One model on the device: bucketed CUDA graphs with eager fallback, or eager on CPU.

    On CUDA, cuDNN runs in benchmark mode (shapes are static per bucket) and TF32 is off
    unless asked for, so 'fp32' means fp32 (TF32 convolutions drift ~1e-3 from LiteRT).
    These are set per call through cudnn.flags, not globally.
    """

    def __init__(
        self, module: TfliteModule, device: torch.device, dtype: torch.dtype,
        buckets: Sequence[int], cuda_graphs: bool, compile_module: bool,
        channels_last: bool = False, allow_tf32: bool = False,
    ) -> None:
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.module = module.to(device=device, dtype=dtype).to(memory_format=self.memory_format)
        self.device, self.dtype = device, dtype
        self._cudnn = {'enabled': True, 'benchmark': True, 'deterministic': False,
                       'allow_tf32': allow_tf32}
        self.input_shape = module.input_shapes[0]  # (1, S, S, 3)
        self.buckets = tuple(sorted(buckets))
        self.use_graphs = cuda_graphs and device.type == 'cuda'
        self.fn = self.module
        if compile_module:
            _raise_recompile_limit(2 * len(self.buckets) + 2)
            self.fn = torch.compile(self.module, dynamic=False)
        self._graphs: dict[int, tuple | None] = {}  # bucket -> (graph, in, outs) | None=eager

    @property
    def max_batch(self) -> int:
        return self.buckets[-1]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Run x (K, 3, S, S) with K <= max_batch -> (K, sum of output sizes), float32."""
        k = x.shape[0]
        x = x.to(self.dtype, memory_format=self.memory_format)
        if self.device.type != 'cuda':
            return self._flat(self._forward(x))
        with torch.backends.cudnn.flags(**self._cudnn):
            return self._cuda_call(x, k)

    def _cuda_call(self, x: torch.Tensor, k: int) -> torch.Tensor:
        bucket = next(b for b in self.buckets if b >= k)
        graph = self._graph(bucket) if self.use_graphs else None
        if graph is None:
            padded = x if k == bucket else F.pad(x, (0, 0, 0, 0, 0, 0, 0, bucket - k))
            return self._flat(self._forward(padded))[:k]
        g, static_in, static_out = graph
        static_in[:k].copy_(x)
        g.replay()
        return static_out[:k].clone()  # the next replay overwrites static_out

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Run the (possibly compiled) module; a torch.compile failure falls back to eager."""
        try:
            return self.fn(x)
        except Exception as exc:
            if self.fn is self.module:
                raise
            _LOG.warning('torch.compile failed (%s); running the module uncompiled', exc)
            self.fn = self.module
            return self.fn(x)

    @staticmethod
    def _flat(outputs: Sequence[torch.Tensor]) -> torch.Tensor:
        return torch.cat([o.reshape(o.shape[0], -1).float() for o in outputs], dim=1)

    def _graph(self, bucket: int) -> tuple | None:
        if bucket not in self._graphs:
            try:
                self._graphs[bucket] = self._capture(bucket)
            except Exception as exc:  # noqa: BLE001 - any capture failure means eager
                _LOG.warning('CUDA graph capture failed for batch %d (%s); running eager',
                             bucket, exc)
                self._graphs[bucket] = None
        return self._graphs[bucket]

    def _capture(self, bucket: int) -> tuple:
        _, h, w, c = self.input_shape
        static_in = torch.zeros((bucket, c, h, w), device=self.device, dtype=self.dtype)
        static_in = static_in.contiguous(memory_format=self.memory_format)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):  # warm-up: cuDNN autotuning, allocator, torch.compile
                self._flat(self._forward(static_in))
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = self._flat(self.fn(static_in))
        return graph, static_in, static_out


def _raise_recompile_limit(n: int) -> None:
    """torch.compile with static shapes compiles once per bucket; allow that many."""
    import torch._dynamo.config as dynamo_config
    for name in ('recompile_limit', 'cache_size_limit'):
        if hasattr(dynamo_config, name) and getattr(dynamo_config, name) < n:
            setattr(dynamo_config, name, n)


class TorchRuntime(Runtime):
    """Both networks as torch modules built from the .tflite files, warps on the device."""

    name = 'torch'
    batches_efficiently = True

    def __init__(
        self, model: str = 'full', device: str = 'cuda', dtype: str = 'fp32',
        cuda_graphs: bool = True, compile_module: bool = False,
        buckets: Sequence[int] = DEFAULT_BUCKETS, num_threads: int | None = None,
        model_dir: Path | None = None, channels_last: bool | None = None,
        allow_tf32: bool = False,
    ) -> None:
        """
        Build both networks from the .tflite files.

        model 'lite'|'full'; device 'cuda'|'cuda:N'|'cpu'; dtype 'fp32'|'fp16'.

        cuda_graphs: replay each bucket's network as a CUDA graph (eager if capture fails).
        compile_module: torch.compile the networks (fusion; first calls per bucket are slow).
        buckets: static batch sizes on CUDA (batches pad up; larger ones are chunked).
        channels_last: NHWC activations for cuDNN; default on for CUDA, off for CPU.
        allow_tf32: TF32 convolutions on Ampere+ in fp32 mode (faster, ~1e-3 off LiteRT).
        """
        if dtype not in DTYPES:
            raise ValueError(f'dtype must be one of {tuple(DTYPES)}, got {dtype!r}')
        if str(device).startswith('cuda') and not torch.cuda.is_available():
            raise RuntimeError(f'runtime torch with device {device!r}: torch sees no CUDA '
                               f'device (torch {torch.__version__}); use device cpu or runtime '
                               'litert')
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        self.model = model
        self.device = torch.device(device)
        self.dtype = dtype
        torch_dtype = DTYPES[dtype]
        if channels_last is None:
            channels_last = self.device.type == 'cuda'
        self._network_args = (model_dir, torch_dtype, buckets, cuda_graphs, compile_module,
                              channels_last, allow_tf32)
        self._palms = {model: self._build('palm_detection', model)}
        self._palm = self._palms[model]
        self._landmark = self._build('hand_landmark', model)
        self._uploader = _Uploader(self.device)
        # The palm call's atlas, handed to the landmark call of the same step (consumed once).
        self._last_upload: tuple[tuple, list[np.ndarray], _Atlas] | None = None
        self._graphs: dict[str, torch.nn.Module] = {}  # run_graph's modules, by path

    @torch.no_grad()
    def _build(self, kind: str, variant: str) -> _Network:
        model_dir, dtype, buckets, graphs, compile_, channels_last, tf32 = self._network_args
        module = build_module(load_graph(model_path(kind, variant, model_dir)))
        return _Network(module, self.device, dtype, buckets, graphs, compile_, channels_last,
                        tf32)

    def _atlas(self, images: Sequence[np.ndarray], from_palm_call: bool) -> _Atlas:
        """
        Put the images on the device; the landmark call may reuse its step's palm upload.

        Only the landmark call that directly follows a palm call of the same images (by
        object and buffer address) reuses that upload, and the cache is cleared as soon as
        it is looked at: a caller that refills the same buffer for the next frame (no landmark
        call when no hand was found) must never get the previous frame's pixels. The palm
        call always uploads.
        """
        ident = tuple((id(img), img.__array_interface__['data'][0]) for img in images)
        cached, self._last_upload = self._last_upload, None
        if not from_palm_call and cached is not None and cached[0] == ident:
            return cached[2]
        atlas = self._uploader.upload(images)
        if from_palm_call:
            self._last_upload = (ident, list(images), atlas)
        return atlas

    def palm_tensors(self, images: Sequence[np.ndarray], transforms: np.ndarray,
                     image_index: np.ndarray | None = None) -> torch.Tensor:
        """Return the detector inputs as the device sees them: (N, 3, 192, 192) float32."""
        index = palm_image_index(images, transforms, image_index)
        atlas = self._atlas(images, from_palm_call=True)
        return warp_on_device(atlas, index, transforms, PALM_INPUT_SIZE,
                              replicate_border=False)

    def landmark_tensors(
        self, images: Sequence[np.ndarray], image_index: np.ndarray, transforms: np.ndarray,
    ) -> torch.Tensor:
        """Return the landmark inputs as the device sees them: (M, 3, 224, 224) float32."""
        atlas = self._atlas(images, from_palm_call=False)
        return warp_on_device(atlas, np.asarray(image_index), transforms, LANDMARK_INPUT_SIZE,
                              replicate_border=True)

    @torch.no_grad()
    def palm_detection(
        self, images: Sequence[np.ndarray], transforms: np.ndarray,
        image_index: np.ndarray | None = None, variant: str | None = None,
    ) -> PalmOutput:
        n = len(transforms)
        if n == 0:
            return PalmOutput(np.zeros((0, NUM_ANCHORS, 18), np.float32),
                              np.zeros((0, NUM_ANCHORS), np.float32))
        net = palm_variant(self._palms, variant, self.model,
                           lambda name: self._build('palm_detection', name))
        flat = self._run(net, self.palm_tensors(images, transforms, image_index))
        return PalmOutput(boxes=flat[:, :NUM_ANCHORS * 18].reshape(n, NUM_ANCHORS, 18),
                          scores=flat[:, NUM_ANCHORS * 18:].reshape(n, NUM_ANCHORS))

    @torch.no_grad()
    def hand_landmarks(
        self, images: Sequence[np.ndarray], image_index: np.ndarray, transforms: np.ndarray,
    ) -> LandmarkOutput:
        m = len(transforms)
        if m == 0:
            self._last_upload = None
            z = np.zeros((0, 21, 3), np.float32)
            return LandmarkOutput(z, np.zeros(0, np.float32), np.zeros(0, np.float32), z.copy())
        flat = self._run(self._landmark, self.landmark_tensors(images, image_index, transforms))
        return LandmarkOutput(
            landmarks=flat[:, :63].reshape(m, 21, 3), presence=flat[:, 63].copy(),
            handedness=flat[:, 64].copy(), world=flat[:, 65:128].reshape(m, 21, 3))

    @torch.no_grad()
    def run_palm_tensor(self, batch: torch.Tensor) -> torch.Tensor:
        """Raw detector outputs for (N, 3, 192, 192) on the device, flattened (N, 2016*19)."""
        return self._run_device(self._palm, batch)

    @torch.no_grad()
    def run_landmark_tensor(self, batch: torch.Tensor) -> torch.Tensor:
        """Raw landmark outputs for (M, 3, 224, 224) on the device, flattened (M, 128)."""
        return self._run_device(self._landmark, batch)

    def _run(self, net: _Network, batch: torch.Tensor) -> np.ndarray:
        # One device -> host copy per call (it also synchronises the stream).
        return self._run_device(net, batch).cpu().numpy()

    @staticmethod
    def _run_device(net: _Network, batch: torch.Tensor) -> torch.Tensor:
        chunks = [net(batch[i:i + net.max_batch]) for i in range(0, len(batch), net.max_batch)]
        return chunks[0] if len(chunks) == 1 else torch.cat(chunks)

    @torch.no_grad()
    def run_graph(self, path: Path, batch: np.ndarray) -> list[np.ndarray]:
        module = self._graphs.get(str(path))
        if module is None:
            module = self._graphs[str(path)] = build_module(load_graph(path)).to(self.device)
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
        return [o.float().cpu().numpy() for o in module(x.permute(0, 3, 1, 2).to(self.device))]

    def close(self) -> None:
        self._graphs = {}
        self._last_upload = None
        self._uploader.clear()
        self._palm = self._landmark = None  # type: ignore[assignment]
        self._palms = {}
        if self.device.type == 'cuda':
            torch.cuda.empty_cache()
