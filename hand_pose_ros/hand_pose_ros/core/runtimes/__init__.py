"""Inference runtimes behind one small interface (see base.py), and the factory to pick one.

'mediapipe' is not a network runtime but a whole-pipeline reference
(runtimes/mediapipe_tasks.MediaPipeTasksTracker); callers construct it directly.
"""

from __future__ import annotations

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
    name: str = 'litert', model: str = 'full', device: str = 'cpu', num_threads: int = 2
) -> Runtime:
    """Build a runtime by name; 'auto' is torch on CUDA when a GPU is visible, else litert."""
    if name == 'mediapipe':
        raise ValueError(
            "'mediapipe' is a whole-pipeline reference, not a network runtime: use "
            'hand_pose_ros.core.runtimes.mediapipe_tasks.MediaPipeTasksTracker')
    if name not in RUNTIME_NAMES:
        raise ValueError(f'runtime must be one of {RUNTIME_NAMES + ("mediapipe",)}, got {name!r}')
    if name == 'auto':
        if torch_cuda_available():
            name, device = 'torch', 'cuda'
        else:
            name = 'litert'
    if name == 'litert':
        if device != 'cpu':
            raise ValueError(f"the litert runtime runs on 'cpu' only, got device {device!r}")
        from hand_pose_ros.core.runtimes.litert import LiteRtRuntime
        return LiteRtRuntime(model=model, num_threads=num_threads)
    from hand_pose_ros.core.runtimes.torch_runtime import TorchRuntime
    return TorchRuntime(model=model, device=device, num_threads=num_threads)
