"""
The one small interface every inference runtime implements.

The pipeline owns all geometry: it decides *where* to sample (one 2x3 affine matrix per
network input, mapping image pixels to tensor pixels) and decodes what comes back. A runtime
only samples the image with those matrices and runs the two networks, so a GPU runtime can do
the warps on the device and batch many inputs per call.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np

T = TypeVar('T')


@dataclass
class PalmOutput:
    """Raw palm detector outputs for a batch of N inputs."""

    boxes: np.ndarray  # (N, 2016, 18) float32: box x, y, w, h then 7 keypoints x, y (raw)
    scores: np.ndarray  # (N, 2016) float32 raw logits


@dataclass
class LandmarkOutput:
    """Raw landmark model outputs for a batch of M crops."""

    landmarks: np.ndarray  # (M, 21, 3) float32, 224-pixel crop units
    presence: np.ndarray  # (M,) float32 probability
    handedness: np.ndarray  # (M,) float32; > 0.5 means MediaPipe's 'Left' (selfie) label
    world: np.ndarray  # (M, 21, 3) float32 metres, crop-aligned


class Runtime(ABC):
    """Runs the palm detector and the landmark model on batches of warped inputs."""

    name: str = 'base'
    #: True when a batch of many inputs costs much less than as many single calls.
    batches_efficiently: bool = False

    @abstractmethod
    def palm_detection(
        self, images: Sequence[np.ndarray], transforms: np.ndarray,
        image_index: np.ndarray | None = None, variant: str | None = None,
    ) -> PalmOutput:
        """
        Sample input k from images[image_index[k]] with transforms[k] into 192x192.

        Zero border. image_index None means one transform per image, in order; several
        transforms of one image (detection tiles) share its upload. variant picks the
        detector ('lite' or 'full'; None = the runtime's model): detection tiles use the
        lite one, which finds small hands better (core/detection/tiles.py).
        """

    @abstractmethod
    def hand_landmarks(
        self, images: Sequence[np.ndarray], image_index: np.ndarray, transforms: np.ndarray
    ) -> LandmarkOutput:
        """
        Sample crop k from images[image_index[k]] with transforms[k] into 224x224.

        Border pixels replicate the image edge, as in MediaPipe's landmark graph.
        """

    @abstractmethod
    def run_graph(self, path: Path, batch: np.ndarray) -> list[np.ndarray]:
        """
        Run any other .tflite graph (the body networks) on (N, H, W, C) float32 inputs.

        Returns its raw outputs in graph output order, each with the batch as its first axis.
        The graph is loaded on first use and kept. Part of the interface so that every stage
        of a tracker runs where its runtime says: a wrapped or GPU runtime must not send some
        networks elsewhere behind its back.
        """

    def close(self) -> None:  # noqa: B027 - optional hook, not abstract
        """Release native resources; the default has none."""


def warp_u8(
    image: np.ndarray, transform: np.ndarray, size: int, replicate_border: bool,
    dst: np.ndarray | None = None,
) -> np.ndarray:
    """
    Bilinear affine warp of an RGB uint8 image into a (size, size, 3) uint8 crop.

    The one CPU implementation of the pipeline's crops (GPU runtimes must match it): zero
    border for the palm detector, replicated edge for the landmark model. `dst`, a
    preallocated (size, size, 3) uint8 array, saves an allocation per crop.
    """
    border = cv2.BORDER_REPLICATE if replicate_border else cv2.BORDER_CONSTANT
    return cv2.warpAffine(
        image, transform.astype(np.float64), (size, size), dst=dst,
        flags=cv2.INTER_LINEAR, borderMode=border, borderValue=(0, 0, 0))


def palm_variant(cache: dict[str, T], variant: str | None, default: str,
                 load: Callable[[str], T]) -> T:
    """
    Return palm_detection's detector for `variant` (None = `default`).

    It is loaded into `cache` on first use: a runtime pays for the second detector only when
    detection tiles ask for it.
    """
    name = variant or default
    if name not in cache:
        cache[name] = load(name)
    return cache[name]


def palm_image_index(images: Sequence[np.ndarray], transforms: np.ndarray,
                     image_index: np.ndarray | None) -> np.ndarray:
    """palm_detection's image_index, with None meaning one transform per image."""
    if image_index is None:
        if len(images) != len(transforms):
            raise ValueError(f'{len(images)} images but {len(transforms)} transforms')
        return np.arange(len(images))
    index = np.asarray(image_index, dtype=np.int64)
    if index.shape != (len(transforms),):
        raise ValueError(f'image_index must have one entry per transform, got {index.shape}')
    return index


def warp_to_tensor(
    image: np.ndarray, transform: np.ndarray, size: int, replicate_border: bool
) -> np.ndarray:
    """warp_u8 as the float32 [0, 1] tensor (size, size, 3) the networks take."""
    return warp_u8(image, transform, size, replicate_border).astype(np.float32) * (1.0 / 255.0)
