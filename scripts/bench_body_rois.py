"""ms per frame of the body_rois pass (pose detector + pose landmarks + hand_recrop), LiteRT.

Usage: python scripts/bench_body_rois.py [image] [repeats]. Times BodyNetworks' three steps
on the image resized to 640x480 and 1280x720 (what a frame pays when the pass runs).
"""

from __future__ import annotations

import sys
import time

import cv2
from hand_pose_ros.core.detection.body import BodyNetworks
from hand_pose_ros.core.models.runtimes.litert import LiteRtRuntime
import numpy as np


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else (
        '../shared/data/bodies/aic/ff945ae2e729f24eea992814639d59b3bdec8bd8.jpg')
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    runtime = LiteRtRuntime('full', 2)
    net = BodyNetworks(runtime)
    source = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
    for width, height in ((640, 480), (1280, 720)):
        image = cv2.resize(source, (width, height))
        times = {'detect': [], 'landmarks': [], 'recrop': []}
        people = 0
        for _ in range(repeats + 2):
            t0 = time.perf_counter()
            rois = net.detect(image, 2)
            t1 = time.perf_counter()
            poses = [p for p in net.landmarks([image], [(0, r) for r in rois]) if p]
            t2 = time.perf_counter()
            net.hands([image], [(0, p) for p in poses])
            t3 = time.perf_counter()
            for key, value in zip(times, (t1 - t0, t2 - t1, t3 - t2)):
                times[key].append(value * 1e3)
            people = len(poses)
        med = {k: float(np.median(v[2:])) for k, v in times.items()}
        print(f'{width}x{height} people={people} detect {med["detect"]:.1f} ms, landmarks '
              f'{med["landmarks"]:.1f} ms, recrop {med["recrop"]:.1f} ms, total '
              f'{sum(med.values()):.1f} ms')


if __name__ == '__main__':
    main()
