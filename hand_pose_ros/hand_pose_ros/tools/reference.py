"""
The official MediaPipe 0.10.21 Python solution, run in its own venv for benchmarking.

mediapipe 0.10.21 needs numpy<2 (this package runs on numpy 2), so it lives in a throwaway
venv created on first use, with pinned packages installed --no-deps: only what
mediapipe.solutions.hands imports, without the opencv-contrib-python, jax and sentencepiece
the wheel declares but the hands solution never loads. A worker process in that venv times
its own process() calls on frames the parent decoded (see reference_worker.py).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
import shutil
import subprocess
import sys

import numpy as np

_LOG = logging.getLogger(__name__)

REFERENCE_VERSION = '0.10.21'
# Everything mediapipe.solutions.hands 0.10.21 imports, pinned (installed with --no-deps).
REFERENCE_PACKAGES: tuple[str, ...] = (
    'mediapipe==0.10.21',
    'numpy==1.26.4',
    'protobuf==4.25.9',
    'absl-py==2.5.1',
    'attrs==26.1.0',
    'flatbuffers==25.12.19',
    'opencv-python-headless==4.10.0.84',
    'matplotlib==3.9.4',
    'contourpy==1.3.3',
    'cycler==0.12.1',
    'fonttools==4.68.0',
    'kiwisolver==1.5.1',
    'packaging==26.3',
    'pillow==13.0.0',
    'pyparsing==3.3.3',
    'python-dateutil==4.0.0',
    'tzdata==2026.6',
)
_STAMP = 'hand_pose_ros-reference.txt'
_WORKER = Path(__file__).with_name('reference_worker.py')


def _cache_venv_dir() -> Path:
    cache = os.environ.get('XDG_CACHE_HOME') or str(Path.home() / '.cache')
    return Path(cache) / 'hand_pose_ros' / f'mediapipe-{REFERENCE_VERSION}-venv'


def default_venv_dir() -> Path:
    """$HAND_POSE_ROS_REFERENCE_VENV, else ~/.cache/hand_pose_ros/mediapipe-0.10.21-venv."""
    env = os.environ.get('HAND_POSE_ROS_REFERENCE_VENV')
    return Path(env) if env else _cache_venv_dir()


def _may_replace(venv: Path) -> bool:
    """
    Tell whether `venv` may be deleted to rebuild it: a path the user named may hold anything.

    Only a folder this package made (stamped, or its own cache folder) or an empty one may.
    """
    return ((venv / _STAMP).is_file() or venv.resolve() == _cache_venv_dir().resolve()
            or (venv.is_dir() and not any(venv.iterdir())))


def ensure_reference_venv(venv: Path | None = None) -> Path:
    """Python of the reference venv, creating it (pip, PyPI) when missing or stale."""
    venv = venv or default_venv_dir()
    python = venv / 'bin' / 'python'
    wanted = '\n'.join(REFERENCE_PACKAGES)
    stamp = venv / _STAMP
    if python.exists() and stamp.is_file() and stamp.read_text() == wanted:
        return python
    if venv.exists() and not _may_replace(venv):
        raise RuntimeError(
            f'{venv} is not a mediapipe reference venv made by hand_pose_ros (no {_STAMP}); '
            'refusing to delete it: name a new or empty folder for the reference venv')
    _LOG.warning('creating the mediapipe %s reference venv in %s', REFERENCE_VERSION, venv)
    if venv.exists():
        shutil.rmtree(venv)
    base = getattr(sys, '_base_executable', sys.executable)
    subprocess.run([base, '-m', 'venv', str(venv)], check=True)
    subprocess.run([str(python), '-m', 'pip', 'install', '-q', '--no-deps',
                    '--disable-pip-version-check', *REFERENCE_PACKAGES], check=True)
    subprocess.run([str(python), '-c', 'import mediapipe.python.solutions.hands'], check=True)
    stamp.write_text(wanted)
    return python


class ReferenceWorker:
    """Client of reference_worker.py: open a configuration, time one frame at a time."""

    def __init__(self, python: Path, frames_npy: Path) -> None:
        self._proc = subprocess.Popen(
            [str(python), str(_WORKER), str(frames_npy)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, bufsize=1)
        self.version = ''

    def _call(self, **msg) -> dict:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps(msg) + '\n')
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f'reference worker exited (code {self._proc.poll()})')
        reply = json.loads(line)
        if 'error' in reply:
            raise RuntimeError(f'reference worker: {reply["error"]}')
        return reply

    def open_config(self, static: bool, model: str, max_hands: int) -> None:
        self.version = self._call(cmd='open', static=static, model=model,
                                  max_hands=max_hands)['version']

    def process(self, index: int) -> tuple[float, int]:
        """Time frame `index`: (milliseconds inside the worker's Hands.process, hands found)."""
        reply = self._call(cmd='process', index=index)
        return reply['ms'], reply['hands']

    def close(self) -> int:
        """Ask the worker to quit; returns its exit code (it is killed after 30 s)."""
        proc = self._proc
        try:
            if proc.poll() is None and proc.stdin is not None:
                proc.stdin.write(json.dumps({'cmd': 'quit'}) + '\n')
                proc.stdin.flush()
        except OSError:  # the worker is already gone: its pipe is closed
            pass
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass
        try:
            return proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()


def save_frames(frames: np.ndarray, path: Path) -> Path:
    """Write the decoded RGB frames the worker will load."""
    np.save(path, np.ascontiguousarray(frames))
    return path
