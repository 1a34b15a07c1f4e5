#!/usr/bin/env python3
"""Fusion latency of hand_pose_node over real DDS (a script that prints numbers, not a test).

Why: a fused HandArray can only leave the node once the last camera of its set has been
tracked, so what a consumer of fused/hands waits for is the time from that last image to the
fused message, not the per-camera latency. This measures both in the same run.

The first --frames frames of ../shared/data/multiview/pose2sim_single (four calibrated
full-HD cameras; --cameras picks 2-4 of them) are sent as synchronized sets (JPEG
CompressedImage + CameraInfo, one stamp per set); calibration_tf publishes the cameras'
static poses. Per fused set: receive time of fused/hands here minus the publish time of the
set's last image. Per camera (the baseline): receive time of <cam>/hands minus the publish
time of that camera's image. Times are this process's wall clock, taken right after
publish() returns and in the subscription callback.

--rate 0 (default) sends in lock-step: the next set once the previous set's fused
HandArray arrived (the latency of an idle node); --rate R sends a set every 1/R s
(queueing included; sets the node drops have no fused message and are counted).

  .venv/bin/python scripts/fusion_latency_bench.py [--cameras cam01,cam02,cam03,cam04]
      [--sets 30] [--rate 0] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import subprocess
import sys
import tempfile
import threading
import time

import cv2
from hand_pose_ros.ros import transport
import numpy as np

REPO = Path(__file__).resolve().parents[1]
PROFILE_XML = REPO / 'hand_pose_ros' / 'config' / transport.PROFILE_FILE
DATA = REPO.parent / 'shared' / 'data' / 'multiview' / 'pose2sim_single'
START_TIMEOUT_S = 90.0
REPLY_TIMEOUT_S = 30.0


def _encoded(video: Path, count: int) -> list[np.ndarray]:
    """Decode the first frames to RGB once: the timed loop only restamps their messages."""
    cap = cv2.VideoCapture(str(video))
    out = []
    try:
        while len(out) < count:
            ok, bgr = cap.read()
            if not ok:
                raise RuntimeError(f'{video}: cannot decode frame {len(out)}')
            out.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    finally:
        cap.release()
    return out


def _pct(values: list[float]) -> dict:
    if not values:
        return {'n': 0}
    return {'n': len(values), 'p50_ms': round(float(np.percentile(values, 50)), 1),
            'p95_ms': round(float(np.percentile(values, 95)), 1),
            'max_ms': round(float(np.max(values)), 1)}


def run(cams: list[str], sets: int, rate: float, frame_count: int, warmup: int,
        logs: Path, profile: str) -> dict:
    from hand_pose_msgs.msg import HandArray
    from hand_pose_ros.core.fusion.calibration import load_rig, rig_to_toml
    from hand_pose_ros.ros import msg_in, msg_out
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import CameraInfo, CompressedImage
    from std_msgs.msg import Header

    if not DATA.is_dir():
        raise SystemExit(f'{DATA} is missing (../shared/data/multiview/pose2sim_single)')
    rig = load_rig(DATA / 'calibration.yaml')
    calib = logs / 'calibration.toml'
    calib.write_text(rig_to_toml({c: rig[c] for c in cams}))
    images, size = {}, {}
    for c in cams:
        rgb = _encoded(DATA / f'{c}.mp4', frame_count)
        images[c] = [msg_out.rgb_to_compressed(f, Header(frame_id=f'{c}_optical_frame'),
                                               quality=95) for f in rgb]
        # The videos are 1920x1080; the calibration says 1088 rows (encoder padding).
        size[c] = (rgb[0].shape[1], rgb[0].shape[0])
    reliable = ''.join(f'      /{c}/{t}:\n        subscription:\n          reliability: reliable\n'
                       for c in cams for t in ('image_raw/compressed', 'camera_info'))
    params = logs / 'node.yaml'
    params.write_text(
        '/**:\n  ros__parameters:\n'
        f'    cameras: [{", ".join(cams)}]\n    compressed: true\n'
        '    fusion_frame: world\n    publish_annotated_image: false\n'
        # tools/eval_multiview.DETECTION: the hands are 50-120 px in 1920-px frames.
        '    detection_tiles: 1\n    body_rois: true\n    body_every_n_frames: 1\n'
        '    qos_overrides:\n' + reliable)
    domain = transport.private_domain_id(9)
    if profile == 'large_images':  # what the launch files select for full-HD images
        os.environ.update(dict.fromkeys(transport.PROFILE_VARS, str(PROFILE_XML)))
    else:
        for var in transport.PROFILE_VARS:
            os.environ.pop(var, None)
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), PYTHONUNBUFFERED='1')
    procs = [
        subprocess.Popen([sys.executable, '-m', 'hand_pose_ros.ros.node', '--ros-args',
                          '--params-file', str(params)], stdout=open(logs / 'node.log', 'w'),
                         stderr=subprocess.STDOUT, env=env),
        subprocess.Popen([sys.executable, '-m', 'hand_pose_ros.ros.calibration_tf',
                          '--ros-args', '-p', f'calibration:={calib}'],
                         stdout=open(logs / 'calibration_tf.log', 'w'),
                         stderr=subprocess.STDOUT, env=env)]
    os.environ['ROS_DOMAIN_ID'] = str(domain)
    rclpy.init()
    node = rclpy.create_node('fusion_latency_bench')
    lock = threading.Lock()
    published: dict[int, dict[str, int]] = {}  # stamp -> camera -> publish wall ns
    fused_rx: dict[int, tuple] = {}  # stamp -> (receive wall ns, hands, cameras used)
    cam_rx: dict[str, dict[int, int]] = {c: {} for c in cams}

    def on_fused(msg: HandArray) -> None:
        now = time.time_ns()
        with lock:
            fused_rx.setdefault(msg_in.stamp_to_ns(msg.header.stamp),
                                (now, len(msg.hands),
                                 len({c for h in msg.hands for c in h.cameras})))

    def on_cam(cam: str):
        def cb(msg: HandArray) -> None:
            now = time.time_ns()
            with lock:
                cam_rx[cam].setdefault(msg_in.stamp_to_ns(msg.header.stamp), now)
        return cb

    node.create_subscription(HandArray, '/fused/hands', on_fused, 50)
    pub_img, pub_info = {}, {}
    for c in cams:
        node.create_subscription(HandArray, f'/{c}/hands', on_cam(c), 50)
        pub_img[c] = node.create_publisher(CompressedImage, f'/{c}/image_raw/compressed', 10)
        pub_info[c] = node.create_publisher(CameraInfo, f'/{c}/camera_info', 10)
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    threading.Thread(target=ex.spin, daemon=True).start()

    def send(k: int) -> int:
        stamp = node.get_clock().now().to_msg()
        stamp_ns = msg_in.stamp_to_ns(stamp)
        times = {}
        for c in cams:
            header = Header(frame_id=f'{c}_optical_frame', stamp=stamp)
            pub_info[c].publish(msg_out.intrinsics_to_camera_info(
                rig[c].intrinsics, size[c][0], size[c][1], header))
        for c in cams:
            msg = images[c][k % frame_count]
            msg.header.stamp = stamp
            pub_img[c].publish(msg)
            times[c] = time.time_ns()
        with lock:
            published[stamp_ns] = times
        return stamp_ns

    def wait(pred, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with lock:
                if pred():
                    return True
            if any(p.poll() is not None for p in procs):
                raise RuntimeError(f'a process exited, logs in {logs}')
            time.sleep(0.005)
        return False

    load_before = os.getloadavg()
    try:
        if not wait(lambda: all(pub_img[c].get_subscription_count() > 0 for c in cams),
                    START_TIMEOUT_S):
            raise RuntimeError(f'the node did not subscribe, logs in {logs}')
        # Warm-up (untimed): until fused sets come back (static TF reached the node, models
        # loaded), then `warmup` more.
        answered, end = 0, time.monotonic() + START_TIMEOUT_S
        k = 0
        while answered < warmup:
            if time.monotonic() > end:
                raise RuntimeError(f'no fused HandArray during warm-up, logs in {logs}')
            s = send(k)
            k += 1
            if wait(lambda s=s: s in fused_rx, 5.0):
                answered += 1
        with lock:
            published.clear()
            fused_rx.clear()
            for c in cams:
                cam_rx[c].clear()
        start = time.monotonic()
        timeouts = 0
        for i in range(sets):
            if rate > 0:
                due = start + i / rate
                while time.monotonic() < due:
                    time.sleep(min(due - time.monotonic(), 0.005))
                send(k + i)
            else:
                s = send(k + i)
                if not wait(lambda s=s: s in fused_rx, REPLY_TIMEOUT_S):
                    timeouts += 1
        wait(lambda: all(s in fused_rx for s in published), REPLY_TIMEOUT_S)
        elapsed = time.monotonic() - start
    finally:
        ex.shutdown()
        node.destroy_node()
        rclpy.shutdown()
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
    load_after = os.getloadavg()
    fused_ms, hands, views, after_cams = [], [], [], []
    per_cam: dict[str, list[float]] = {c: [] for c in cams}
    for stamp, times in published.items():
        if stamp in fused_rx:
            rx, n, seen = fused_rx[stamp]
            fused_ms.append((rx - max(times.values())) * 1e-6)
            hands.append(n)
            views.append(seen)
            if all(stamp in cam_rx[c] for c in cams):
                after_cams.append((rx - max(cam_rx[c][stamp] for c in cams)) * 1e-6)
        for c in cams:
            if stamp in cam_rx[c]:
                per_cam[c].append((cam_rx[c][stamp] - times[c]) * 1e-6)
    text = (logs / 'node.log').read_text()
    return {
        'cameras': cams, 'sets_sent': len(published), 'rate_hz': rate or 'lock-step',
        'lockstep_timeouts': timeouts, 'seconds': round(elapsed, 1),
        'sets_fused': len(fused_ms), 'fused_hands_per_set': round(float(np.mean(hands)), 2)
        if hands else None,
        'fused_last_image_to_fused_hands': _pct(fused_ms),
        # The fusion step's own share: fused/hands after the set's last <cam>/hands.
        'fused_after_last_camera_hands': _pct(after_cams),
        'per_camera_image_to_hands': {c: _pct(v) for c, v in per_cam.items()},
        'per_camera_all': _pct([x for v in per_cam.values() for x in v]),
        'loadavg_1m_before_after': [round(load_before[0], 2), round(load_after[0], 2)],
        'cpu_count': os.cpu_count(), 'profile': profile,
        'fused_views_per_set': round(float(np.mean(views)), 2) if views else None,
        'node_warnings': text.count('[WARN]'), 'exceptions_logged': text.count('Traceback'),
        'logs': str(logs)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--cameras', default='cam01,cam02,cam03,cam04',
                    help='2-4 of cam01..cam04, comma separated')
    ap.add_argument('--sets', type=int, default=30, help='timed sets')
    ap.add_argument('--rate', type=float, default=0.0, help='sets/s; 0: lock-step')
    ap.add_argument('--frames', type=int, default=10,
                    help='distinct frames per camera (sent in turn)')
    ap.add_argument('--warmup', type=int, default=3, help='untimed fused sets first')
    ap.add_argument('--profile', choices=('large_images', 'default'), default='large_images',
                    help="Fast DDS transport: the launch files' large_images profile or "
                    "Fast DDS's built-in transports")
    ap.add_argument('--json', default='')
    a = ap.parse_args()
    cams = [c.strip() for c in a.cameras.split(',') if c.strip()]
    if not 2 <= len(cams) <= 4:
        ap.error('--cameras: 2 to 4 cameras')
    logs = Path(tempfile.mkdtemp(prefix='hand_pose_fusion_latency_'))
    out = run(cams, a.sets, a.rate, a.frames, a.warmup, logs, a.profile)
    print(json.dumps(out, indent=1), flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))
    return 0 if out['exceptions_logged'] == 0 and out['sets_fused'] else 1


if __name__ == '__main__':
    sys.exit(main())
