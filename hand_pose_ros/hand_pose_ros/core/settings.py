"""
One definition per setting: the metadata every entry point derives its interface from.

An options dataclass declares each field with `option(...)`: a description, a range or
choices, whether it may change while running, a default per running mode where one default
does not fit all, and the interfaces that expose it. From those fields come the validation
(`Spec.check`, the same rules and messages everywhere), the ROS parameter descriptors
(ros/parameters.py), the CLI flags (cli/arguments.py) and config/hands.yaml, so a setting is
named, documented and bounded in exactly one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
import dataclasses
from dataclasses import dataclass
from enum import Enum
import math
import re
from typing import Any

SPEC_KEY = 'hand_pose_ros.setting'
# Interfaces a setting can be exposed on.
ROS = 'ros'
CLI = 'cli'


class RunningMode(str, Enum):
    """
    How frames relate, as in MediaPipe Tasks.

    IMAGE: independent photos; the palm detector runs on every image and nothing is carried
    over. VIDEO: consecutive frames of one stream, every frame processed (tracking).
    LIVE_STREAM: a live camera where the newest frame wins and frames may be skipped (the
    node); tracking like VIDEO.
    """

    IMAGE = 'image'
    VIDEO = 'video'
    LIVE_STREAM = 'live_stream'

    @property
    def tracking(self) -> bool:
        return self is not RunningMode.IMAGE


@dataclass(frozen=True)
class Spec:
    """
    A setting's definition: name, default, bounds, liveness and where it is exposed.

    default is the value for every running mode not named in mode_defaults. A number needs
    a range (which also rules out NaN and inf); a list default must not be empty (ROS
    cannot infer the type of an empty list).
    """

    name: str
    default: Any
    description: str
    live: bool = True
    low: float | None = None  # inclusive range for numbers
    high: float | None = None
    choices: tuple[str, ...] = ()
    pattern: str | None = None  # a regular expression a string must match in full
    mode_defaults: tuple[tuple[RunningMode, Any], ...] = ()
    expose: tuple[str, ...] = (ROS, CLI)

    def __post_init__(self) -> None:
        sample = self.kind_sample
        number = isinstance(sample, (int, float)) and not isinstance(sample, bool)
        if number and (self.low is None or self.high is None):
            raise ValueError(f'setting {self.name}: a number needs a range')
        if isinstance(self.default, list) and not self.default:
            raise ValueError(f'setting {self.name}: a list default must not be empty')

    @property
    def kind_sample(self) -> Any:
        """Return a value of the setting's type: the default, or a mode default when it is None."""
        if self.default is not None:
            return self.default
        return next(v for _, v in self.mode_defaults)

    def default_for(self, mode: RunningMode | None) -> Any:
        for m, value in self.mode_defaults:
            if m is mode:
                return value
        return self.default

    def constraints(self) -> str:
        parts = []
        if self.low is not None:
            parts.append(f'range [{self.low}, {self.high}]')
        if self.choices:
            parts.append('one of: ' + ', '.join(self.choices))
        if self.mode_defaults:
            parts.append('default by running mode: ' + ', '.join(
                f'{m.value} {_text(v)}' for m, v in self.mode_defaults))
        parts.append('changes live' if self.live else 'restart needed to change')
        return '; '.join(parts)

    def check(self, value: Any) -> str | None:
        """Why value is not acceptable for this setting, or None when it is."""
        name, sample = self.name, self.kind_sample
        if isinstance(sample, bool):
            return None if isinstance(value, bool) else f'{name} must be a bool'
        if isinstance(sample, (int, float)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return f'{name} must be a number'
            if isinstance(sample, int) and not isinstance(value, int):
                return f'{name} must be an integer'
            if not self.low <= value <= self.high:  # False for NaN too
                return f'{name}={value} is outside [{self.low}, {self.high}]'
            return None
        if isinstance(sample, str):
            if not isinstance(value, str):
                return f'{name} must be a string'
            if self.choices and value not in self.choices:
                return f'{name} must be one of {", ".join(self.choices)}, got {value!r}'
            if self.pattern and not re.fullmatch(self.pattern, value):
                return f'{name}={value!r}: {self.description}'
            return None
        if isinstance(sample, list):
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                return f'{name} must be a list of strings'
        return None


def option(default: Any, description: str, *, live: bool = True,
           low: float | None = None, high: float | None = None,
           choices: Iterable[str] = (), pattern: str | None = None,
           mode_defaults: Mapping[RunningMode, Any] | None = None,
           expose: tuple[str, ...] = (ROS, CLI)) -> Any:
    """
    Make a dataclass field carrying its Spec (name and default are filled in from the field).

    With mode_defaults the field's default is None, resolved by `resolve_mode_defaults` in
    the dataclass's __post_init__ so that a constructed options object never holds None.
    """
    meta = {SPEC_KEY: {
        'description': description, 'live': live, 'low': low, 'high': high,
        'choices': tuple(choices), 'pattern': pattern,
        'mode_defaults': tuple((mode_defaults or {}).items()), 'expose': expose}}
    if mode_defaults:
        return dataclasses.field(default=None, metadata=meta)
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def specs(cls: type) -> tuple[Spec, ...]:
    """Return the Specs of an options dataclass's settings, in field order."""
    found = []
    for f in dataclasses.fields(cls):
        meta = f.metadata.get(SPEC_KEY)
        if meta is None:
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        else:
            default = f.default_factory()  # type: ignore[misc]
        found.append(Spec(f.name, default, **meta))
    return tuple(found)


def resolve_mode_defaults(obj: Any, mode: RunningMode) -> None:
    """Replace each None left by `option(mode_defaults=...)` with the mode's default."""
    for spec in specs(type(obj)):
        if spec.mode_defaults and getattr(obj, spec.name) is None:
            object.__setattr__(obj, spec.name, spec.default_for(mode))


def check_all(obj: Any) -> None:
    """Raise ValueError naming the first setting of obj whose value is not acceptable."""
    for spec in specs(type(obj)):
        reason = spec.check(getattr(obj, spec.name))
        if reason:
            raise ValueError(reason)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and math.isfinite(value):
        return f'{value:g}'
    return str(value)
