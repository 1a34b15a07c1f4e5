"""multiview.launch.py driven as a user drives it: `ros2 launch` on the real four-camera video.

Four replays, calibration_tf and hand_pose_node with fusion on, started by `ros2 launch` in
its own process group (test_ros_tools_e2e's Terminal); a listener in this process checks
/fused/hands (frame world, stamps of replayed frame indices, triangulated hands) and looks
the fused wrists up in tf2 at those stamps; Ctrl-C then stops everything cleanly.
"""

from __future__ import annotations

import signal

from conftest import shared_path
from hand_pose_msgs.msg import Hand, HandArray
from hand_pose_ros.ros import msg_in
import numpy as np
from test_ros_tools_e2e import _env, _ros2, assert_clean_stop, Listener, START_TIMEOUT_S, Terminal

RATE_HZ = 1.0  # four full-HD cameras cost the node about a second per set on 2 CPU cores
TRIANGULATED_SETS = 3
# The measured run's detection settings (tools/eval_multiview.DETECTION): the hands are
# 50-120 px in 1920-px frames.
CONFIG = """/**:
  ros__parameters:
    detection_tiles: 1
    body_rois: true
    body_every_n_frames: 1
    diagnostics_period_s: 0.2
"""


def _triangulated(msg: HandArray) -> list[Hand]:
    return [h for h in msg.hands
            if h.camera_method == Hand.METHOD_TRIANGULATED and len(h.cameras) >= 2]


def test_multiview_launch_fuses_in_world_and_stops_cleanly(tmp_path):
    from rclpy.duration import Duration
    from rclpy.time import Time
    source = shared_path('multiview', 'pose2sim_single')
    config = tmp_path / 'hands.yaml'
    config.write_text(CONFIG)
    term = Terminal([_ros2(), 'launch', 'hand_pose_ros', 'multiview.launch.py',
                     f'source:={source}', f'rate_hz:={RATE_HZ}', f'config:={config}'],
                    tmp_path / 'launch.log', _env(tmp_path))
    listener = Listener('fused')  # /fused/hands
    try:
        try:
            listener.wait_for(
                lambda: sum(1 for m in listener.hands if _triangulated(m)) >= TRIANGULATED_SETS,
                2 * START_TIMEOUT_S, f'{TRIANGULATED_SETS} fused sets with a triangulated hand')
        except AssertionError as exc:
            raise AssertionError(f'{exc}\n{term.tail()}') from exc
        with listener.lock:
            arrays = list(listener.hands)
        assert all(m.header.frame_id == 'world' for m in arrays)
        assert all(m.width == 0 and m.height == 0 for m in arrays)
        stamps = [msg_in.stamp_to_ns(m.header.stamp) for m in arrays]
        assert stamps == sorted(set(stamps)), 'one fused HandArray per set, in stamp order'
        # Every replay stamps frame i as start + i / rate_hz: a fused set carries one of
        # those stamps (the frames' own), never a time of its own making.
        period_ns = round(1e9 / RATE_HZ)
        assert all((s - stamps[0]) % period_ns == 0 for s in stamps), stamps
        looked_up = 0
        for msg in arrays:
            sides = [h.handedness for h in msg.hands]
            for hand in _triangulated(msg):
                assert set(hand.cameras) <= {'cam01', 'cam02', 'cam03', 'cam04'}
                if sides.count(hand.handedness) > 1:
                    continue
                tf = listener.tf_buffer.lookup_transform(
                    'world', f'fused_{hand.handedness}_wrist', Time.from_msg(msg.header.stamp),
                    Duration(seconds=2.0))
                tr, w = tf.transform.translation, hand.wrist_pose.position
                np.testing.assert_allclose([tr.x, tr.y, tr.z], [w.x, w.y, w.z], atol=1e-6)
                looked_up += 1
        assert looked_up >= 1, 'no triangulated wrist looked up in tf2'
        listener.wait_for(lambda: any(int(d.get('fused_sets', 0)) > 0 for d in listener.diag),
                          START_TIMEOUT_S, 'fused_sets in /diagnostics')
        assert_clean_stop(term, term.stop(signal.SIGINT))
    finally:
        listener.close()
        if term.proc.poll() is None:
            term.kill()
