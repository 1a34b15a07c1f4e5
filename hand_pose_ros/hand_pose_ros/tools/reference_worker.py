"""
Benchmark worker for the official MediaPipe 0.10.21 Python solution (mediapipe.solutions.hands).

Runs inside its own throwaway venv (mediapipe 0.10.21 needs numpy<2), so it imports nothing
from hand_pose_ros and is started by path: `python reference_worker.py FRAMES.npy`. FRAMES.npy
holds the benchmark's decoded RGB frames (N, H, W, 3) uint8, written by the parent, so both
sides time the very same pixels. One JSON command per stdin line, one JSON reply per line:

  {"cmd": "open", "static": bool, "model": "lite"|"full", "max_hands": int}  -> {"ok": true}
  {"cmd": "process", "index": int}  -> {"ms": float, "hands": int}
  {"cmd": "quit"}

Only the process() call is timed; the frame is already RGB and in memory.
"""

from __future__ import annotations

import json
import sys
import time


def main(argv: list[str]) -> int:
    import mediapipe as mp
    import numpy as np

    frames = np.array(np.load(argv[0], mmap_mode='r'))  # into RAM: no page faults in timing
    hands = None
    out = sys.stdout
    for line in sys.stdin:
        msg = json.loads(line)
        cmd = msg['cmd']
        if cmd == 'open':
            if hands is not None:
                hands.close()
            hands = mp.solutions.hands.Hands(
                static_image_mode=msg['static'], max_num_hands=msg['max_hands'],
                model_complexity={'lite': 0, 'full': 1}[msg['model']],
                min_detection_confidence=0.5, min_tracking_confidence=0.5)
            reply = {'ok': True, 'version': mp.__version__}
        elif cmd == 'process':
            frame = frames[msg['index']]
            start = time.perf_counter()
            result = hands.process(frame)
            ms = (time.perf_counter() - start) * 1000.0
            reply = {'ms': ms, 'hands': len(result.multi_hand_landmarks or [])}
        elif cmd == 'quit':
            break
        else:
            reply = {'error': f'unknown command {cmd!r}'}
        out.write(json.dumps(reply) + '\n')
        out.flush()
    if hands is not None:
        hands.close()
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
