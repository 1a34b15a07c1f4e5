"""The managed node (hands.launch.py lifecycle:=true) driven over DDS as a bringup system does.

What a bringup system relies on and only real processes show: the node waits unconfigured
and publishes nothing, HandArrays flow only while active, deactivate really stops them (and
activate brings them back), a bad parameter fails configure with the reason and leaves the
node unconfigured, and Ctrl-C in any state exits 0 without a traceback. Frames come from
`ros2 run hand_pose_ros replay` over ../shared/data/motion/seq1 (looping at 30 Hz).

The transitions and most state checks go through the node's lifecycle services (change_state,
get_state: what `ros2 lifecycle set|get` call) from the test's client, which has discovered
the node already. The ros2 tools themselves check the states of the first activate/deactivate
round, at start and after shutdown (`ros2 lifecycle get`), and run the configures (`ros2
lifecycle set`: a passing one with the `ros2` executable itself, a refused one). A fresh CLI
process costs seconds (Python, the tools' imports, discovery), so RosCli runs a test's
commands in one process through the executable's own entry point, and each `get` runs while
the test waits on frames anyway. Every wait is on a condition: a service seen, a reply,
frames seen by the listener, the processes gone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
import contextlib
import json
import os
from pathlib import Path
import queue
import signal
import subprocess
import threading
import time

from conftest import shared_path
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
import pytest
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from test_ros_tools_e2e import (
    _env,
    _ros2,
    assert_clean_stop,
    CLI_TIMEOUT_S,
    Listener,
    START_TIMEOUT_S,
    Terminal,
)

FRAMES = 20  # replayed frames (CameraInfo seen by the listener) that make a check meaningful
CLI_SPIN_S = '1.0'  # discovery time of one CLI node; 'Node not found' is retried


# One process runs every `ros2 ...` command of a test, one after the other: the `ros2`
# executable's own entry point (ros2cli.cli.main) with the same arguments and output, without
# starting Python and importing the ROS tools for each command. Each command's output comes
# back as one JSON line: [exit status, stdout, stderr].
CLI_RUNNER = r"""
import contextlib, io, json, sys, traceback
from ros2cli.cli import main
for line in sys.stdin:
    sys.argv = ['ros2', *json.loads(line)]  # as the executable sees them (verbs parse sys.argv)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main()
        except SystemExit as exc:
            rc = exc.code
        except Exception:
            traceback.print_exc()
            rc = 1
    if isinstance(rc, str):  # what `sys.exit(main())` prints, status 1
        err.write(rc + '\n')
        rc = 1
    sys.__stdout__.write(json.dumps([rc or 0, out.getvalue(), err.getvalue()]) + '\n')
    sys.__stdout__.flush()
"""


class RosCli:
    """`ros2 <command> ...` run by ROS 2's own CLI code in one long-lived process."""

    def __init__(self, env: dict, log: Path):
        ros2 = _ros2()
        python = Path(ros2).read_text().splitlines()[0].removeprefix('#!').strip()
        self.env, self.err = env, open(log, 'w')
        self.proc = subprocess.Popen([python, '-c', CLI_RUNNER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.err, text=True,
                                     env=env, start_new_session=True)
        self.replies: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.replies.put(line)

    def run(self, *args: str, exe: bool = False) -> subprocess.CompletedProcess:
        """`ros2 *args` in the runner, or with exe=True by the `ros2` executable."""
        if exe:
            return subprocess.run([_ros2(), *args], capture_output=True, text=True,
                                  env=self.env, timeout=CLI_TIMEOUT_S)
        self.proc.stdin.write(json.dumps(['--use-python-default-buffering', *args]) + '\n')
        self.proc.stdin.flush()
        end = time.monotonic() + CLI_TIMEOUT_S
        while True:
            try:
                rc, out, err = json.loads(self.replies.get(timeout=0.2))
                break
            except queue.Empty:
                assert self.proc.poll() is None and time.monotonic() < end, (
                    f'ros2 {" ".join(args)}: no answer ({self.err.name})')
        return subprocess.CompletedProcess(['ros2', *args], rc, out, err)

    def lifecycle(self, verb: str, *args: str, exe: bool = False) -> subprocess.CompletedProcess:
        """`ros2 lifecycle <verb> ...`; a fresh CLI node may not discover the node: retry."""
        end = time.monotonic() + START_TIMEOUT_S
        while True:
            out = self.run('lifecycle', verb, '--no-daemon', '--spin-time', CLI_SPIN_S, *args,
                           exe=exe)
            if 'Node not found' not in out.stderr or time.monotonic() > end:
                return out

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.err.close()


class Managed:
    """
    One lifecycle node under test: its lifecycle and parameter services, and `ros2 lifecycle`.

    set()/state() call the services from the listener's node, which has discovered the node
    already: a reply in milliseconds. cli_get()/cli_set() are the ros2 tools; a fresh CLI
    node must discover the node first (about a second, more under load), so cli_get() runs
    while the test waits on frames anyway.
    """

    def __init__(self, listener: Listener, node: str, term: Terminal, env: dict, tmp: Path):
        self.listener, self.node, self.term = listener, node, term
        self.cli = RosCli(env, tmp / f'cli-{node.strip("/").replace("/", "-")}.log')
        make = listener.node.create_client
        self._change = make(ChangeState, f'{node}/change_state')
        self._get = make(GetState, f'{node}/get_state')
        self._params = make(SetParameters, f'{node}/set_parameters')

    def _call(self, client, request, what: str):
        """Call a service of the node, once the node offers it."""
        end = time.monotonic() + START_TIMEOUT_S
        while not client.wait_for_service(timeout_sec=0.2):
            assert self.term.proc.poll() is None, f'the node ended\n{self.term.tail()}'
            assert time.monotonic() < end, f'no {client.srv_name} service\n{self.term.tail()}'
        future = client.call_async(request)
        self.listener.wait_for(future.done, CLI_TIMEOUT_S, what)
        return future.result()

    def state(self) -> str:
        return self._call(self._get, GetState.Request(), 'get_state').current_state.label

    def set(self, transition: str) -> None:
        """change_state by the transition's label, as `ros2 lifecycle set` sends it."""
        reply = self._call(self._change, ChangeState.Request(
            transition=Transition(label=transition)), f'change_state {transition}')
        assert reply.success, f'{transition} failed\n{self.term.tail()}'

    def cli_set(self, transition: str, ok: bool = True, exe: bool = False) -> None:
        """`ros2 lifecycle set` succeeds (or, ok=False, fails) with `transition`."""
        out = self.cli.lifecycle('set', self.node, transition, exe=exe)
        if ok:
            assert out.returncode == 0 and 'Transitioning successful' in out.stdout, (
                f'ros2 lifecycle set {transition}: {out.stdout}{out.stderr}\n{self.term.tail()}')
        else:
            assert 'Transitioning failed' in out.stderr, (
                f'ros2 lifecycle set {transition}: {out.stdout}{out.stderr}\n{self.term.tail()}')

    def expect(self, state: str) -> Callable[[], None]:
        """Assert `state` (get_state); returns a check() with nothing left to do, as cli_get."""
        assert self.state() == state, f'not {state}\n{self.term.tail()}'
        return lambda: None

    def cli_get(self, state: str) -> Callable[[], None]:
        """
        expect(state), and start `ros2 lifecycle get`; check() waits for it, asserts `state`.

        The state must not change before check(): call it before the next transition.
        """
        self.expect(state)
        result: list[subprocess.CompletedProcess] = []
        thread = threading.Thread(
            target=lambda: result.append(self.cli.lifecycle('get', self.node)), daemon=True)
        thread.start()

        def check() -> None:
            thread.join(START_TIMEOUT_S + CLI_TIMEOUT_S)
            assert result, f'ros2 lifecycle get did not return\n{self.term.tail()}'
            out = result[0]
            assert out.returncode == 0 and out.stdout.startswith(state + ' ['), (
                f'ros2 lifecycle get: {out.stdout}{out.stderr}\n{self.term.tail()}')
        return check

    def set_strings(self, name: str, values: list[str]) -> None:
        param = Parameter(name=name, value=ParameterValue(
            type=ParameterType.PARAMETER_STRING_ARRAY, string_array_value=values))
        reply = self._call(self._params, SetParameters.Request(parameters=[param]),
                           f'set_parameters {name}')
        assert reply.results[0].successful, reply.results[0].reason

    def close(self) -> None:
        self.cli.close()


def _frames(listener: Listener) -> int:
    """Replayed frames seen so far: the replay publishes one CameraInfo per image."""
    with listener.lock:
        return len(listener.info_stamps)


def _wait_frames(listener: Listener, n: int, what: str) -> None:
    start = _frames(listener)
    listener.wait_for(lambda: len(listener.info_stamps) >= start + n, START_TIMEOUT_S,
                      f'{n} more replayed frames ({what})')


@contextlib.contextmanager
def _managed_node(tmp_path, ns: str, *params: str) -> Iterator[tuple[Terminal, Managed]]:
    """`ros2 run hand_pose_ros hand_pose_lifecycle_node` in namespace `ns`, and its Managed;
    everything is stopped on the way out, whatever the test left running."""
    env = _env(tmp_path)
    args = [a for p in params for a in ('-p', p)]
    term = Terminal([_ros2(), 'run', 'hand_pose_ros', 'hand_pose_lifecycle_node', '--ros-args',
                     '-r', f'__ns:=/{ns}', *args], tmp_path / 'node.log', env)
    listener = Listener(ns)
    node = Managed(listener, f'/{ns}/hand_pose_node', term, env, tmp_path)
    try:
        yield term, node
    finally:
        node.close()
        listener.close()
        if term.proc.poll() is None:
            term.kill()


def test_configure_activate_deactivate_activate_shutdown(tmp_path):
    ros2 = _ros2()
    source = shared_path('motion', 'seq1')
    env = _env(tmp_path)
    hands = Terminal([ros2, 'launch', 'hand_pose_ros', 'hands.launch.py', 'namespace:=lc',
                      'lifecycle:=true'], tmp_path / 'hands.log', env)
    replay = Terminal([ros2, 'run', 'hand_pose_ros', 'replay', '--ros-args', '-r',
                       '__ns:=/lc', '-p', f'source:={source}', '-p', 'rate_hz:=30.0'],
                      tmp_path / 'replay.log', env)
    listener = Listener('lc')
    node = Managed(listener, '/lc/hand_pose_node', hands, env, tmp_path)
    try:
        check = node.cli_get('unconfigured')
        _wait_frames(listener, FRAMES, 'while unconfigured')
        check()
        node.cli_set('configure', exe=True)  # the `ros2` executable itself, once
        check = node.cli_get('inactive')
        _wait_frames(listener, FRAMES, 'while inactive')
        assert listener.count() == 0, f'HandArrays before activate\n{hands.tail()}'
        check()

        for round_ in ('first', 'second'):
            # The first round checks the states with `ros2 lifecycle get` too (seconds each).
            get = node.cli_get if round_ == 'first' else node.expect
            node.set('activate')
            check = get('active')
            before = listener.count()
            listener.wait_for(lambda b=before: len(listener.hands) >= b + 5, START_TIMEOUT_S,
                              f'HandArrays after the {round_} activate')
            check()
            node.set('deactivate')
            check = get('inactive')
            _wait_frames(listener, FRAMES, 'after deactivate')  # what was in flight arrives
            after = listener.count()
            _wait_frames(listener, FRAMES, 'while deactivated')
            assert listener.count() == after, (
                f'{listener.count() - after} HandArrays while inactive\n{hands.tail()}')
            check()

        node.set('shutdown')
        node.cli_get('finalized')()
        assert_clean_stop(hands, hands.stop(signal.SIGINT))
        assert 'configured (runtime' in hands.text(), hands.tail()
        replay.stop(signal.SIGINT)
    finally:
        node.close()
        listener.close()
        for term in (hands, replay):
            if term.proc.poll() is None:
                term.kill()


def test_bad_parameter_fails_configure_and_ctrl_c_when_inactive(tmp_path):
    """A duplicate camera is refused at configure (still unconfigured, the reason logged);
    fixed while unconfigured, configure loads the models, and Ctrl-C there ends it cleanly."""
    with _managed_node(tmp_path, 'lcx', "cameras:=['a', 'a']") as (term, node):
        node.expect('unconfigured')
        node.cli_set('configure', ok=False)
        node.cli_get('unconfigured')()
        assert 'configure failed, still unconfigured' in term.text(), term.tail()
        assert 'lists a namespace twice' in term.text(), term.tail()
        node.set_strings('cameras', ['a', 'b'])
        node.set('configure')
        node.expect('inactive')
        assert_clean_stop(term, term.stop(signal.SIGINT))


@pytest.mark.parametrize('stop_in', ['unconfigured', 'active'])
def test_ctrl_c_in_any_state(tmp_path, stop_in):
    """Ctrl-C exits 0 without a traceback where the node holds nothing, and where it holds
    everything (models, subscriptions, publishers, the worker); inactive is the test above."""
    with _managed_node(tmp_path, 'lcs') as (term, node):
        if stop_in == 'active':
            node.set('configure')
            node.set('activate')
        node.expect(stop_in)
        assert_clean_stop(term, term.stop(signal.SIGINT))
