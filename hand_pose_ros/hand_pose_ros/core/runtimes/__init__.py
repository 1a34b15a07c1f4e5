"""Inference runtimes behind one small interface (see base.py), and the factory to pick one.

'mediapipe' is not a network runtime but a whole-pipeline reference
(runtimes/mediapipe_tasks.MediaPipeTasksTracker); callers construct it directly.
"""

from __future__ import annotations

from hand_pose_ros.core.models import PRECISIONS
from hand_pose_ros.core.runtimes.base import Runtime

RUNTIME_NAMES: tuple[str, ...] = ('auto', 'litert', 'torch')
DEVICES: tuple[str, ...] = ('cpu', 'cuda')


def torch_cuda_available() -> bool:
    """True when torch is importable and sees a CUDA GPU."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def create_runtime(
    name: str = 'litert', model: str = 'full', device: str = 'cpu', num_threads: int = 2,
    precision: str = 'fp32',
) -> Runtime:
    """Build a runtime by name; 'auto' is torch on CUDA when a GPU is visible, else litert.

    precision 'int8' (the derived int8 landmark model) exists for litert only, so 'auto'
    then always means litert.
    """
    if name == 'mediapipe':
        raise ValueError(
            "'mediapipe' is a whole-pipeline reference, not a network runtime: use "
            'hand_pose_ros.core.runtimes.mediapipe_tasks.MediaPipeTasksTracker')
    if name not in RUNTIME_NAMES:
        raise ValueError(f'runtime must be one of {RUNTIME_NAMES + ("mediapipe",)}, got {name!r}')
    if precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {PRECISIONS}, got {precision!r}')
    if name == 'auto':
        if precision == 'fp32' and torch_cuda_available():
            name, device = 'torch', 'cuda'
        else:
            name = 'litert'
    if name == 'litert':
        if device != 'cpu':
            raise ValueError(f"the litert runtime runs on 'cpu' only, got device {device!r}")
        from hand_pose_ros.core.runtimes.litert import LiteRtRuntime
        return LiteRtRuntime(model=model, num_threads=num_threads, precision=precision)
    if precision != 'fp32':
        raise ValueError(f'precision {precision!r} needs the litert runtime, got {name!r}')
    from hand_pose_ros.core.runtimes.torch_runtime import TorchRuntime
    return TorchRuntime(model=model, device=device, num_threads=num_threads)
