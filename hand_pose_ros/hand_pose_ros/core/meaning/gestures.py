"""
Per-hand gesture classes, user-registered gesture rules and temporal debouncing.

Gestures are rules over `HandFeatures` (core/meaning/hand_signals.py), which come from the metric
hand-centric keypoints: finger curl is a joint-angle sum and pinch a distance relative to
palm size, so the class does not change with image rotation, hand distance or hand size.

Each rule returns a fuzzy score in [0, 1]: a condition such as "index extended" is a linear
ramp of one feature, and a rule is the minimum (fuzzy AND) of its conditions, so the score
says how clearly the weakest condition holds. The frame's class is the rule with the highest
(priority, score) among those scoring at least `min_score`, else `none`.

Direction: pointing_up, thumb_up and thumb_down are judged against an `up` vector in the
hand-centric frame, by default image up (-y), as MediaPipe's canned classes are; it is
gravity-up only for an upright, level camera. Pass another `up` (e.g. gravity from an IMU,
expressed in the camera optical frame) to GestureRecognizer / classify to change that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
import importlib
import logging
import math

from hand_pose_ros.core.anatomy import INDEX, MIDDLE, PINKY, RING, THUMB
from hand_pose_ros.core.meaning.hand_signals import hand_signals, HandFeatures
from hand_pose_ros.core.results import GestureChange, GestureResult, HandResult
import numpy as np

_LOG = logging.getLogger(__name__)

# Class names, equal to hand_pose_msgs/Hand GESTURE_*.
GESTURE_NONE = 'none'
GESTURE_CLOSED_FIST = 'closed_fist'
GESTURE_OPEN_PALM = 'open_palm'
GESTURE_POINTING_UP = 'pointing_up'
GESTURE_THUMB_DOWN = 'thumb_down'
GESTURE_THUMB_UP = 'thumb_up'
GESTURE_VICTORY = 'victory'
GESTURE_I_LOVE_YOU = 'i_love_you'
GESTURE_PINCH = 'pinch'
BUILTIN_GESTURES: tuple[str, ...] = (
    GESTURE_NONE, GESTURE_CLOSED_FIST, GESTURE_OPEN_PALM, GESTURE_POINTING_UP,
    GESTURE_THUMB_DOWN, GESTURE_THUMB_UP, GESTURE_VICTORY, GESTURE_I_LOVE_YOU, GESTURE_PINCH)

DEFAULT_MIN_SCORE = 0.5
BUILTIN_PRIORITY = 0
USER_PRIORITY = 1

# Ramp ends (feature value where a condition is 0 and where it is 1). Calibrated on the
# kinematic test hand and on MediaPipe world landmarks of the shared photos: a flat hand's
# fingers curl < 0.4, a cylinder grasp's 0.6-0.75, a tight fist's 0.9-1.
EXTENDED_CURL = (0.55, 0.35)  # finger curl: 0 at 0.55, 1 at 0.35
CURLED_CURL = (0.45, 0.6)
THUMB_STRAIGHT_CURL = (0.5, 0.3)
# Thumb tip to index PIP / palm size: ~0.3 when the thumb lies on the fist, >0.45 when it
# sticks out of it (thumbs up).
THUMB_OUT_RATIO = (0.35, 0.5)
DIRECTION_DEG = (60.0, 30.0)  # angle to up (or down): 0 at 60 deg, 1 at 30 deg
# Thumb-index tip distance / palm size (~8.5 cm): 1 below 0.25 (~2 cm), 0 above 0.45.
PINCH_RATIO = (0.45, 0.25)
# (thumb tip to index DIP - thumb tip to index tip) / palm size: about +0.05 when the pads
# of thumb and index tip touch, about -0.2 when the thumb rests on the index's middle
# phalanx as in a fist; MediaPipe's landmarks of real pinches reach -0.1.
PINCH_TIP_CONTACT = (-0.2, -0.1)

GestureRule = Callable[[HandFeatures], 'float | None']


def ramp(value: float, zero_at: float, one_at: float) -> float:
    """Linear membership: 0 at `zero_at`, 1 at `one_at`, clipped (either order)."""
    # min/max rather than np.clip: identical on floats and NaN, ~20x cheaper on a scalar.
    return float(min(max((value - zero_at) / (one_at - zero_at), 0.0), 1.0))


def extended(f: HandFeatures, finger: int) -> float:
    """How clearly a finger is straight (thumb: straight and out of the fist)."""
    if finger == THUMB:
        return thumb_extended(f)
    return ramp(f.finger_curl[finger], *EXTENDED_CURL)


def curled(f: HandFeatures, finger: int) -> float:
    """How clearly a finger is curled into the palm."""
    return ramp(f.finger_curl[finger], *CURLED_CURL)


def thumb_straight(f: HandFeatures) -> float:
    return ramp(f.finger_curl[THUMB], *THUMB_STRAIGHT_CURL)


def thumb_extended(f: HandFeatures) -> float:
    """Thumb straight and away from the other fingers (not lying on a fist or the index)."""
    return min(thumb_straight(f), ramp(f.thumb_out_ratio, *THUMB_OUT_RATIO))


def points_up(f: HandFeatures, finger: int) -> float:
    return ramp(f.angle_to_up(finger), *DIRECTION_DEG)


def points_down(f: HandFeatures, finger: int) -> float:
    return ramp(180.0 - f.angle_to_up(finger), *DIRECTION_DEG)


def pinching(f: HandFeatures) -> float:
    """Thumb tip meets index tip (and not the index's middle phalanx, as in a fist)."""
    contact = f.thumb_tip_to_index_dip_ratio - f.pinch_ratio
    return min(ramp(f.pinch_ratio, *PINCH_RATIO), ramp(contact, *PINCH_TIP_CONTACT))


def _four_curled(f: HandFeatures) -> float:
    return min(curled(f, i) for i in (INDEX, MIDDLE, RING, PINKY))


def _closed_fist(f: HandFeatures) -> float:
    return min(_four_curled(f), 1.0 - thumb_extended(f), 1.0 - pinching(f))


def _open_palm(f: HandFeatures) -> float:
    return min(thumb_straight(f), *(extended(f, i) for i in (INDEX, MIDDLE, RING, PINKY)))


def _pointing_up(f: HandFeatures) -> float:
    return min(extended(f, INDEX), points_up(f, INDEX),
               curled(f, MIDDLE), curled(f, RING), curled(f, PINKY))


def _thumb_up(f: HandFeatures) -> float:
    return min(_four_curled(f), thumb_extended(f), points_up(f, THUMB))


def _thumb_down(f: HandFeatures) -> float:
    return min(_four_curled(f), thumb_extended(f), points_down(f, THUMB))


def _victory(f: HandFeatures) -> float:
    return min(extended(f, INDEX), extended(f, MIDDLE), curled(f, RING), curled(f, PINKY))


def _i_love_you(f: HandFeatures) -> float:
    return min(thumb_extended(f), extended(f, INDEX), extended(f, PINKY),
               curled(f, MIDDLE), curled(f, RING))


@dataclass(frozen=True)
class RegisteredGesture:
    name: str
    rule: GestureRule
    priority: int


class GestureRegistry:
    """Named gesture rules. The module-level default registry holds the built-in classes."""

    def __init__(self) -> None:
        self._rules: dict[str, RegisteredGesture] = {}

    def register(self, name: str, rule: GestureRule, priority: int = USER_PRIORITY,
                 replace: bool = False) -> None:
        if not name or name == GESTURE_NONE:
            raise ValueError(f'invalid gesture name {name!r}')
        if name in self._rules and not replace:
            raise ValueError(f'gesture {name!r} is already registered (pass replace=True)')
        self._rules[name] = RegisteredGesture(name, rule, priority)

    def unregister(self, name: str) -> None:
        self._rules.pop(name, None)

    @property
    def names(self) -> list[str]:
        return list(self._rules)

    def scores(self, features: HandFeatures) -> dict[str, float]:
        """Every rule's score for one hand (a rule returning None or NaN scores 0)."""
        out = {}
        for g in self._rules.values():
            value = g.rule(features)
            out[g.name] = 0.0 if value is None or not math.isfinite(value) else float(
                min(max(value, 0.0), 1.0))
        return out

    def best(self, scores: dict[str, float],
             min_score: float = DEFAULT_MIN_SCORE) -> tuple[str, float]:
        """Highest (priority, score) rule scoring >= min_score; else none, 1 - best score."""
        passing = [(self._rules[n].priority, s, n) for n, s in scores.items() if s >= min_score]
        if passing:
            _, score, name = max(passing)
            return name, score
        return GESTURE_NONE, 1.0 - max(scores.values(), default=0.0)


def _builtin_registry() -> GestureRegistry:
    registry = GestureRegistry()
    for name, rule in ((GESTURE_CLOSED_FIST, _closed_fist), (GESTURE_OPEN_PALM, _open_palm),
                       (GESTURE_POINTING_UP, _pointing_up), (GESTURE_THUMB_DOWN, _thumb_down),
                       (GESTURE_THUMB_UP, _thumb_up), (GESTURE_VICTORY, _victory),
                       (GESTURE_I_LOVE_YOU, _i_love_you), (GESTURE_PINCH, pinching)):
        registry.register(name, rule, BUILTIN_PRIORITY)
    return registry


DEFAULT_REGISTRY = _builtin_registry()


def register_gesture(name: str, rule: GestureRule, priority: int = USER_PRIORITY,
                     replace: bool = False) -> None:
    """
    Add a gesture to the default registry used by every recognizer and `classify`.

    `rule(features)` returns a score in [0, 1] (or None when it does not apply); build it
    from `extended`, `curled`, `thumb_extended`, `points_up`, `pinching` and `ramp`, or any
    function of `features.world` (21, 3 metres). When several rules reach the min score, the
    higher priority wins, then the higher score; user rules default to priority 1, above the
    built-ins (0). `replace=True` redefines an existing name, built-ins included.
    """
    DEFAULT_REGISTRY.register(name, rule, priority, replace)


def unregister_gesture(name: str) -> None:
    DEFAULT_REGISTRY.unregister(name)


def load_gesture_modules(modules: Iterable[str]) -> None:
    """Import modules that call register_gesture (e.g. from a node parameter)."""
    for module in modules:
        if module:
            importlib.import_module(module)
            _LOG.info('loaded gesture module %s', module)


def classify(world: np.ndarray, handedness: str = 'right', up: np.ndarray | None = None,
             min_score: float = DEFAULT_MIN_SCORE,
             registry: GestureRegistry | None = None) -> tuple[str, float]:
    """One frame's gesture class and score from (21, 3) metric hand-centric keypoints."""
    registry = registry or DEFAULT_REGISTRY
    return registry.best(registry.scores(hand_signals(world, handedness, up)), min_score)


@dataclass
class _TrackState:
    reported: str = GESTURE_NONE
    candidate: str = GESTURE_NONE
    count: int = 0


class GestureRecognizer:
    """
    Fills `HandResult.gesture` per frame; in tracking mode debounces per track id.

    A new class is reported only after it was the raw class for `hold_frames` consecutive
    frames of that track, so one-frame flicker never reaches the robot. A new track starts
    at `none`. Track ids missing from a frame are forgotten (the tracker never reuses ids).
    """

    def __init__(self, hold_frames: int = 3, min_score: float = DEFAULT_MIN_SCORE,
                 up: Sequence[float] | None = None,
                 registry: GestureRegistry | None = None) -> None:
        if hold_frames < 1:
            raise ValueError('hold_frames must be >= 1')
        self.hold_frames = hold_frames
        self.min_score = min_score
        self.up = None if up is None else np.asarray(up, dtype=np.float64)
        self.registry = registry or DEFAULT_REGISTRY
        self._tracks: dict[int, _TrackState] = {}

    def reset(self) -> None:
        self._tracks.clear()

    def update(self, hands: list[HandResult], tracking: bool) -> list[GestureChange]:
        """Set `hand.gesture` on every hand; return the debounced changes of this frame."""
        changes: list[GestureChange] = []
        if not tracking:
            self._tracks.clear()
        else:
            live = {h.id for h in hands}
            for gone in [i for i in self._tracks if i not in live]:
                del self._tracks[gone]
        for hand in hands:
            features = hand_signals(hand.world, hand.handedness, self.up)
            scores = self.registry.scores(features)
            raw_name, raw_score = self.registry.best(scores, self.min_score)
            name = raw_name
            if tracking:
                name, change = self._debounce(hand, raw_name, scores)
                if change is not None:
                    changes.append(change)
            score = raw_score if name == raw_name else self._score_of(name, scores)
            hand.gesture = GestureResult(
                name=name, score=score, raw_name=raw_name, raw_score=raw_score,
                pinch_distance=features.pinch_distance,
                pinch_strength=features.pinch_strength,
                grip_aperture=features.grip_aperture,
                finger_curl=features.finger_curl,
                palm_normal=features.palm_normal)
        return changes

    @staticmethod
    def _score_of(name: str, scores: dict[str, float]) -> float:
        """Return this frame's score of a (held) class: its rule's score, or 1 - best for none."""
        if name == GESTURE_NONE:
            return 1.0 - max(scores.values(), default=0.0)
        return scores.get(name, 0.0)

    def _debounce(self, hand: HandResult, raw: str,
                  scores: dict[str, float]) -> tuple[str, GestureChange | None]:
        state = self._tracks.setdefault(hand.id, _TrackState())
        if raw == state.reported:
            state.candidate, state.count = raw, 0
            return state.reported, None
        if raw == state.candidate:
            state.count += 1
        else:
            state.candidate, state.count = raw, 1
        if state.count < self.hold_frames:
            return state.reported, None
        change = GestureChange(hand.id, hand.handedness, raw, state.reported,
                               self._score_of(raw, scores))
        state.reported, state.count = raw, 0
        return raw, change
