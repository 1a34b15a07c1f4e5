"""
Inference runtimes behind one small interface (see base.py), and the factory to pick one.

Only runtimes live here: code that runs the two networks for HandTracker. The official
MediaPipe Tasks pipeline is a whole second tracker (core/mediapipe_tracker.py), not a
runtime, so it is no runtime name.
"""

from __future__ import annotations

from pathlib import Path

from hand_pose_ros.core.models.runtimes.base import Runtime
from hand_pose_ros.core.options import BaseOptions

TORCH_INSTALL = 'pip install -r requirements/torch.txt'


def create_runtime(base: BaseOptions | None = None) -> Runtime:
    """
    Build the runtime that BaseOptions (already validated) name; 'auto' picks by device.

    runtime 'auto': litert on 'cpu', torch on 'cuda[:N]'. device 'auto' means a CUDA GPU when
    torch sees one, else the CPU; so runtime 'auto' with device 'auto' is torch on the GPU
    where there is one and litert elsewhere. An explicit device is never changed: the CPU
    stays on litert (faster there than torch) even where a GPU is visible, and a CUDA device
    is kept as given ('cuda:1' stays 'cuda:1'), failing clearly when no GPU is visible.
    precision 'int8' (the derived int8 landmark model) exists for litert only. model_dir ''
    = models.catalog.default_model_dir().
    """
    base = base or BaseOptions()
    name, device, precision = base.runtime, base.device, base.precision
    model_dir = Path(base.model_dir) if base.model_dir else None
    if device == 'auto':
        gpu = name in ('auto', 'torch') and precision == 'fp32' and _cuda_visible()
        device = 'cuda' if gpu else 'cpu'
    auto = name == 'auto'
    if auto:
        name = 'torch' if str(device).startswith('cuda') else 'litert'
    if name == 'litert':
        if device != 'cpu':
            raise ValueError(f"the litert runtime runs on 'cpu' only, got device {device!r}")
        from hand_pose_ros.core.models.runtimes.litert import LiteRtRuntime
        return LiteRtRuntime(model=base.model, num_threads=base.num_threads,
                             precision=precision, model_dir=model_dir)
    if precision != 'fp32':
        raise ValueError(f'precision {precision!r} needs the litert runtime on device cpu, '
                         f'got runtime {name!r} on device {device!r}')
    try:
        from hand_pose_ros.core.models.runtimes.torch_runtime import TorchRuntime
        import torch
    except ImportError as exc:
        raise RuntimeError(
            f'the torch runtime needs torch ({exc}): {TORCH_INSTALL}') from exc
    if auto and not torch.cuda.is_available():
        raise RuntimeError(
            f"runtime 'auto' with device {device!r}: torch {torch.__version__} sees no CUDA "
            "GPU; use device 'cpu' (runtime litert), or a CUDA build of torch on a GPU host")
    return TorchRuntime(model=base.model, device=device, num_threads=base.num_threads,
                        model_dir=model_dir)


def _cuda_visible() -> bool:
    """Whether torch is installed and sees a CUDA GPU (False without torch)."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())
