"""The `torch` runtime: the same .tflite models rebuilt as torch modules, batched, on CUDA or CPU.

Why it looks like this:
- Every crop of a call is sampled by ONE affine_grid + grid_sample. The call's images are
  uploaded once into an atlas (a grid of cells, each image framed by a 1-pixel zero border),
  and each crop's sampling grid is clamped to its own image: to [0, W-1] x [0, H-1] for the
  landmark model (exactly OpenCV's BORDER_REPLICATE) and to [-1, W] x [-1, H] for the palm
  detector (the zero frame then gives exactly BORDER_CONSTANT 0). Images of different sizes
  and any number of crops per image therefore cost one kernel launch, and no image is copied
  per crop.
- Sampled values are rounded to the 1/255 grid, because the CPU reference (cv2.warpAffine
  on uint8) is; that keeps the two warps within OpenCV's own 1/32-pixel fixed-point error.
- On CUDA the networks are launch-bound op by op at small batch, so each batch is padded
  to a bucket size and replayed as a CUDA graph (captured lazily, one per bucket); any
  capture failure falls back to eager for that bucket with a warning. torch.compile is
  optional (it fuses the PRELU/ADD epilogues, which is what pays at large batch).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hand_pose_ros.core.models import model_path
from hand_pose_ros.core.runtimes.base import (
    LANDMARK_INPUT_SIZE,
    NUM_ANCHORS,
    PALM_INPUT_SIZE,
    LandmarkOutput,
    PalmOutput,
    Runtime,
)
from hand_pose_ros.core.runtimes.tflite_graph import load_graph
from hand_pose_ros.core.runtimes.torch_builder import TfliteModule, build_module

_LOG = logging.getLogger(__name__)

DEFAULT_BUCKETS: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256)
DTYPES = {'fp32': torch.float32, 'fp16': torch.float16}


def cuda_available() -> bool:
    """True when torch sees a CUDA device (what runtime 'auto' asks)."""
    return torch.cuda.is_available()


@dataclass
class _Atlas:
    """The images of one call on the device, and where each one sits."""

    pixels: torch.Tensor  # (1, 3, Ha, Wa) float32, 0..255
    origins: np.ndarray  # (B, 2) x, y of each image's pixel (0, 0) in the atlas
    sizes: np.ndarray  # (B, 2) width, height
    key: tuple


class _Uploader:
    """Copies a call's images into a reusable pinned host atlas and uploads it once.

    The host buffer is kept while the layout (the list of image shapes) stays the same, so
    its zero frame is written once; an event guards it against being rewritten while an
    asynchronous copy from it is still in flight.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.pinned = device.type == 'cuda'
        self._host: torch.Tensor | None = None
        self._key: tuple = ()
        self._cells: tuple[int, int, int] = (0, 0, 0)
        self._event: torch.cuda.Event | None = None

    def upload(self, images: Sequence[np.ndarray]) -> _Atlas:
        key = tuple(img.shape for img in images)
        for img in images:
            if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
                raise ValueError(f'images must be RGB uint8 (H, W, 3), got {img.dtype} '
                                 f'{img.shape}')
        if key != self._key:
            cell_h = max(img.shape[0] for img in images) + 2
            cell_w = max(img.shape[1] for img in images) + 2
            cols = math.ceil(math.sqrt(len(images)))
            rows = math.ceil(len(images) / cols)
            self._wait()
            self._host = torch.zeros(
                (rows * cell_h, cols * cell_w, 3), dtype=torch.uint8, pin_memory=self.pinned)
            self._key, self._cells = key, (cell_h, cell_w, cols)
        cell_h, cell_w, cols = self._cells
        origins = np.array(
            [((k % cols) * cell_w + 1, (k // cols) * cell_h + 1) for k in range(len(images))],
            dtype=np.float64)
        self._wait()
        host = self._host.numpy()
        for img, (ox, oy) in zip(images, origins.astype(int)):
            host[oy:oy + img.shape[0], ox:ox + img.shape[1]] = img
        dev = self._host.to(self.device, non_blocking=True)
        if self.device.type == 'cuda':
            self._event = torch.cuda.Event()
            self._event.record()
        pixels = dev.permute(2, 0, 1).unsqueeze(0).to(
            torch.float32, memory_format=torch.contiguous_format)
        sizes = np.array([(img.shape[1], img.shape[0]) for img in images], dtype=np.float64)
        return _Atlas(pixels, origins, sizes, key)

    def _wait(self) -> None:
        if self._event is not None:
            self._event.synchronize()
            self._event = None


# OpenCV's warpAffine samples at 1/INTER_TAB_SIZE pixel (fixed point); so does the device warp.
_OPENCV_SUBPIXEL = 32


def sampling_theta(transforms: np.ndarray, size: int) -> np.ndarray:
    """affine_grid thetas (K, 2, 3): output normalized coords -> source image pixels.

    Composes output normalized -> tensor px (align_corners=False: pixel j's centre is at
    (2j + 1) / S - 1) with the inverse of the pipeline's image px -> tensor px affine (pixel
    centres at integers, OpenCV's convention), in float64.
    """
    out_to_px = np.array([[size / 2, 0, (size - 1) / 2], [0, size / 2, (size - 1) / 2],
                          [0, 0, 1]])
    fwd = np.zeros((len(transforms), 3, 3))
    fwd[:, :2] = transforms
    fwd[:, 2, 2] = 1
    theta = np.linalg.inv(fwd) @ out_to_px
    return theta[:, :2].astype(np.float32)


def warp_on_device(
    atlas: _Atlas, image_index: np.ndarray, transforms: np.ndarray, size: int,
    replicate_border: bool,
) -> torch.Tensor:
    """(K, 3, size, size) float32 in [0, 1]: every crop with one affine_grid + grid_sample.

    The grid is built in each crop's own image pixels, rounded to OpenCV's 1/32-pixel
    sampling positions (the palm detector notices the difference), clamped to that image
    (replicate: its pixel centres; zero border: one pixel beyond, where the atlas frame is
    zero), then moved into the atlas and normalized for grid_sample.
    """
    k = len(transforms)
    ha, wa = atlas.pixels.shape[2], atlas.pixels.shape[3]
    origins = atlas.origins[image_index]
    sizes = atlas.sizes[image_index]
    theta = sampling_theta(np.asarray(transforms, np.float64), size)
    margin = 0.0 if replicate_border else 1.0
    # Per crop: clamp low (x, y), clamp high (x, y), atlas origin (x, y).
    params = np.stack([-margin + 0 * sizes, sizes - 1 + margin, origins], axis=1)
    dev = atlas.pixels.device
    theta_t = torch.from_numpy(theta).to(dev, non_blocking=True)
    params_t = torch.from_numpy(params.astype(np.float32)).to(dev, non_blocking=True)
    px = F.affine_grid(theta_t, [k, 1, size, size], align_corners=False)
    px = torch.round(px * _OPENCV_SUBPIXEL).mul_(1.0 / _OPENCV_SUBPIXEL)
    px = px.clamp(min=params_t[:, None, None, 0], max=params_t[:, None, None, 1])
    # Atlas px -> normalized (align_corners=False): u = (2 * x + 1) / W - 1.
    scale = torch.tensor([2.0 / wa, 2.0 / ha], device=dev)
    grid = (px + params_t[:, None, None, 2]).mul_(scale).add_(scale / 2 - 1)
    out = F.grid_sample(
        atlas.pixels, grid.reshape(1, k * size, size, 2), mode='bilinear',
        padding_mode='border' if replicate_border else 'zeros', align_corners=False)
    out = torch.round(out).mul_(1.0 / 255.0)
    return out.view(3, k, size, size).transpose(0, 1)


class _Network:
    """One model on the device: bucketed CUDA graphs with eager fallback, or eager on CPU."""

    def __init__(
        self, module: TfliteModule, device: torch.device, dtype: torch.dtype,
        buckets: Sequence[int], cuda_graphs: bool, compile_module: bool,
    ) -> None:
        self.module = module.to(device=device, dtype=dtype)
        self.device, self.dtype = device, dtype
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
        """x (K, 3, S, S) with K <= max_batch -> (K, sum of output sizes), float32."""
        k = x.shape[0]
        x = x.to(self.dtype)
        if self.device.type != 'cuda':
            return self._flat(self.fn(x))
        bucket = next(b for b in self.buckets if b >= k)
        graph = self._graph(bucket) if self.use_graphs else None
        if graph is None:
            padded = x if k == bucket else F.pad(x, (0, 0, 0, 0, 0, 0, 0, bucket - k))
            return self._flat(self.fn(padded))[:k]
        g, static_in, static_out = graph
        static_in[:k].copy_(x)
        g.replay()
        return static_out[:k].clone()  # the next replay overwrites static_out

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
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):  # warm-up: cuDNN autotuning, allocator, torch.compile
                self._flat(self.fn(static_in))
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
        cuda_graphs: bool = True, compile: bool = False,
        buckets: Sequence[int] = DEFAULT_BUCKETS, num_threads: int | None = None,
        model_dir: Path | None = None,
    ) -> None:
        if dtype not in DTYPES:
            raise ValueError(f'dtype must be one of {tuple(DTYPES)}, got {dtype!r}')
        if str(device).startswith('cuda') and not torch.cuda.is_available():
            raise RuntimeError('runtime torch with device cuda: torch sees no CUDA device '
                               f'(torch {torch.__version__}); use device cpu or runtime litert')
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        self.model = model
        self.device = torch.device(device)
        self.dtype = dtype
        torch_dtype = DTYPES[dtype]
        with torch.no_grad():
            self._palm = _Network(
                build_module(load_graph(model_path('palm_detection', model, model_dir))),
                self.device, torch_dtype, buckets, cuda_graphs, compile)
            self._landmark = _Network(
                build_module(load_graph(model_path('hand_landmark', model, model_dir))),
                self.device, torch_dtype, buckets, cuda_graphs, compile)
        self._uploader = _Uploader(self.device)
        # The palm call's atlas, handed to the landmark call of the same step (consumed once).
        self._last_upload: tuple[tuple, list[np.ndarray], _Atlas] | None = None

    def _atlas(self, images: Sequence[np.ndarray], keep: bool) -> _Atlas:
        ident = tuple((id(img), img.__array_interface__['data'][0]) for img in images)
        cached, self._last_upload = self._last_upload, None
        if cached is not None and cached[0] == ident:
            return cached[2]
        atlas = self._uploader.upload(images)
        if keep:
            self._last_upload = (ident, list(images), atlas)
        return atlas

    def palm_tensors(self, images: Sequence[np.ndarray], transforms: np.ndarray) -> torch.Tensor:
        """The detector inputs as the device sees them: (N, 3, 192, 192) float32."""
        atlas = self._atlas(images, keep=True)
        return warp_on_device(atlas, np.arange(len(images)), transforms, PALM_INPUT_SIZE,
                              replicate_border=False)

    def landmark_tensors(
        self, images: Sequence[np.ndarray], image_index: np.ndarray, transforms: np.ndarray,
    ) -> torch.Tensor:
        """The landmark inputs as the device sees them: (M, 3, 224, 224) float32."""
        atlas = self._atlas(images, keep=False)
        return warp_on_device(atlas, np.asarray(image_index), transforms, LANDMARK_INPUT_SIZE,
                              replicate_border=True)

    @torch.no_grad()
    def palm_detection(self, images: Sequence[np.ndarray], transforms: np.ndarray) -> PalmOutput:
        n = len(images)
        if n == 0:
            return PalmOutput(np.zeros((0, NUM_ANCHORS, 18), np.float32),
                              np.zeros((0, NUM_ANCHORS), np.float32))
        flat = self._run(self._palm, self.palm_tensors(images, transforms))
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

    def close(self) -> None:
        self._last_upload = None
        self._palm = self._landmark = None  # type: ignore[assignment]
        if self.device.type == 'cuda':
            torch.cuda.empty_cache()
