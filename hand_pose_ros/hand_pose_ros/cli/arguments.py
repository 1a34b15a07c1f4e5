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


def _kind(spec: Spec) -> dict[str, Any]:
    """Return the argparse keywords that parse and check a value of the setting's type."""
    sample = spec.kind_sample
    if isinstance(sample, bool):
        return {'action': argparse.BooleanOptionalAction}
    if spec.choices:
        return {'choices': spec.choices}
    if isinstance(sample, int):
        return {'type': _bounded(spec, int), 'metavar': 'N'}
    if isinstance(sample, float):
        return {'type': _bounded(spec, float), 'metavar': 'X'}
    return {'type': _bounded(spec, str), 'metavar': 'TEXT'}


def add_setting_arguments(parser: argparse.ArgumentParser, specs: Iterable[Spec],
                          title: str = 'tracker settings', expose: str = CLI) -> None:
    """
    One flag per setting exposed on `expose` (default the CLI), in a group `title`.

    A tool that runs the node's work offline (process-bag) gives some node parameters
    (expose ROS) as flags too: expose=ROS with those specs.
    """
    group = parser.add_argument_group(title)
    for spec in specs:
        if expose not in spec.expose:
            continue
        group.add_argument(flag(spec.name), default=None, help=_help(spec), dest=spec.name,
                           **_kind(spec))


_SPEC_DEFAULT = object()


def add_setting_flag(parser: Any, spec: Spec, *aliases: str, default: Any = _SPEC_DEFAULT,
                     choices: tuple[str, ...] = (), why: str = '') -> None:
    """
    One tool flag for one setting: its name, check, choices and help come from the setting.

    A tool (bench) fixes what its rows vary and needs concrete values, not "the setting's
    default" (None) as detect does, so the flag defaults to the setting's default; `default`
    is for a tool that deliberately runs otherwise (say why in `why`, shown in the help).
    `aliases` keep a tool's older flag names working; `choices` narrows the setting's
    choices to those the tool can run (a subset, checked here).
    """
    kwargs = _kind(spec)
    if choices:
        if spec.choices and not set(choices) <= set(spec.choices):
            raise ValueError(f'{flag(spec.name)}: {choices} not among {spec.choices}')
        kwargs['choices'] = choices
    value = spec.default_for(None) if default is _SPEC_DEFAULT else default
    shown = repr(value) if isinstance(value, str) else str(value)
    text = spec.description + (f' {why}' if why else '') + f' (default: {shown})'
    parser.add_argument(flag(spec.name), *aliases, dest=spec.name, default=value,
                        help=text.replace('%', '%%'), **kwargs)


def given_settings(args: argparse.Namespace, specs: Iterable[Spec],
                   expose: str = CLI) -> dict[str, Any]:
    """Return the settings given on the command line: {name: value}."""
    return {s.name: getattr(args, s.name) for s in specs
            if expose in s.expose and getattr(args, s.name, None) is not None}
