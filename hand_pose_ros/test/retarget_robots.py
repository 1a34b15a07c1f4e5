"""The shared robot-hand URDFs and dex-retargeting, for the retargeting tests.

Tests that need dex-retargeting fail (never skip) with the install command when it is
missing: `make setup` installs it by default (WITH_RETARGET=1), so CI runs them.
"""

from __future__ import annotations

from conftest import REPO_ROOT
import pytest

URDF_DIR = REPO_ROOT.parent / 'shared' / 'robots' / 'hands'
ROBOTS = ('allegro_hand', 'leap_hand', 'inspire_hand')


def require() -> None:
    from hand_pose_ros.core.meaning.retarget import require_dex_retargeting
    try:
        require_dex_retargeting()
    except ImportError as exc:
        pytest.fail(str(exc), pytrace=False)
    if not URDF_DIR.is_dir():
        pytest.fail(f'robot URDFs {URDF_DIR} not found: these tests need the shared/ folder '
                    'beside the repository root', pytrace=False)


def build_example_retargeting(name: str):
    """A SeqRetargeting built the way dex-retargeting's examples build one (less the temp
    folder its build leaves behind)."""
    require()
    from dex_retargeting.retargeting_config import RetargetingConfig
    from hand_pose_ros.core.meaning.retarget import build_retargeting, resolve_config
    RetargetingConfig.set_default_urdf_dir(str(URDF_DIR))
    return build_retargeting(RetargetingConfig.load_from_file(resolve_config(name)))
