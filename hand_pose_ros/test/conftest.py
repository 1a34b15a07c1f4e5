"""Shared fixtures: the project's test data lives in ../shared beside the repository root."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get('HAND_POSE_ROS_SHARED', REPO_ROOT.parent / 'shared')) / 'data'


def shared_path(*parts: str) -> Path:
    """Path into ../shared/data; fails (never skips) with a clear message when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.fail(
            f'test data {path} not found: these tests need the shared/ folder beside the '
            f'repository root (or HAND_POSE_ROS_SHARED pointing at it)', pytrace=False)
    return path


@pytest.fixture(scope='session')
def annotations() -> list[dict]:
    return json.loads(shared_path('hands', 'annotations.json').read_text())


@pytest.fixture(scope='session')
def golden_static() -> dict:
    return json.loads(shared_path('hands', 'golden_mediapipe_static.json').read_text())


@pytest.fixture(scope='session')
def golden_video() -> dict:
    return json.loads(shared_path('motion', 'golden_mediapipe_video.json').read_text())
