#!/usr/bin/env python3
"""Load benchmark of hand_pose_node over real DDS (a script, not a test).

Phase 1: N cameras (default 4) at 30 Hz, 640x480 rgb8, for 60 s, all into one node process.
Phase 2: one camera at 30 Hz: end-to-end latency, image stamp -> HandArray received here
(another process), full model, tracking mode.
Reports the delivery ratio (images the node received / images published, per camera: what
the transport lost), the input rate actually published, node RSS growth after warm-up,
latency p50/p95, input/processed/dropped/lost rates from /diagnostics and from what arrives
here, and whether the node logged any exception.

--profile picks the Fast DDS transport of both processes: `default` (Fast DDS's built-in
transports), `large_images` (config/fastdds_large_images.xml, what the launch files and the
demo select) or `both` (each in turn, in fresh processes: Fast DDS reads the profile file
once per process).

  .venv/bin/python scripts/load_bench.py [--cameras 4] [--seconds 60] [--single-seconds 30]
      [--profile both]
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
MOTION = REPO.parent / 'shared' / 'data' / 'motion'
WARM_UP_S = 10.0


def _rss_mb(pid: int) -> float:
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024.0
    return float('nan')


def _frames(count: int) -> list[np.ndarray]:
    files = sorted(MOTION.rglob('*.jpg'))[:count]
    out = []
    for f in files:
        rgb = cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB)
        out.append(cv2.resize(rgb, (640, 480)) if rgb.shape[:2] != (480, 640) else rgb)
    return out


def run_phase(cams: list[str], seconds: float, rate: float, frames: list[np.ndarray],
              domain: int, log: Path) -> dict:
    from diagnostic_msgs.msg import DiagnosticArray
    from hand_pose_msgs.msg import HandArray
    from hand_pose_ros.core.results import CameraIntrinsics
    from hand_pose_ros.ros import msg_in, msg_out
    from hand_pose_ros.ros.diagnostics import diagnostic_values
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import Header

    env = dict(os.environ, ROS_DOMAIN_ID=str(domain))
    pfile = log.with_suffix('.yaml')
    pfile.write_text('/**:\n  ros__parameters:\n    cameras: [' + ', '.join(cams) + ']\n')
    proc = subprocess.Popen(
        [sys.executable, '-m', 'hand_pose_ros.ros.node', '--ros-args', '--params-file',
         str(pfile)], stdout=open(log, 'w'), stderr=subprocess.STDOUT, env=env)
    os.environ['ROS_DOMAIN_ID'] = str(domain)
    rclpy.init()
    node = rclpy.create_node('load_bench')
    lock = threading.Lock()
    lat: dict[str, list[tuple[float, float]]] = {c: [] for c in cams}  # (t, latency ms)
    diag: dict[str, dict] = {}

    def on_hands(cam):
        def cb(msg):
            now = node.get_clock().now().nanoseconds
            with lock:
                lat[cam].append((time.monotonic(),
                                 (now - msg_in.stamp_to_ns(msg.header.stamp)) * 1e-6))
        return cb

    def on_diag(msg):
        with lock:
            for st in msg.status:
                for c in cams:
                    if st.name.endswith(f'camera {c}'):
                        diag[c] = diagnostic_values(st)

    pubs, infos = {}, {}
    for c in cams:
        node.create_subscription(HandArray, f'/{c}/hands', on_hands(c), 50)
        # Publishers with the camera drivers' usual sensor_data QoS.
        pubs[c] = node.create_publisher(Image, f'/{c}/image_raw', qos_profile_sensor_data)
        infos[c] = node.create_publisher(CameraInfo, f'/{c}/camera_info', 10)
    node.create_subscription(DiagnosticArray, '/diagnostics', on_diag, 10)
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    threading.Thread(target=ex.spin, daemon=True).start()
    msgs = [msg_out.rgb_to_image(f, Header(frame_id='cam'), 'rgb8') for f in frames]
    intr = CameraIntrinsics(fx=554.0, fy=554.0, cx=320.0, cy=240.0)
    info = msg_out.intrinsics_to_camera_info(intr, 640, 480, Header(frame_id='cam'))
    try:
        t0 = time.monotonic()
        while any(pubs[c].get_subscription_count() == 0 for c in cams):
            if time.monotonic() - t0 > 90 or proc.poll() is not None:
                raise RuntimeError(f'node did not start, see {log}')
            time.sleep(0.2)
        time.sleep(1.0)
        sent = 0
        rss: list[tuple[float, float]] = []
        start = time.monotonic()
        next_t, next_rss = start, start
        while True:
            now = time.monotonic()
            if now - start >= seconds:
                break
            if now >= next_rss:
                rss.append((now - start, _rss_mb(proc.pid)))
                next_rss += 1.0
            if now < next_t:
                time.sleep(min(next_t - now, 0.005))
                continue
            next_t += 1.0 / rate
            k = sent % len(msgs)
            for c in cams:
                stamp = node.get_clock().now().to_msg()
                msg, inf = msgs[k], info
                msg.header.stamp, msg.header.frame_id = stamp, f'{c}_optical_frame'
                inf.header = msg.header
                infos[c].publish(inf)
                pubs[c].publish(msg)
            sent += 1
        elapsed = time.monotonic() - start
        time.sleep(1.5)  # last results and one more /diagnostics
        alive = proc.poll() is None
    finally:
        ex.shutdown()
        node.destroy_node()
        rclpy.shutdown()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    text = log.read_text()
    after = [m for t, m in rss if t >= WARM_UP_S]
    res = {
        'cameras': len(cams), 'seconds': seconds, 'rate_hz': rate,
        'sent_per_camera': sent, 'input_rate_hz_published': round(sent / elapsed, 2),
        'node_alive_at_end': alive,
        'exceptions_logged': text.count('Traceback') + text.count('frame processing failed'),
        'rss_mb_after_warmup': round(after[0], 1) if after else None,
        'rss_mb_end': round(after[-1], 1) if after else None,
        'rss_growth_mb_after_warmup': round(after[-1] - after[0], 1) if after else None,
        'per_camera': {},
    }
    all_lat = []
    for c in cams:
        steady = [ms for t, ms in lat[c] if t - start >= WARM_UP_S]
        all_lat += steady
        d = diag.get(c, {})
        arrived = int(d.get('frames_received', 0))
        res['per_camera'][c] = {
            'delivery_ratio': round(arrived / sent, 3) if sent else None,
            'diag_frames_lost_transport': d.get('frames_lost_transport'),
            'hand_arrays_received': len(lat[c]),
            'received_rate_hz': round(len(lat[c]) / seconds, 2),
            'e2e_latency_p50_ms': round(float(np.percentile(steady, 50)), 1) if steady else None,
            'e2e_latency_p95_ms': round(float(np.percentile(steady, 95)), 1) if steady else None,
            'diag_input_hz': d.get('input_rate_hz'), 'diag_processed_hz': d.get(
                'processed_rate_hz'), 'diag_frames_received': d.get('frames_received'),
            'diag_frames_processed': d.get('frames_processed'),
            'diag_frames_dropped': d.get('frames_dropped'),
            'diag_latency_p50_ms': d.get('latency_p50_ms'),
            'diag_latency_p95_ms': d.get('latency_p95_ms'), 'diag_errors': d.get('errors_total'),
        }
    ratios = [v['delivery_ratio'] for v in res['per_camera'].values()]
    res['delivery_ratio_min'] = min(r or 0.0 for r in ratios) if ratios else None
    if all_lat:
        res['e2e_latency_p50_ms'] = round(float(np.percentile(all_lat, 50)), 1)
        res['e2e_latency_p95_ms'] = round(float(np.percentile(all_lat, 95)), 1)
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--cameras', type=int, default=4)
    ap.add_argument('--seconds', type=float, default=60.0)
    ap.add_argument('--single-seconds', type=float, default=30.0)
    ap.add_argument('--rate', type=float, default=30.0)
    ap.add_argument('--json', default='')
    ap.add_argument('--profile', choices=('default', 'large_images', 'both'), default='both')
    a = ap.parse_args()
    if a.profile == 'both':
        return _each_profile(a)
    frames = _frames(48)
    tmp = Path(tempfile.mkdtemp(prefix='hand_pose_load_'))
    domain = transport.private_domain_id(10)
    out = {'multi': run_phase([f'cam{i}' for i in range(a.cameras)], a.seconds, a.rate,
                              frames, domain, tmp / 'multi.log')}
    print(json.dumps(out['multi'], indent=1), flush=True)
    if a.single_seconds > 0:
        out['single'] = run_phase(['cam0'], a.single_seconds, a.rate, frames,
                                  transport.private_domain_id(12), tmp / 'single.log')
        print(json.dumps(out['single'], indent=1), flush=True)
    out['profile'] = a.profile
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))
    ok = all(r['node_alive_at_end'] and r['exceptions_logged'] == 0
             for r in out.values() if isinstance(r, dict))
    return 0 if ok else 1


def _each_profile(a: argparse.Namespace) -> int:
    """Run the benchmark once per transport profile, each in a fresh process; summarise."""
    summary, rc = {}, 0
    for profile in ('default', 'large_images'):
        env = {k: v for k, v in os.environ.items() if k not in transport.PROFILE_VARS}
        if profile == 'large_images':
            env.update(dict.fromkeys(transport.PROFILE_VARS, str(PROFILE_XML)))
        js = Path(tempfile.mkdtemp(prefix='hand_pose_load_')) / 'out.json'
        print(f'=== profile {profile} ===', flush=True)
        rc |= subprocess.run(
            [sys.executable, __file__, '--profile', profile, '--cameras', str(a.cameras),
             '--seconds', str(a.seconds), '--single-seconds', str(a.single_seconds),
             '--rate', str(a.rate), '--json', str(js)], env=env).returncode
        out = json.loads(js.read_text())
        summary[profile] = {
            phase: {k: out[phase].get(k) for k in (
                'cameras', 'input_rate_hz_published', 'delivery_ratio_min',
                'e2e_latency_p50_ms', 'e2e_latency_p95_ms')}
            for phase in ('multi', 'single') if phase in out}
    print('=== summary ===')
    print(json.dumps(summary, indent=1), flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(summary, indent=1))
    return rc


if __name__ == '__main__':
    sys.exit(main())
