"""
Where the tools find the project's shared data set.

The tools run from a checkout, like the tests: $HAND_POSE_ROS_SHARED when set (the tests
honour it too), else the `shared/` folder beside the repository root.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]


def shared_data_dir(*parts: str) -> Path:
    """Return shared/data (or a path inside it, e.g. 'motion', 'seq0')."""
    root = os.environ.get('HAND_POSE_ROS_SHARED')
    return (Path(root) if root else REPO_ROOT.parent / 'shared').joinpath('data', *parts)
