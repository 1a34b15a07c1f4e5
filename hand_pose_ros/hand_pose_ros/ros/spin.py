"""
The one init/spin/shutdown sequence every executable of the package uses.

Two things rclpy.spin() does not give a node that must keep running in the field:
- an exception in any callback (a subscription, a timer, or rclpy's own parameter services,
  which raise ValueError on a SetParameters request carrying an invalid ParameterValue type)
  escapes spin() and ends the process. Here it is logged (throttled), counted through the
  node's `on_callback_error(exc)` when it has one (diagnostics), and spinning goes on;
- a stop by Ctrl-C (once or twice), SIGTERM or launch's shutdown must end with exit status 0
  and no traceback: the node's own clean-up (worker threads, publishers) runs once, and
  further signals while it runs are ignored rather than raised in the middle of it. The
  signals are this module's, not rclpy's: rclpy's handler shuts the context down from its
  own signal thread at once, under worker threads that may be publishing at that moment
  (suspected cause of a SIGSEGV on Ctrl-C in about one loaded test-suite run in three, in
  the node and the lifecycle node). Here the first signal raises KeyboardInterrupt in the
  main thread (within SPIN_PERIOD_S) and ignores the next ones at once; the clean-up then
  stops the node's threads before the context goes down. faulthandler is on, so a crash
  still leaves every thread's stack in the log;
- a stop must end the process within launch's 5 s SIGTERM escalation even when the clean-up
  or the middleware's teardown does not return, or the main thread is stuck in a C call and
  never sees the signal (a replay that did not stop was seen in CI and once here). A
  watchdog arms at the signal itself (a thread reading Python's signal wakeup fd); if the
  clean-up has not finished STOP_GRACE_S later it writes every thread's stack to the ROS
  log folder, logs one warning naming that file, and exits with status 0: the stop that was
  asked for happened.
"""

from __future__ import annotations

from collections.abc import Callable
import faulthandler
import os
from pathlib import Path
import signal
import socket
import sys
import threading
import time
import traceback

from hand_pose_ros.ros.diagnostics import LogDecision, LogThrottle
import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

SPIN_PERIOD_S = 0.1  # how soon the main thread sees a stop signal
STOP_GRACE_S = 3.0  # clean-up takes < 1 s on a loaded 2-core machine; launch escalates at 5 s


def report_callback_error(node: Node, exc: BaseException, count: int,
                          decision: LogDecision | None) -> None:
    """
    Log a callback exception as one line, throttled like rejected input (LogThrottle).

    A malformed request from another process is not this node's fault, and a traceback reads
    like a crash; the first one's traceback goes to the debug log (`--log-level debug`) for a
    real bug.
    """
    if decision is None:
        return
    recent = '' if decision.first else (
        f', {decision.count} in the last {decision.elapsed_s:.0f} s')
    node.get_logger().error(
        f'a callback raised {type(exc).__name__}: {exc}; the node goes on '
        f'({count} callback error(s) so far{recent})')
    if decision.first:
        node.get_logger().debug(''.join(traceback.format_exception(exc)).rstrip())


def spin_until_shutdown(node: Node, executor: SingleThreadedExecutor) -> None:
    """spin() that survives exceptions raised by callbacks (see the module docstring)."""
    errors = 0
    throttle = LogThrottle()
    on_error = getattr(node, 'on_callback_error', None)
    while node.context.ok():
        try:
            executor.spin_once(timeout_sec=SPIN_PERIOD_S)
        except (KeyboardInterrupt, ExternalShutdownException):
            raise
        except Exception as exc:  # noqa: BLE001 - one bad request must not end the node
            if not node.context.ok():
                return  # an error from a callback cut short by the shutdown
            errors += 1
            if on_error is not None:
                on_error(exc)
            report_callback_error(node, exc, errors, throttle.note('callback'))


def _ignore_further_signals() -> None:
    """Ignore a second Ctrl-C (or SIGTERM): it must not raise in the middle of clean-up."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            signal.signal(sig, signal.SIG_IGN)
        except (ValueError, OSError):  # not the main thread: nothing to protect
            pass


def _raise_once(signum: int, frame: object) -> None:
    """Ignore the next stop signals, then stop the main thread (the stop signals' handler)."""
    _ignore_further_signals()
    raise KeyboardInterrupt


def _init(args: list[str] | None) -> None:
    """rclpy.init without rclpy's signal handlers, and this module's instead (see above)."""
    try:
        from rclpy.signals import SignalHandlerOptions
    except ImportError:  # an rclpy without the option: its own handlers then
        rclpy.init(args=args)
        return
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _raise_once)


class StopWatchdog:
    """Ends the process when the clean-up after a stop does not finish in time (see above)."""

    def __init__(self, context: rclpy.context.Context, name: str,
                 grace_s: float = STOP_GRACE_S):
        self.context, self.name, self.grace_s = context, name, grace_s
        self.stopping = threading.Event()
        self.finished = threading.Event()
        threading.Thread(target=self._watch, name='stop-watchdog', daemon=True).start()

    def arm_on_signals(self) -> None:
        """
        Arm at the signal itself, from a thread: not when the main thread gets to run Python.

        The stop signals' handler runs in the main thread between bytecodes, never while it
        is stuck in a C call; Python's C-level handler writes the signal number to the wakeup
        fd at once, so this thread arms the watchdog even then. Call from the main thread.
        """
        reader, writer = socket.socketpair()
        writer.setblocking(False)
        signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        self._wakeup = (reader, writer)  # the sockets live as long as the watchdog

        def wait_for_signal() -> None:
            try:
                if reader.recv(1):
                    self.stopping.set()
            except OSError:  # closed at exit
                pass
        threading.Thread(target=wait_for_signal, name='stop-signal', daemon=True).start()

    def _context_ok(self) -> bool:
        try:
            return self.context.ok()
        except Exception:  # noqa: BLE001 - a handle destroyed under us: down
            return False

    def _watch(self) -> None:
        while self._context_ok() and not self.stopping.wait(0.1):
            pass
        if self.finished.wait(self.grace_s):
            return
        where = self._dump_stacks()
        message = (f'clean-up did not finish within {self.grace_s:.0f} s of the stop; exiting '
                   f'without it (thread stacks in {where})')
        try:
            rclpy.logging.get_logger(self.name).warning(message)
        except Exception:  # noqa: BLE001 - logging may be finalised already
            sys.stderr.write(f'[WARN] [{self.name}]: {message}\n')
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)

    def _dump_stacks(self) -> str:
        try:
            folder = Path(rclpy.logging.get_logging_directory())
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f'{self.name}-stop-{os.getpid()}-{int(time.time())}.txt'
            with open(path, 'w') as out:
                faulthandler.dump_traceback(out, all_threads=True)
            return str(path)
        except Exception as exc:  # noqa: BLE001 - the exit must not depend on the dump
            return f'nowhere: {exc}'


def spin_node(make_node: Callable[[], Node], args: list[str] | None = None) -> None:
    """
    Run one node until Ctrl-C, SIGTERM or shutdown; exit status 0 for each of them.

    rclpy.init() with try/finally rather than the context-manager form, which needs Kilted:
    the package supports Humble. A ValueError while making the node (the nodes' way to reject
    parameters) ends the process with exit status 1 and the reason, not a traceback; any
    exception while the context is being shut down (a signal during start-up) is a stop.
    """
    if not faulthandler.is_enabled():
        faulthandler.enable(all_threads=True)
    try:
        _init(args)
        _run(make_node)
    except KeyboardInterrupt:
        pass  # a stop signal outside the spin loop (start-up, clean-up): still a stop


def _run(make_node: Callable[[], Node]) -> None:
    """spin_node's body, once rclpy is up: make, spin, then clean up in order."""
    watchdog = StopWatchdog(rclpy.get_default_context(), Path(sys.argv[0]).name or 'node')
    watchdog.arm_on_signals()
    node = None
    executor = None
    try:
        try:
            node = make_node()
            watchdog.name = node.get_name()
        except ValueError as exc:  # a bad parameter: say which, without a traceback
            if not rclpy.ok():
                return  # stopped while starting: the error is a consequence
            rclpy.logging.get_logger('hand_pose_ros').fatal(str(exc))
            raise SystemExit(1) from None
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        spin_until_shutdown(node, executor)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        if rclpy.ok():
            raise
        # The context was shut down under a call still in progress: a stop, not an error.
    finally:
        _ignore_further_signals()
        watchdog.stopping.set()
        if executor is not None:
            executor.shutdown(timeout_sec=1.0)
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
        rclpy.get_default_context().destroy()  # the middleware's teardown, still watched
        watchdog.finished.set()
