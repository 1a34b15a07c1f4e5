"""
`make demo`: replay a camera, run hand_pose_node on it, watch it live, keep a record.

Starts two processes, exactly as a robot would run them (`replay` as the camera and
`hand_pose_node`), on a private ROS_DOMAIN_ID, and listens like any user would: HandArray
on `hands`, the annotated image on `hands/image` and `/diagnostics`. Prints one line per
second (hands, track ids, handedness, fps, latency p50/p95, drops) and writes
out/demo.mp4 (annotated video) and out/demo_contact_sheet.png (also copied to
docs/demo_contact_sheet.png for the README).

  python -m hand_pose_ros.tools.demo                        # ../shared/data/motion
  python -m hand_pose_ros.tools.demo --source video.mp4     # a video file
  python -m hand_pose_ros.tools.demo --source camera:0      # a webcam
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import shutil
import subprocess
import sys
import threading
import time

import cv2
from hand_pose_ros.ros import transport
from hand_pose_ros.tools.shared_data import shared_data_dir
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_SOURCE = shared_data_dir('motion')
SHEET_FRAMES = 12
SAMPLE_LIMIT = 4 * SHEET_FRAMES  # frames kept in memory for the contact sheet
PROFILE_XML = REPO_ROOT / 'hand_pose_ros' / 'config' / transport.PROFILE_FILE


def _args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.strip().split('\n')[0])
    ap.add_argument('--source', default=os.environ.get('DEMO_SOURCE', str(DEFAULT_SOURCE)),
                    help='folder of images, video file or camera:N (default: shared motion)')
    ap.add_argument('--rate', type=float, default=15.0, help='replay rate, Hz')
    ap.add_argument('--seconds', type=float, default=0.0,
                    help='how long to run (default: one pass over a folder/video, 20 s webcam)')
    ap.add_argument('--model', default='full', choices=('full', 'lite'))
    ap.add_argument('--runtime', default='auto')
    ap.add_argument('--out', default=str(REPO_ROOT / 'out'))
    ap.add_argument('--sheet-copy', default='',
                    help='also write the contact sheet here (the README shows '
                    "docs/demo_contact_sheet.png); '' = no copy")
    return ap.parse_args(argv)


class FrameRecorder:
    """
    Writes annotated frames to a video as they arrive and keeps a sample for the contact sheet.

    The sample is evenly spaced (at most SAMPLE_LIMIT frames: every stride-th, the stride
    doubling when the sample is full), so memory stays bounded however long the demo runs.
    """

    def __init__(self, video: Path, rate: float):
        self.video, self.rate = video, rate
        self.writer = None
        self.count = 0
        self.stride = 1
        self.sample: list[np.ndarray] = []

    def add(self, rgb: np.ndarray) -> None:
        if self.writer is None:
            self.video.parent.mkdir(parents=True, exist_ok=True)
            h, w = rgb.shape[:2]
            self.writer = cv2.VideoWriter(
                str(self.video), cv2.VideoWriter_fourcc(*'mp4v'), self.rate, (w, h))
            self.size = (w, h)
        if (rgb.shape[1], rgb.shape[0]) != self.size:
            rgb = cv2.resize(rgb, self.size, interpolation=cv2.INTER_AREA)
        self.writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        if self.count % self.stride == 0:
            self.sample.append(rgb)
            if len(self.sample) >= SAMPLE_LIMIT:
                self.sample = self.sample[::2]
                self.stride *= 2
        self.count += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None

    def sheet_frames(self) -> list[np.ndarray]:
        picks = np.linspace(0, len(self.sample) - 1, min(SHEET_FRAMES, len(self.sample)))
        return [self.sample[i] for i in picks.round().astype(int)]


class Monitor:
    """Collects the node's outputs and prints the live line."""

    def __init__(self, node, recorder: FrameRecorder):
        from diagnostic_msgs.msg import DiagnosticArray
        from hand_pose_msgs.msg import HandArray
        from sensor_msgs.msg import Image
        self.lock = threading.Lock()
        self.arrays: list = []
        self.latency_ms: list[float] = []
        self.recorder = recorder
        self.diag: dict[str, str] = {}
        self.node = node
        node.create_subscription(HandArray, 'hands', self.on_hands, 50)
        node.create_subscription(Image, 'hands/image', self.on_image, 50)
        node.create_subscription(DiagnosticArray, '/diagnostics', self.on_diag, 10)

    def on_hands(self, msg) -> None:
        from hand_pose_ros.ros.msg_in import stamp_to_ns
        now = self.node.get_clock().now().nanoseconds
        with self.lock:
            self.arrays.append(msg)
            self.latency_ms.append((now - stamp_to_ns(msg.header.stamp)) * 1e-6)

    def on_image(self, msg) -> None:
        from hand_pose_ros.ros.msg_in import image_to_rgb
        rgb = image_to_rgb(msg)
        with self.lock:
            self.recorder.add(rgb)

    def on_diag(self, msg) -> None:
        from hand_pose_ros.ros.diagnostics import diagnostic_values
        with self.lock:
            for st in msg.status:
                if 'hand_pose' in st.name:
                    self.diag = diagnostic_values(st)

    def line(self, since: int, elapsed: float) -> str:
        with self.lock:
            recent = self.arrays[since:]
            lat = np.asarray(self.latency_ms[since:])
            diag = dict(self.diag)
        hands = recent[-1].hands if recent else []
        desc = ', '.join(f'#{h.id} {h.handedness}' + (f' {h.gesture}' if h.gesture not in (
            '', 'none') else '') for h in hands) or 'no hand'
        p50 = f'{np.percentile(lat, 50):.0f}' if lat.size else '-'
        p95 = f'{np.percentile(lat, 95):.0f}' if lat.size else '-'
        return (f'[{elapsed:5.1f}s] hands {len(hands)} ({desc}) | {len(recent) / 1.0:.1f} fps | '
                f'latency p50 {p50} ms p95 {p95} ms | dropped {diag.get("frames_dropped", "-")}'
                f' of {diag.get("frames_received", "-")}')


def _spawn(module: str, ros_args: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, '-m', module, '--ros-args', *ros_args],
                            stdout=open(log, 'w'), stderr=subprocess.STDOUT, env=env)


def _write_outputs(mon: Monitor, out: Path, sheet_copy: str) -> None:
    from hand_pose_ros.ros.annotate import contact_sheet
    with mon.lock:
        rec = mon.recorder
        rec.close()
        frames = rec.sheet_frames() if rec.count else []
    if not frames:
        print('no annotated frames received: nothing written')
        return
    sheet = contact_sheet(frames, columns=4, width=1280)
    sheet_path = out / 'demo_contact_sheet.png'
    cv2.imwrite(str(sheet_path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    print(f'wrote {rec.video} ({rec.count} frames) and {sheet_path}')
    if sheet_copy:
        Path(sheet_copy).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sheet_path, sheet_copy)
        print(f'copied the contact sheet to {sheet_copy}')


def main(argv: list[str] | None = None) -> int:
    a = _args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault('ROS_DOMAIN_ID', str(50 + os.getpid() % 50))
    os.environ['ROS_DOMAIN_ID'] = env['ROS_DOMAIN_ID']
    # The transport the launch files select for large images (see that XML), here too,
    # for both processes and this one (before rclpy.init), unless the user chose one.
    for var, value in transport.profile_env(PROFILE_XML).items():
        env[var] = os.environ[var] = value

    from hand_pose_ros.core.inputs.frames import FrameSource
    if a.seconds <= 0:
        src = FrameSource(a.source, loop=False)
        a.seconds = len(src) / a.rate + 3.0 if len(src) else 20.0
        src.close()

    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    node_proc = _spawn('hand_pose_ros.ros.node', [
        '-p', f'model:={a.model}', '-p', f'runtime:={a.runtime}',
        '-p', 'qos_overrides./image_raw.subscription.reliability:=reliable',
        '-p', 'qos_overrides./camera_info.subscription.reliability:=reliable',
    ], env, out / 'node.log')
    replay_proc = None
    rclpy.init()
    node = rclpy.create_node('hand_pose_demo')
    mon = Monitor(node, FrameRecorder(out / 'demo.mp4', a.rate))
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    spin = threading.Thread(target=ex.spin, daemon=True)
    spin.start()
    try:
        print(f'demo: waiting for hand_pose_node (model {a.model}) ...')
        deadline = time.monotonic() + 60
        while node.count_publishers('hands') == 0:
            if node_proc.poll() is not None or time.monotonic() > deadline:
                print(f'hand_pose_node did not start; see {out / "node.log"}')
                return 1
            time.sleep(0.2)
        time.sleep(1.0)  # let discovery settle so the first frames are not lost
        replay_proc = _spawn('hand_pose_ros.ros.replay', [
            '-p', f'source:={a.source}', '-p', f'rate_hz:={a.rate}', '-p', 'loop:=false',
            '-p', 'frame_id:=camera_optical_frame'], env, out / 'replay.log')
        print(f'demo: replaying {a.source} at {a.rate} Hz for {a.seconds:.0f} s')
        start, since = time.monotonic(), 0
        while time.monotonic() - start < a.seconds:
            time.sleep(1.0)
            print(mon.line(since, time.monotonic() - start), flush=True)
            with mon.lock:
                since = len(mon.arrays)
        with mon.lock:
            lat = np.asarray(mon.latency_ms)
            n = len(mon.arrays)
        if lat.size:
            print(f'summary: {n} HandArrays, latency image stamp -> received p50 '
                  f'{np.percentile(lat, 50):.1f} ms, p95 {np.percentile(lat, 95):.1f} ms')
        ex.shutdown()  # no callback writes to the video any more
        _write_outputs(mon, out, a.sheet_copy)
        return 0
    finally:
        for p in (replay_proc, node_proc):
            if p is not None:
                p.terminate()
        for p in (replay_proc, node_proc):
            if p is not None:
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        ex.shutdown()
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()


if __name__ == '__main__':
    sys.exit(main())
