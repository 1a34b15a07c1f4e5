"""
Command-line flags derived from the settings' definitions (core/settings.py).

A setting `name_with_parts` becomes `--name-with-parts`, with its description, range or
choices and default (per running mode where it has several) in the help. Flags default to
None, meaning "the setting's own default", so a default is never written twice.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any

from hand_pose_ros.core.settings import CLI, Spec


def flag(name: str) -> str:
    return '--' + name.replace('_', '-')


def _bounded(spec: Spec, cast: type) -> Any:
    def parse(text: str) -> Any:
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f'{flag(spec.name)} wants {cast.__name__} values, got {text!r}') from None
        reason = spec.check(value)
        if reason:
            raise argparse.ArgumentTypeError(reason)
        return value
    parse.__name__ = cast.__name__
    return parse


def _help(spec: Spec) -> str:
    if spec.mode_defaults:
        default = ', '.join(f'{m.value} {v}' for m, v in spec.mode_defaults)
    else:
        default = repr(spec.default) if isinstance(spec.default, str) else str(spec.default)
    return f'{spec.description} (default: {default})'.replace('%', '%%')


def add_setting_arguments(parser: argparse.ArgumentParser, specs: Iterable[Spec]) -> None:
    """One flag per setting exposed on the CLI."""
    group = parser.add_argument_group('tracker settings')
    for spec in specs:
        if CLI not in spec.expose:
            continue
        sample = spec.kind_sample
        kwargs: dict[str, Any] = {'default': None, 'help': _help(spec), 'dest': spec.name}
        if isinstance(sample, bool):
            kwargs['action'] = argparse.BooleanOptionalAction
        elif spec.choices:
            kwargs['choices'] = spec.choices
        elif isinstance(sample, int):
            kwargs.update(type=_bounded(spec, int), metavar='N')
        elif isinstance(sample, float):
            kwargs.update(type=_bounded(spec, float), metavar='X')
        else:
            kwargs.update(type=_bounded(spec, str), metavar='TEXT')
        group.add_argument(flag(spec.name), **kwargs)


def given_settings(args: argparse.Namespace, specs: Iterable[Spec]) -> dict[str, Any]:
    """Return the settings given on the command line: {name: value}."""
    return {s.name: getattr(args, s.name) for s in specs
            if CLI in s.expose and getattr(args, s.name, None) is not None}
