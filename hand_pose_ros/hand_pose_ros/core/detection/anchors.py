"""
SSD anchors of the MediaPipe palm detector (SsdAnchorsCalculator with the palm options).

Only the centres matter: the palm model uses fixed-size anchors (w = h = 1), so decoding
needs just where each of the 2016 anchors sits in the 192x192 input.
"""

from __future__ import annotations

from functools import lru_cache

from hand_pose_ros.core.models.catalog import PALM_INPUT_SIZE
import numpy as np

PALM_STRIDES = (8, 16, 16, 16)
ANCHOR_OFFSET = 0.5
ASPECT_RATIOS = (1.0,)


@lru_cache(maxsize=4)
def ssd_anchors(
    input_size: int = PALM_INPUT_SIZE, strides: tuple[int, ...] = PALM_STRIDES
) -> np.ndarray:
    """
    (N, 2) anchor centres, normalised to [0, 1], in the order the model emits boxes.

    Consecutive layers with the same stride share one feature map; each layer adds one
    anchor per aspect ratio plus one interpolated-scale anchor per location.
    """
    centres = []
    layer = 0
    while layer < len(strides):
        stride = strides[layer]
        per_location = 0
        while layer < len(strides) and strides[layer] == stride:
            per_location += len(ASPECT_RATIOS) + 1
            layer += 1
        size = int(np.ceil(input_size / stride))
        ys, xs = np.meshgrid(np.arange(size), np.arange(size), indexing='ij')
        grid = np.stack([(xs + ANCHOR_OFFSET) / size, (ys + ANCHOR_OFFSET) / size], axis=-1)
        centres.append(np.repeat(grid.reshape(-1, 2), per_location, axis=0))
    out = np.concatenate(centres).astype(np.float32)
    out.setflags(write=False)
    return out
