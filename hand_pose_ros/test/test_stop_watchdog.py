"""
A stop whose clean-up never returns still ends the process (ros/spin.StopWatchdog).

The node here is real (rclpy, DDS, rclpy's own SIGINT handling in a separate process); only
its destroy_node() is made to hang, standing in for a middleware teardown that does not
return. The process must exit with status 0 soon after the grace period, say so in one
warning, and leave every thread's stack in the ROS log folder for the bug report.
"""

from __future__ import annotations

import os
from pathlib import Path
import signal
import subprocess
import sys
import time

from hand_pose_ros.ros.spin import STOP_GRACE_S
from hand_pose_ros.ros.transport import private_domain_id

STUCK_NODE = """
import time
from rclpy.node import Node
from hand_pose_ros.ros.spin import spin_node


class StuckOnStop(Node):
    def __init__(self):
        super().__init__('stuck_on_stop')
        self.create_timer(0.05, lambda: None)
        print('ready', flush=True)

    def destroy_node(self):
        time.sleep(120)  # further signals are ignored by now: this never returns in time


spin_node(StuckOnStop)
"""
READY_TIMEOUT_S = 60.0
EXIT_TIMEOUT_S = 30.0  # the watchdog acts after STOP_GRACE_S; a hang would run 120 s


def test_a_clean_up_that_hangs_ends_with_status_0_a_warning_and_the_stacks(tmp_path):
    script = tmp_path / 'stuck.py'
    script.write_text(STUCK_NODE)
    log_dir = tmp_path / 'ros_log'
    env = dict(os.environ, ROS_LOG_DIR=str(log_dir), ROS_DOMAIN_ID=str(private_domain_id(7)),
               PYTHONUNBUFFERED='1', RCUTILS_COLORIZED_OUTPUT='0')
    out_path = tmp_path / 'out.log'
    with open(out_path, 'w') as out:
        proc = subprocess.Popen([sys.executable, str(script)], stdout=out,
                                stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL)
        try:
            end = time.monotonic() + READY_TIMEOUT_S
            while 'ready' not in out_path.read_text():
                assert proc.poll() is None, out_path.read_text()
                assert time.monotonic() < end, 'the node did not start'
                time.sleep(0.05)
            proc.send_signal(signal.SIGINT)
            rc = proc.wait(EXIT_TIMEOUT_S)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = out_path.read_text()
    assert rc == 0, text
    assert f'clean-up did not finish within {STOP_GRACE_S:.0f} s of the stop' in text, text
    assert 'Traceback' not in text, text
    dumps = list(Path(log_dir).glob('stuck_on_stop-stop-*.txt'))
    assert len(dumps) == 1, (text, list(Path(log_dir).iterdir()))
    stacks = dumps[0].read_text()
    assert 'destroy_node' in stacks and 'stuck.py' in stacks, stacks
