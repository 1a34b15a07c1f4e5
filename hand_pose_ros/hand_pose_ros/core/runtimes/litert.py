"""The default runtime: the four .tflite models on the LiteRT interpreter (XNNPACK)."""

from __future__ import annotations

import numpy as np

from hand_pose_ros.core.models import model_path
from hand_pose_ros.core.runtimes.base import CpuWarpRuntime, LandmarkOutput, PalmOutput


def _interpreter(path: str, num_threads: int):
    # Imported here so the rest of the core works where ai-edge-litert is not installed.
    from ai_edge_litert.interpreter import Interpreter
    interp = Interpreter(model_path=path, num_threads=num_threads)
    interp.allocate_tensors()
    return interp


class _Model:
    """One interpreter run on single inputs; batches are looped.

    Looping costs nothing measurable on CPU (XNNPACK gains little from batch > 1) and avoids
    re-planning the graph whenever the number of hands changes.
    """

    def __init__(self, path: str, num_threads: int):
        self.interp = _interpreter(path, num_threads)
        self.input_index = self.interp.get_input_details()[0]['index']
        self.outputs = {d['name']: d['index'] for d in self.interp.get_output_details()}

    def __call__(self, tensor: np.ndarray) -> dict[str, np.ndarray]:
        self.interp.set_tensor(self.input_index, tensor[None])
        self.interp.invoke()
        return {name: self.interp.get_tensor(i) for name, i in self.outputs.items()}


class LiteRtRuntime(CpuWarpRuntime):
    """ai-edge-litert Interpreter with XNNPACK; warps on the CPU with OpenCV."""

    name = 'litert'
    batches_efficiently = False

    def __init__(self, model: str = 'full', num_threads: int = 2):
        if num_threads < 1:
            raise ValueError(f'num_threads must be >= 1, got {num_threads}')
        self.model = model
        self.num_threads = num_threads
        self._palm = _Model(str(model_path('palm_detection', model)), num_threads)
        self._landmark = _Model(str(model_path('hand_landmark', model)), num_threads)

    def run_palm(self, batch: np.ndarray) -> PalmOutput:
        n = len(batch)
        boxes = np.zeros((n, 2016, 18), np.float32)
        scores = np.zeros((n, 2016), np.float32)
        for k in range(n):
            out = self._palm(batch[k])
            boxes[k] = out['Identity'].reshape(2016, 18)
            scores[k] = out['Identity_1'].reshape(2016)
        return PalmOutput(boxes=boxes, scores=scores)

    def run_landmarks(self, batch: np.ndarray) -> LandmarkOutput:
        m = len(batch)
        result = LandmarkOutput(
            landmarks=np.zeros((m, 21, 3), np.float32), presence=np.zeros(m, np.float32),
            handedness=np.zeros(m, np.float32), world=np.zeros((m, 21, 3), np.float32))
        for k in range(m):
            out = self._landmark(batch[k])
            result.landmarks[k] = out['Identity'].reshape(21, 3)
            result.presence[k] = out['Identity_1'].reshape(-1)[0]
            result.handedness[k] = out['Identity_2'].reshape(-1)[0]
            result.world[k] = out['Identity_3'].reshape(21, 3)
        return result

    def close(self) -> None:
        self._palm = self._landmark = None  # type: ignore[assignment]
