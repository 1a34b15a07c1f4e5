"""Add your own gestures without editing hand_pose_ros.

A rule maps HandFeatures (core/meaning/hand_signals.py: finger_curl, pinch_ratio, finger_direction,
palm_normal, the raw 21x3 metric keypoints in `world`, ...) to a score in [0, 1]. Build it
from the fuzzy conditions in hand_pose_ros.core.meaning.gestures (extended, curled, thumb_extended,
points_up, points_down, pinching, ramp) combined with min() (= AND), or from anything else
(a small classifier on features.world). Importing this module registers the rules for every
GestureRecognizer in the process, e.g. the HandTracker's.

    python examples/register_gesture.py photo.jpg     # classify the hands in a photo
"""

import sys

from hand_pose_ros.core.meaning import gestures as g
from hand_pose_ros.core.meaning.hand_signals import HandFeatures, INDEX, MIDDLE, PINKY, RING


def call_me(f: HandFeatures) -> float:
    """Shaka: thumb and pinky out, the other three fingers curled."""
    return min(g.thumb_extended(f), g.extended(f, PINKY),
               g.curled(f, INDEX), g.curled(f, MIDDLE), g.curled(f, RING))


def rock_on(f: HandFeatures) -> float:
    """Index and pinky up, middle and ring curled, thumb folded (unlike i_love_you)."""
    return min(1.0 - g.thumb_extended(f), g.extended(f, INDEX), g.extended(f, PINKY),
               g.curled(f, MIDDLE), g.curled(f, RING))


def flat_hand_facing_camera(f: HandFeatures) -> float:
    """open_palm refined with the palm normal (camera looks along +z): a 'stop' sign.
    Priority 2 makes it win over open_palm (0) and the other user rules (1)."""
    return min(g.extended(f, INDEX), g.extended(f, MIDDLE),
               g.extended(f, RING), g.extended(f, PINKY),
               g.ramp(-float(f.palm_normal[2]), 0.5, 0.8))


g.register_gesture('call_me', call_me)
g.register_gesture('rock_on', rock_on)
g.register_gesture('stop', flat_hand_facing_camera, priority=2)


def main() -> None:
    import cv2
    from hand_pose_ros.core.options import RunningMode, TrackerOptions
    from hand_pose_ros.core.tracker import HandTracker

    tracker = HandTracker(TrackerOptions(running_mode=RunningMode.IMAGE))
    try:
        for path in sys.argv[1:]:
            bgr = cv2.imread(path)
            for hand in tracker.process(bgr[:, :, ::-1].copy()).hands:
                print(f'{path}: {hand.handedness} hand {hand.gesture.name} '
                      f'({hand.gesture.score:.2f}), pinch {hand.gesture.pinch_strength:.2f}')
    finally:
        tracker.close()


if __name__ == '__main__':
    main()
