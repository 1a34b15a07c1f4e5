"""The default runtime: the four .tflite models on the LiteRT interpreter (XNNPACK)."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from hand_pose_ros.core.models.catalog import (
    HANDEDNESS_OUTPUT,
    LANDMARK_INPUT_SIZE,
    LANDMARKS_OUTPUT,
    model_path,
    NUM_ANCHORS,
    PALM_BOXES_OUTPUT,
    PALM_INPUT_SIZE,
    PALM_SCORES_OUTPUT,
    PRESENCE_OUTPUT,
    WORLD_OUTPUT,
)
from hand_pose_ros.core.models.runtimes.base import (
    LandmarkOutput,
    palm_image_index,
    palm_variant,
    PalmOutput,
    Runtime,
    warp_u8,
)
import numpy as np

_INV_255 = np.float32(1.0 / 255.0)


def interpreter(path: str, num_threads: int):
    """Return a LiteRT interpreter for the model at path, tensors allocated."""
    # Imported here so the rest of the core works where ai-edge-litert is not installed.
    from ai_edge_litert.interpreter import Interpreter
    interp = Interpreter(model_path=path, num_threads=num_threads)
    interp.allocate_tensors()
    return interp


class _Model:
    """
    One interpreter run on single inputs; batches are looped.

    Looping costs nothing measurable on CPU (XNNPACK gains little from batch > 1) and avoids
    re-planning the graph whenever the number of hands changes. Inputs are warped straight
    into the interpreter's own input buffer: at these sizes the float conversion and copies
    of a separate tensor cost as much as a third of the warp.
    """

    def __init__(self, path: str, num_threads: int, size: int, replicate_border: bool):
        self.interp = interpreter(path, num_threads)
        self.size = size
        self.replicate_border = replicate_border
        self.input_index = self.interp.get_input_details()[0]['index']
        self.outputs = {d['name']: d['index'] for d in self.interp.get_output_details()}
        self._crop = np.empty((size, size, 3), np.uint8)

    def __call__(self, tensor: np.ndarray) -> dict[str, np.ndarray]:
        """Run on one (size, size, 3) float32 tensor."""
        self.interp.set_tensor(self.input_index, tensor[None])
        return self._invoke()

    def warped(self, image: np.ndarray, transform: np.ndarray) -> dict[str, np.ndarray]:
        """Run on `image` sampled with the (2, 3) `transform` (warp_u8, as the pipeline)."""
        crop = warp_u8(image, transform, self.size, self.replicate_border, dst=self._crop)
        # The numpy view must be gone before invoke (the interpreter refuses to run while
        # one exists), hence the temporary.
        np.multiply(crop, _INV_255, out=self.interp.tensor(self.input_index)()[0])
        return self._invoke()

    def _invoke(self) -> dict[str, np.ndarray]:
        self.interp.invoke()
        return {name: self.interp.get_tensor(i) for name, i in self.outputs.items()}


class LiteRtRuntime(Runtime):
    """
    ai-edge-litert Interpreter with XNNPACK; warps on the CPU with OpenCV.

    Several hand crops run side by side, one single-threaded interpreter ("lane") per thread,
    rather than one after another on a num_threads interpreter: XNNPACK scales almost
    linearly to 2 threads, so the inference time is the same, but each lane's OpenCV warp
    (single-threaded, ~0.4 ms per 224 crop) overlaps the other's instead of leaving a core
    idle. A lone crop, a remainder that does not fill all lanes, and the palm detector run
    on the num_threads interpreter. XNNPACK's results do not depend on its thread count, so
    the outputs are identical either way.
    """

    name = 'litert'

    def __init__(self, model: str = 'full', num_threads: int = 2, precision: str = 'fp32',
                 model_dir: Path | None = None):
        if num_threads < 1:
            raise ValueError(f'num_threads must be >= 1, got {num_threads}')
        self.model = model
        self.num_threads = num_threads
        self.precision = precision
        self.model_dir = model_dir
        self._palms = {model: self._load_palm(model)}
        self._palm = self._palms[model]
        # precision 'int8': only the landmark model (quantize.py says why not the detector).
        landmark_path = str(model_path('hand_landmark', model, model_dir, precision=precision))
        self._landmark = _Model(landmark_path, num_threads, LANDMARK_INPUT_SIZE,
                                replicate_border=True)
        self._lanes = [_Model(landmark_path, 1, LANDMARK_INPUT_SIZE, replicate_border=True)
                       for _ in range(num_threads)] if num_threads > 1 else []
        self._pool = ThreadPoolExecutor(
            num_threads - 1, thread_name_prefix='litert-lane') if self._lanes else None
        self._graphs: dict[str, Any] = {}  # run_graph's interpreters, by path

    def _load_palm(self, variant: str) -> _Model:
        return _Model(str(model_path('palm_detection', variant, self.model_dir)), self.num_threads,
                      PALM_INPUT_SIZE, replicate_border=False)

    def palm_detection(
        self, images: Sequence[np.ndarray], transforms: np.ndarray,
        image_index: np.ndarray | None = None, variant: str | None = None,
    ) -> PalmOutput:
        index = palm_image_index(images, transforms, image_index)
        palm = palm_variant(self._palms, variant, self.model, self._load_palm)
        result = _palm_output(len(transforms))
        for k, (i, transform) in enumerate(zip(index, transforms)):
            _store_palm(result, k, palm.warped(images[i], transform))
        return result

    def hand_landmarks(
        self, images: Sequence[np.ndarray], image_index: np.ndarray, transforms: np.ndarray
    ) -> LandmarkOutput:
        m = len(transforms)
        result = _landmark_output(m)
        lanes, pool = len(self._lanes), self._pool
        parallel = m - m % lanes if m > 1 and pool is not None else 0

        def run_lane(lane: int) -> None:
            for k in range(lane, parallel, lanes):
                i = image_index[k]
                _store_landmarks(result, k, self._lanes[lane].warped(images[i], transforms[k]))

        if parallel:  # implies a pool
            others = [pool.submit(run_lane, lane) for lane in range(1, lanes)]
            run_lane(0)
            for job in others:
                job.result()
        for k in range(parallel, m):
            i = image_index[k]
            _store_landmarks(result, k, self._landmark.warped(images[i], transforms[k]))
        return result

    def run_graph(self, path: Path, batch: np.ndarray) -> list[np.ndarray]:
        net = self._graphs.get(str(path))
        if net is None:
            net = self._graphs[str(path)] = interpreter(str(path), self.num_threads)
        inp = net.get_input_details()[0]['index']
        outs = net.get_output_details()
        results: list[list[np.ndarray]] = [[] for _ in outs]
        for tensor in batch:
            net.set_tensor(inp, np.ascontiguousarray(tensor[None], dtype=np.float32))
            net.invoke()
            for k, d in enumerate(outs):
                results[k].append(net.get_tensor(d['index']).copy())
        return [np.concatenate(r) for r in results]

    def run_palm(self, batch: np.ndarray) -> PalmOutput:
        """Run the detector on (N, 192, 192, 3) float32 NHWC tensors in [0, 1] (tests, tools)."""
        result = _palm_output(len(batch))
        for k in range(len(batch)):
            _store_palm(result, k, self._palm(batch[k]))
        return result

    def run_landmarks(self, batch: np.ndarray) -> LandmarkOutput:
        """Run the landmark model on (M, 224, 224, 3) float32 NHWC tensors in [0, 1]."""
        result = _landmark_output(len(batch))
        for k in range(len(batch)):
            _store_landmarks(result, k, self._landmark(batch[k]))
        return result

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        self._palm = self._landmark = None  # type: ignore[assignment]
        self._palms = {}
        self._lanes = []
        self._graphs = {}


def _palm_output(n: int) -> PalmOutput:
    return PalmOutput(boxes=np.zeros((n, NUM_ANCHORS, 18), np.float32),
                      scores=np.zeros((n, NUM_ANCHORS), np.float32))


def _store_palm(result: PalmOutput, k: int, out: dict[str, np.ndarray]) -> None:
    result.boxes[k] = out[PALM_BOXES_OUTPUT].reshape(NUM_ANCHORS, 18)
    result.scores[k] = out[PALM_SCORES_OUTPUT].reshape(NUM_ANCHORS)


def _landmark_output(m: int) -> LandmarkOutput:
    return LandmarkOutput(
        landmarks=np.zeros((m, 21, 3), np.float32), presence=np.zeros(m, np.float32),
        handedness=np.zeros(m, np.float32), world=np.zeros((m, 21, 3), np.float32))


def _store_landmarks(result: LandmarkOutput, k: int, out: dict[str, np.ndarray]) -> None:
    result.landmarks[k] = out[LANDMARKS_OUTPUT].reshape(21, 3)
    result.presence[k] = out[PRESENCE_OUTPUT].reshape(-1)[0]
    result.handedness[k] = out[HANDEDNESS_OUTPUT].reshape(-1)[0]
    result.world[k] = out[WORLD_OUTPUT].reshape(21, 3)
