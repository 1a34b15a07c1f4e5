"""
Robot-hand joint positions from tracked hands, with dex-retargeting (optional extra).

Why a wrapper: dex-retargeting's `SeqRetargeting` keeps one warm start (`last_qpos`) and one
low-pass filter state, i.e. it assumes one human hand. A camera sees hands come and go, and
two tracks of the same side must not warm-start or filter each other, so this keeps both per
track id and swaps them in around each solve. It also resolves configs by name (the YAMLs
dex-retargeting ships) or path, with URDF paths relative to a folder the caller names, without
touching dex-retargeting's class-wide default URDF folder.

Input is `hand_frames.mano_keypoints` (what its MediaPipe example computes); output is the
robot's joint positions in its URDF joint names (mimic joints included). Needs
`requirements/retarget.txt` (dex-retargeting imports torch as well).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
import contextlib
from dataclasses import dataclass
import logging
from pathlib import Path
import shutil
import tempfile
import threading
from typing import Any

import numpy as np

INSTALL_HINT = (
    'dex-retargeting is not installed: run `make setup` (WITH_RETARGET=1, the default) or '
    '`pip install -r requirements/retarget.txt` (it also needs torch: requirements/torch.txt)')


def require_dex_retargeting() -> None:
    """Raise ImportError with the install command when dex-retargeting cannot be imported."""
    try:
        import dex_retargeting.retargeting_config  # noqa: F401
    except ImportError as exc:
        raise ImportError(f'{INSTALL_HINT} ({exc})') from exc


def shipped_configs_dir() -> Path:
    """dex-retargeting's own config folder (configs/teleop and configs/offline)."""
    require_dex_retargeting()
    import dex_retargeting
    return Path(dex_retargeting.__file__).resolve().parent / 'configs'


def resolve_config(config: str) -> Path:
    """
    Find a retargeting config: a YAML path, or one shipped with dex-retargeting by name.

    Names: 'allegro_hand_right' (teleop folder), 'leap_hand_left_dexpilot',
    'offline/inspire_hand_right' (position retargeting).
    """
    path = Path(config).expanduser()
    if path.suffix in ('.yml', '.yaml') or path.is_absolute() or path.exists():
        if not path.is_file():
            raise FileNotFoundError(f'retargeting config {path} does not exist')
        return path.resolve()
    folder, _, name = config.rpartition('/')
    shipped = shipped_configs_dir() / (folder or 'teleop') / f'{name}.yml'
    if not shipped.is_file():
        names = sorted(p.stem for p in (shipped_configs_dir() / 'teleop').glob('*.yml'))
        raise FileNotFoundError(
            f'no shipped retargeting config {config!r}; teleop configs: {", ".join(names)}')
    return shipped


def config_side(spec: str) -> tuple[str, str]:
    """
    Return (side, config) of a robot hand given as 'CONFIG', 'left:CONFIG' or 'right:CONFIG'.

    Without a prefix the side is read from the config: its name and its URDF path must name
    exactly one of left and right (dex-retargeting's configs do, e.g. allegro_hand_left).
    """
    side, colon, rest = spec.partition(':')
    if colon and side in ('left', 'right'):
        resolve_config(rest)
        return side, rest
    import yaml
    path = resolve_config(spec)
    urdf = str(yaml.safe_load(path.read_text())['retargeting'].get('urdf_path', ''))
    words = f'{path.stem} {Path(urdf).stem}'.lower()
    found = [s for s in ('left', 'right') if s in words]
    if len(found) != 1:
        raise ValueError(f'retargeting config {spec}: cannot tell which hand it is for (its '
                         "name and URDF do not say left or right): write 'left:CONFIG' or "
                         "'right:CONFIG'")
    return found[0], spec


# dex-retargeting's RetargetingConfig.build() writes the URDF it parsed to a
# tempfile.mkdtemp(prefix=BUILD_TEMP_PREFIX) folder for pinocchio and never removes it: one
# folder per robot load, left in the temp dir for good.
BUILD_TEMP_PREFIX = 'dex_retargeting-'
_BUILD_LOCK = threading.Lock()


@contextlib.contextmanager
def _removing_build_temp_dirs() -> Iterator[None]:
    """
    Remove the temp folders this thread's dex-retargeting build creates, once it is done.

    The folder is only read while the model is built (pinocchio keeps no reference to the
    file), so it can go as soon as build() returns. tempfile.mkdtemp is wrapped for the
    duration of the build, under a lock so that two builds never wrap each other; folders
    other threads create meanwhile are left alone.
    """
    made: list[str] = []
    me = threading.get_ident()
    with _BUILD_LOCK:
        original: Callable[..., str] = tempfile.mkdtemp

        def recording_mkdtemp(*args: Any, **kwargs: Any) -> str:
            path = original(*args, **kwargs)
            prefix = kwargs.get('prefix', args[1] if len(args) > 1 else None)
            if threading.get_ident() == me and prefix == BUILD_TEMP_PREFIX:
                made.append(path)
            return path
        tempfile.mkdtemp = recording_mkdtemp
        try:
            yield
        finally:
            tempfile.mkdtemp = original
            for path in made:
                shutil.rmtree(path, ignore_errors=True)


def build_retargeting(config: Any) -> Any:
    """Return `config.build()` (a dex-retargeting RetargetingConfig), leaving no temp folder."""
    with _removing_build_temp_dirs():
        return config.build()


@dataclass
class _TrackState:
    last_qpos: np.ndarray  # optimiser variables (target joints), the next solve's start
    filter_y: np.ndarray | None  # low-pass filter output, None before the first solve


class HandRetargeter:
    """One robot hand model (config + URDF) solved for any number of human hand tracks."""

    def __init__(self, config: str, urdf_dir: str | Path):
        require_dex_retargeting()
        from dex_retargeting.retargeting_config import RetargetingConfig
        import yaml
        self.config_path = resolve_config(config)
        cfg = yaml.safe_load(self.config_path.read_text())['retargeting']
        urdf = Path(cfg['urdf_path'])
        if not urdf.is_absolute():
            urdf = Path(urdf_dir).expanduser() / urdf
        if not urdf.is_file():
            raise FileNotFoundError(
                f'URDF {urdf} of config {self.config_path} not found (urdf_dir={urdf_dir})')
        # An absolute urdf_path bypasses RetargetingConfig's class-wide default folder.
        config_obj = RetargetingConfig.from_dict(dict(cfg), {'urdf_path': str(urdf)})
        # Its URDF reader warns about every mesh it cannot find; retargeting needs none.
        urdf_log = logging.getLogger('dex_retargeting.yourdfpy')
        level = urdf_log.level
        urdf_log.setLevel(logging.ERROR)
        try:
            self.retargeting = build_retargeting(config_obj)
        finally:
            urdf_log.setLevel(level)
        # Fingertip links, thumb first, and the link they are measured from (for checks and
        # tools: the optimiser's own targets).
        self.fingertip_links: list[str] = list(
            cfg.get('finger_tip_link_names') or cfg.get('target_task_link_names')
            or cfg.get('target_link_names') or [])
        self.wrist_link: str | None = (
            cfg.get('wrist_link_name') or (cfg.get('target_origin_link_names') or [None])[0])
        self.urdf_path = urdf
        optimizer = self.retargeting.optimizer
        self.kind = optimizer.retargeting_type  # 'VECTOR', 'POSITION' or 'DEXPILOT'
        self.indices = np.asarray(optimizer.target_link_human_indices)
        self.joint_names: list[str] = list(self.retargeting.joint_names)
        self._initial_qpos = self.retargeting.last_qpos.copy()
        self._tracks: dict[int, _TrackState] = {}

    def reference(self, mano: np.ndarray) -> np.ndarray:
        """Build the optimiser's input from MANO keypoints as dex-retargeting's example does."""
        mano = np.asarray(mano, dtype=np.float64).reshape(21, 3)
        if self.kind == 'POSITION':
            return mano[self.indices, :]
        return mano[self.indices[1], :] - mano[self.indices[0], :]

    def retarget(self, mano: np.ndarray, track: int = 0) -> np.ndarray:
        """
        Robot joint positions (joint_names order) for one hand of track id `track`.

        Warm-started from, and low-pass filtered with, the same track's previous solution;
        a new track starts where dex-retargeting starts (the middle of the joint ranges).
        """
        seq = self.retargeting
        state = self._tracks.get(track)
        if state is None:
            state = _TrackState(self._initial_qpos.copy(), None)
        seq.last_qpos = state.last_qpos
        if seq.filter is not None:
            seq.filter.y, seq.filter.is_init = state.filter_y, state.filter_y is not None
        qpos = seq.retarget(self.reference(mano))
        filter_y = None if seq.filter is None else seq.filter.y
        self._tracks[track] = _TrackState(np.asarray(seq.last_qpos).copy(), filter_y)
        return np.asarray(qpos, dtype=np.float64)

    def keep_tracks(self, alive: set[int]) -> None:
        """Forget the warm starts of tracks that are gone (track ids are never reused)."""
        for track in list(self._tracks):
            if track not in alive:
                del self._tracks[track]

    @property
    def tracks(self) -> tuple[int, ...]:
        return tuple(self._tracks)

    def link_positions(self, qpos: np.ndarray, links: list[str]) -> np.ndarray:
        """(len(links), 3) link origins in the robot's root frame for joint positions qpos."""
        robot = self.retargeting.optimizer.robot
        robot.compute_forward_kinematics(np.asarray(qpos, dtype=np.float64))
        return np.array([robot.get_link_pose(robot.get_link_index(n))[:3, 3] for n in links])
