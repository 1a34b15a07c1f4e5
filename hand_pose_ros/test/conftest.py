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


def stop_spinning(executor, thread, node) -> None:
    """
    Stop a spin thread, then destroy its node: in that order, never the other way round.

    A node destroyed while its executor thread is still inside a wait is only marked, and
    that thread finalises it on its way out, holding the GIL. Fast DDS's participant teardown
    there can wait forever for a discovery callback (the nodes under test being stopped at
    that moment): seen once in a fresh-clone run, the whole test process hung.
    """
    executor.shutdown()
    thread.join(10.0)
    assert not thread.is_alive(), 'the spin thread did not stop after executor.shutdown()'
    node.destroy_node()


def stop_processes(*procs, timeout_s: float = 10.0) -> None:
    """
    SIGTERM every process still running first, then wait for each; kill what does not stop.

    Terminating all before waiting lets the nodes under test shut down side by side: one at
    a time, a slow one would hold up the others' teardown (and the module's) by its whole
    timeout. A process that needs the kill is reaped too, so no zombie outlives the test.
    """
    import subprocess
    running = [p for p in procs if p.poll() is None]
    for p in running:
        p.terminate()
    for p in running:
        try:
            p.wait(timeout_s)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout_s)


class DdsClient:
    """
    A test-side rclpy node spun in its own thread, collecting messages under one lock.

    The DDS tests' clients build on it, so that every test waits on conditions the same
    way (poll/wait_for) and never on sleeps. Subclasses create their entities on `node`,
    then call start().
    """

    reply_timeout_s = 20.0

    def __init__(self, name: str):
        import threading

        import rclpy
        self.node = rclpy.create_node(name)
        self.lock = threading.RLock()

    def start(self) -> None:
        import threading

        from rclpy.executors import SingleThreadedExecutor
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop spinning, then destroy the node (see stop_spinning)."""
        stop_spinning(self.executor, self.thread, self.node)

    def _add(self, target: list):
        def cb(msg):
            with self.lock:
                target.append(msg)
        return cb

    def poll(self, pred, timeout: float) -> bool:
        """Tell whether pred() came true (checked under the lock) within timeout s."""
        import time
        end = time.monotonic() + timeout
        while True:
            with self.lock:
                if pred():
                    return True
            if time.monotonic() >= end:
                return False
            time.sleep(0.02)

    def wait_for(self, pred, timeout: float | None = None, what: str = '') -> None:
        timeout = self.reply_timeout_s if timeout is None else timeout
        if not self.poll(pred, timeout):
            raise AssertionError(f'timed out after {timeout} s waiting for {what}')
