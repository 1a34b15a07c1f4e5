"""
Locating, verifying and fetching the MediaPipe hand (and body) models.

The models ship inside the mediapipe 0.10.21 wheel (later wheels carry none). They are fetched
once at setup time, never while the node runs, and verified by sha256 on every load so a
truncated or wrong file fails loudly with the command that fixes it. The opt-in int8 landmark
models (precision 'int8', see quantize.py) are derived from the verified fp32 ones at fetch
time, deterministically, and pinned by sha256 like the others. The same wheel carries
MediaPipe Holistic's body models (pose detector, pose landmarks, hand_recrop), which the
opt-in body-guided hand ROIs use (core/detection/body.py); `hand-pose-ros fetch-models`
extracts them too, so an existing model cache gets them on the next setup run.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
import shutil
import subprocess
import sys
import tempfile
import zipfile

_LOG = logging.getLogger(__name__)

MEDIAPIPE_WHEEL = 'mediapipe==0.10.21'

MODEL_SHA256: dict[str, str] = {
    'palm_detection_lite.tflite':
        'e9a4aaddf90dda56a87235303cf00e4c2d3fb28725f68fd88772997dac905c18',
    'palm_detection_full.tflite':
        '1b14e9422c6ad006cde6581a46c8b90dd573c07ab7f3934b5589e7cea3f89a54',
    'hand_landmark_lite.tflite':
        '048edd3645c9bf7397d19a9f6e3a42957d6e414c9bea6598030a2e9b624156e6',
    'hand_landmark_full.tflite':
        '11c272b891e1a99ab034208e23937a8008388cf11ed2a9d776ed3d01d0ba00e3',
}

# Derived by quantize.int8_landmark_model from the verified hand_landmark_{lite,full}.tflite.
INT8_MODEL_SHA256: dict[str, str] = {
    'hand_landmark_lite_int8.tflite':
        'caf9b09ca61167eb443065ee5c0416a075a4318fe46268c7be52b7f018bbde6d',
    'hand_landmark_full_int8.tflite':
        '05ff5a935e7c1a01c6db6aff054ff47ef2e12887d15b6a2991aafe8809ca53b3',
}
# MediaPipe Holistic's body models (mediapipe/modules/{pose_detection,pose_landmark,
# holistic_landmark}/ in the wheel), for the body_rois option.
BODY_MODEL_SHA256: dict[str, str] = {
    'pose_detection.tflite':
        '9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c',
    'pose_landmark_full.tflite':
        'e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f',
    'hand_recrop.tflite':
        '67d996ce96f9d36fe17d2693022c6da93168026ab2f028f9e2365398d8ac7d5d',
}
ALL_MODEL_SHA256: dict[str, str] = {**MODEL_SHA256, **INT8_MODEL_SHA256, **BODY_MODEL_SHA256}

MODEL_VARIANTS = ('lite', 'full')
PRECISIONS = ('fp32', 'int8')
FETCH_COMMAND = 'hand-pose-ros fetch-models'

# What the networks take and give, the same for both variants. They live with the models, not
# with a runtime, because the geometry (anchors, ROIs, tiles, landmark projection) depends on
# them too, and geometry must not depend on how the networks are run.
PALM_INPUT_SIZE = 192  # palm detector input: 192x192 RGB, float [0, 1], zero border
LANDMARK_INPUT_SIZE = 224  # landmark model input: 224x224 RGB, float [0, 1], edge border
NUM_ANCHORS = 2016  # palm detector SSD anchors (core/detection/anchors.py derives the same count)
# The body models (body_rois, core/detection/body.py): inputs RGB float, square.
POSE_DETECTION_SIZE = 224  # pose detector, [-1, 1], zero border; 2254 SSD anchors
POSE_LANDMARK_SIZE = 256  # pose landmark model, [0, 1], edge border
RECROP_SIZE = 256  # hand_recrop, [0, 1], edge border

# Output tensor names in the .tflite files, as the interpreter reports them.
PALM_BOXES_OUTPUT = 'Identity'  # (1, 2016, 18) raw boxes and keypoints
PALM_SCORES_OUTPUT = 'Identity_1'  # (1, 2016, 1) raw logits
LANDMARKS_OUTPUT = 'Identity'  # (1, 63) 21 x (x, y, z) in 224-pixel crop units
PRESENCE_OUTPUT = 'Identity_1'  # (1, 1) hand presence probability
HANDEDNESS_OUTPUT = 'Identity_2'  # (1, 1) > 0.5: MediaPipe's 'Left' (selfie) label
WORLD_OUTPUT = 'Identity_3'  # (1, 63) 21 x (x, y, z) metres


class ModelError(RuntimeError):
    """A model file is missing or corrupt."""


def default_model_dir() -> Path:
    """$HAND_POSE_ROS_MODEL_DIR, else $XDG_CACHE_HOME/hand_pose_ros/models (~/.cache)."""
    env = os.environ.get('HAND_POSE_ROS_MODEL_DIR')
    if env:
        return Path(env)
    cache = os.environ.get('XDG_CACHE_HOME') or str(Path.home() / '.cache')
    return Path(cache) / 'hand_pose_ros' / 'models'


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def model_path(
    kind: str, variant: str, model_dir: Path | None = None, precision: str = 'fp32'
) -> Path:
    """
    Return the verified path of 'palm_detection' or 'hand_landmark' in 'lite' or 'full'.

    precision 'int8' names the derived hand_landmark_<variant>_int8.tflite (landmark only).
    """
    if variant not in MODEL_VARIANTS:
        raise ValueError(f'model must be one of {MODEL_VARIANTS}, got {variant!r}')
    if precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {PRECISIONS}, got {precision!r}')
    name = f'{kind}_{variant}{"_int8" if precision == "int8" else ""}.tflite'
    if name not in ALL_MODEL_SHA256:
        raise ValueError(f'unknown model {name!r}')
    return _verified((model_dir or default_model_dir()) / name, ALL_MODEL_SHA256[name])


def body_model_path(name: str, model_dir: Path | None = None) -> Path:
    """
    Return the verified path of a body model.

    name: 'pose_detection', 'pose_landmark_full' or 'hand_recrop'.
    """
    file = f'{name}.tflite'
    if file not in BODY_MODEL_SHA256:
        raise ValueError(f'unknown body model {name!r}')
    return _verified((model_dir or default_model_dir()) / file, BODY_MODEL_SHA256[file])


def _verified(path: Path, expected: str) -> Path:
    if not path.is_file():
        raise ModelError(f'model file {path} is missing; fetch it with `{FETCH_COMMAND}`')
    digest = _sha256(path)
    if digest != expected:
        raise ModelError(
            f'model file {path} is corrupt (sha256 {digest[:12]}..., expected '
            f'{expected[:12]}...); re-fetch it with `{FETCH_COMMAND}`')
    return path


def _present(folder: Path, hashes: dict[str, str]) -> bool:
    return all((folder / n).is_file() and _sha256(folder / n) == h for n, h in hashes.items())


def models_present(model_dir: Path | None = None, body: bool = False) -> bool:
    """
    Return True when every model is present with the right checksum.

    The models are the six hand models (four fetched, two int8 derived), and with body the
    three body models.
    """
    hashes = {**MODEL_SHA256, **INT8_MODEL_SHA256, **(BODY_MODEL_SHA256 if body else {})}
    return _present(model_dir or default_model_dir(), hashes)


def fetch_models(model_dir: Path | None = None, wheel: Path | None = None,
                 body: bool = False) -> Path:
    """
    Extract the models from the mediapipe 0.10.21 wheel into model_dir.

    The four hand models (with body, also the three body models) are extracted, then the two
    int8 landmark models derived.

    Downloads the wheel with `pip download --no-deps` unless a local wheel is given; only
    missing or corrupt files are extracted. Does nothing when every model is already present
    and verified. The CLI (and so setup) passes body=True; the library default stays the
    hand models, so a cache holding those needs no download.
    """
    folder = model_dir or default_model_dir()
    if models_present(folder, body):
        _LOG.info('models already present in %s', folder)
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {**MODEL_SHA256, **(BODY_MODEL_SHA256 if body else {})}
    missing = {n: h for n, h in wanted.items() if not _present(folder, {n: h})}
    if missing:
        _extract_wheel_models(folder, wheel, missing)
    for variant in MODEL_VARIANTS:
        derive_int8_landmark(variant, folder)
    _LOG.info('models written to %s', folder)
    return folder


def derive_int8_landmark(variant: str, model_dir: Path | None = None) -> Path:
    """
    Write hand_landmark_<variant>_int8.tflite from the verified fp32 model; verify it.

    The derivation is deterministic, so the output must match its pinned sha256; a mismatch
    (e.g. another ai-edge-litert flatbuffer writer) fails here instead of at load time.
    """
    from hand_pose_ros.core.models.quantize import int8_landmark_model

    folder = model_dir or default_model_dir()
    name = f'hand_landmark_{variant}_int8.tflite'
    target = folder / name
    if target.is_file() and _sha256(target) == INT8_MODEL_SHA256[name]:
        return target
    data = int8_landmark_model(model_path('hand_landmark', variant, folder).read_bytes())
    digest = hashlib.sha256(data).hexdigest()
    if digest != INT8_MODEL_SHA256[name]:
        raise ModelError(
            f'derived {name} has sha256 {digest[:12]}..., expected '
            f'{INT8_MODEL_SHA256[name][:12]}... (ai-edge-litert differs from the pinned one?)')
    part = Path(f'{target}.part')
    part.write_bytes(data)
    os.replace(part, target)
    return target


def _extract_wheel_models(folder: Path, wheel: Path | None, names: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if wheel is None:
            subprocess.run(
                [sys.executable, '-m', 'pip', 'download', '--no-deps', '--only-binary=:all:',
                 '-q', '-d', tmp, MEDIAPIPE_WHEEL], check=True)
            wheel = next(Path(tmp).glob('mediapipe-*.whl'))
        with zipfile.ZipFile(wheel) as zf:
            members = {Path(m).name: m for m in zf.namelist() if Path(m).name in names}
            for name, expected in names.items():
                if name not in members:
                    raise ModelError(f'{wheel} does not contain {name}')
                target = folder / name
                with zf.open(members[name]) as src, open(f'{target}.part', 'wb') as dst:
                    shutil.copyfileobj(src, dst)
                if _sha256(Path(f'{target}.part')) != expected:
                    raise ModelError(f'{name} from {wheel} has an unexpected sha256')
                os.replace(f'{target}.part', target)
