"""The managed node (hands.launch.py lifecycle:=true) driven with `ros2 lifecycle` over DDS.

What a bringup system relies on and only real processes show: the node waits unconfigured
and publishes nothing, HandArrays flow only while active, deactivate really stops them (and
activate brings them back), a bad parameter fails configure with the reason and leaves the
node unconfigured, and Ctrl-C in any state exits 0 without a traceback. Frames come from
`ros2 run hand_pose_ros replay` over ../shared/data/motion/seq1 (looping at 30 Hz); every wait
is on a condition: frames seen by the listener, a state reported by `ros2 lifecycle get`.
"""

from __future__ import annotations

import signal
import subprocess
import time

from conftest import shared_path
import pytest
from test_ros_tools_e2e import (
    _env,
    _ros2,
    assert_clean_stop,
    CLI_TIMEOUT_S,
    Listener,
    START_TIMEOUT_S,
    Terminal,
)

NODE = '/lc/hand_pose_node'
FRAMES = 20  # replayed frames (CameraInfo seen by the listener) that make a check meaningful


def _cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    """`ros2 <command> <verb> ...`; a fresh CLI process may not discover the node: retry."""
    end = time.monotonic() + START_TIMEOUT_S
    while True:
        out = subprocess.run([_ros2(), *args[:2], '--no-daemon', '--spin-time', '3', *args[2:]],
                             capture_output=True, text=True, env=env, timeout=CLI_TIMEOUT_S)
        if 'Node not found' not in out.stderr or time.monotonic() > end:
            return out


def _lifecycle(env: dict, *args: str) -> subprocess.CompletedProcess:
    return _cli(env, 'lifecycle', *args)


def _wait_state(env: dict, node: str, state: str, term: Terminal,
                timeout: float = START_TIMEOUT_S) -> None:
    """Wait until `ros2 lifecycle get` reports `state` (the node may still be starting)."""
    end = time.monotonic() + timeout
    out = None
    while time.monotonic() < end:
        out = _lifecycle(env, 'get', node)
        if out.returncode == 0 and out.stdout.startswith(state + ' ['):
            return
        assert term.proc.poll() is None, f'the node ended\n{term.tail()}'
    raise AssertionError(f'{node} not {state} after {timeout:.0f} s: '
                         f'{out.stdout}{out.stderr}\n{term.tail()}')


def _set(env: dict, node: str, transition: str, term: Terminal) -> None:
    out = _lifecycle(env, 'set', node, transition)
    assert out.returncode == 0 and 'Transitioning successful' in out.stdout, (
        f'{transition}: {out.stdout}{out.stderr}\n{term.tail()}')


def _frames(listener: Listener) -> int:
    """Replayed frames seen so far: the replay publishes one CameraInfo per image."""
    with listener.lock:
        return len(listener.info_stamps)


def _wait_frames(listener: Listener, n: int, what: str) -> None:
    start = _frames(listener)
    listener.wait_for(lambda: len(listener.info_stamps) >= start + n, START_TIMEOUT_S,
                      f'{n} more replayed frames ({what})')


def test_configure_activate_deactivate_shutdown(tmp_path):
    ros2 = _ros2()
    source = shared_path('motion', 'seq1')
    env = _env(tmp_path)
    hands = Terminal([ros2, 'launch', 'hand_pose_ros', 'hands.launch.py', 'namespace:=lc',
                      'lifecycle:=true'], tmp_path / 'hands.log', env)
    replay = Terminal([ros2, 'run', 'hand_pose_ros', 'replay', '--ros-args', '-r',
                       '__ns:=/lc', '-p', f'source:={source}', '-p', 'rate_hz:=30.0'],
                      tmp_path / 'replay.log', env)
    listener = Listener('lc')
    try:
        _wait_state(env, NODE, 'unconfigured', hands)
        _wait_frames(listener, FRAMES, 'while unconfigured')
        _set(env, NODE, 'configure', hands)
        _wait_state(env, NODE, 'inactive', hands)
        _wait_frames(listener, FRAMES, 'while inactive')
        assert listener.count() == 0, f'HandArrays before activate\n{hands.tail()}'

        for round_ in ('first', 'second'):
            _set(env, NODE, 'activate', hands)
            _wait_state(env, NODE, 'active', hands)
            before = listener.count()
            listener.wait_for(lambda b=before: len(listener.hands) >= b + 5, START_TIMEOUT_S,
                              f'HandArrays after the {round_} activate')
            _set(env, NODE, 'deactivate', hands)
            _wait_state(env, NODE, 'inactive', hands)
            _wait_frames(listener, FRAMES, 'after deactivate')  # what was in flight arrives
            after = listener.count()
            _wait_frames(listener, 2 * FRAMES, 'while deactivated')
            assert listener.count() == after, (
                f'{listener.count() - after} HandArrays while inactive\n{hands.tail()}')

        _set(env, NODE, 'shutdown', hands)
        _wait_state(env, NODE, 'finalized', hands)
        assert_clean_stop(hands, hands.stop(signal.SIGINT))
        assert 'configured (runtime' in hands.text(), hands.tail()
        replay.stop(signal.SIGINT)
    finally:
        listener.close()
        for term in (hands, replay):
            if term.proc.poll() is None:
                term.kill()


@pytest.mark.parametrize('stop_in', ['unconfigured', 'inactive', 'active'])
def test_bad_parameter_fails_configure_and_ctrl_c_in_any_state(tmp_path, stop_in):
    """A duplicate camera is refused at configure (still unconfigured, the reason logged);
    fixed, the node goes on to `stop_in`, where Ctrl-C must end it cleanly."""
    env = _env(tmp_path)
    node = '/lcx/hand_pose_node'
    term = Terminal([_ros2(), 'run', 'hand_pose_ros', 'hand_pose_lifecycle_node', '--ros-args',
                     '-r', '__ns:=/lcx', '-p', "cameras:=['a', 'a']"],
                    tmp_path / 'node.log', env)
    try:
        _wait_state(env, node, 'unconfigured', term)
        out = _lifecycle(env, 'set', node, 'configure')
        assert 'Transitioning failed' in out.stderr, out.stdout + out.stderr
        _wait_state(env, node, 'unconfigured', term)
        assert 'configure failed, still unconfigured' in term.text(), term.tail()
        assert 'lists a namespace twice' in term.text(), term.tail()
        if stop_in != 'unconfigured':
            out = _cli(env, 'param', 'set', node, 'cameras', "['a', 'b']")
            assert 'Set parameter successful' in out.stdout, out.stdout + out.stderr
            _set(env, node, 'configure', term)
            if stop_in == 'active':
                _set(env, node, 'activate', term)
            _wait_state(env, node, stop_in, term)
        elapsed = term.stop(signal.SIGINT)
        assert_clean_stop(term, elapsed)
        assert 'Traceback' not in term.text(), term.tail()
    finally:
        if term.proc.poll() is None:
            term.kill()
