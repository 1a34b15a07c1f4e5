"""Each setting is defined once: the ROS parameters, the CLI flags and config/hands.yaml are
derived from the options dataclasses, and a live change reaches the running tracker."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from hand_pose_ros.cli import detect
from hand_pose_ros.cli.arguments import flag
from hand_pose_ros.core.options import (
    BASE_SPECS,
    BaseOptions,
    RunningMode,
    tracker_options,
    TRACKER_SPECS,
    TrackerOptions,
)
from hand_pose_ros.core.settings import CLI, ROS, SPEC_KEY
from hand_pose_ros.ros import parameters
import pytest
import yaml

PKG = Path(__file__).resolve().parents[1]
ALL_SPECS = BASE_SPECS + TRACKER_SPECS + parameters.NODE_SPECS


def test_every_field_is_a_defined_setting_with_one_name() -> None:
    for cls in (BaseOptions, TrackerOptions, parameters.NodeOptions):
        for f in dataclasses.fields(cls):
            if f.name == 'base':
                continue
            assert SPEC_KEY in f.metadata, f'{cls.__name__}.{f.name} has no definition'
    names = [s.name for s in ALL_SPECS]
    assert len(names) == len(set(names)), 'two settings share a name'


def test_ros_parameters_are_derived_from_the_definitions() -> None:
    ros = [s for s in ALL_SPECS if ROS in s.expose]
    assert set(parameters.SPECS) == {s.name for s in ros}
    for spec in ros:
        param = parameters.SPECS[spec.name]
        assert param.default == spec.default_for(parameters.NODE_MODE), spec.name
        assert (param.live, param.low, param.high, param.choices, param.pattern) == (
            spec.live, spec.low, spec.high, spec.choices, spec.pattern), spec.name
        assert param.description == spec.description
    # The network selection only loads at start-up; the running mode is the node's own.
    assert not any(parameters.SPECS[s.name].live for s in BASE_SPECS)
    assert 'running_mode' not in parameters.SPECS


def _cli_actions() -> dict[str, argparse.Action]:
    parser = detect.build_parser()
    return {opt: a for a in parser._actions for opt in a.option_strings}


def test_cli_flags_are_derived_from_the_definitions() -> None:
    actions = _cli_actions()
    cli = [s for s in BASE_SPECS + TRACKER_SPECS if CLI in s.expose]
    assert cli, 'no setting is exposed on the CLI'
    for spec in cli:
        action = actions.get(flag(spec.name))
        assert action is not None, f'{flag(spec.name)} missing'
        assert action.dest == spec.name
        assert action.default is None, 'a flag must not restate the default'
        if spec.choices:
            assert tuple(action.choices) == spec.choices
        shown = spec.mode_defaults or spec.default
        assert action.help and str(shown[0][1] if spec.mode_defaults else shown) in action.help
    tracker_flags = {flag(s.name) for s in BASE_SPECS + TRACKER_SPECS}
    exposed = {flag(s.name) for s in cli}
    assert not (tracker_flags - exposed) & set(actions), 'an internal setting has a flag'


def test_cli_values_go_through_the_same_checks() -> None:
    parser = detect.build_parser()
    base = ['--json', '-', 'x.jpg']
    args = parser.parse_args([*base, '--detection-tiles', '1', '--no-smoothing',
                              '--running-mode', 'video', '--model', 'lite'])
    options = tracker_options(detect.given_settings(args, BASE_SPECS + TRACKER_SPECS))
    assert (options.detection_tiles, options.smoothing, options.running_mode,
            options.base.model) == (1, False, RunningMode.VIDEO, 'lite')
    assert options.landmark_refinement == 0  # the video mode's default, not restated
    for bad in (['--detection-tiles', '9'], ['--min-detection-confidence', 'nan'],
                ['--device', 'tpu'], ['--num-threads', '1.5']):
        with pytest.raises(SystemExit):
            parser.parse_args([*base, *bad])


def test_hands_yaml_is_the_rendering_of_the_definitions() -> None:
    text = (PKG / 'config' / 'hands.yaml').read_text()
    assert text == parameters.render_yaml(), (
        'config/hands.yaml is stale: python -m hand_pose_ros.ros.parameters > '
        'config/hands.yaml')
    values = yaml.safe_load(text)['/**']['ros__parameters']
    assert list(values) == [p.name for p in parameters.PARAMS]
    lines = text.splitlines()
    for spec in parameters.PARAMS:
        assert values[spec.name] == spec.default
        at = next(i for i, line in enumerate(lines) if line.startswith(f'    {spec.name}: '))
        comment = []
        while lines[at - 1].startswith('    #'):
            at -= 1
            comment.insert(0, lines[at][6:])
        marker = 'changes live' if spec.live else 'restart needed to change'
        assert marker in ' '.join(comment), spec.name


def _shown(value: object) -> str:
    if isinstance(value, RunningMode):
        value = value.value
    if isinstance(value, bool):
        return f'`{str(value).lower()}`'
    if isinstance(value, float):
        return f'`{value:g}`'
    return "`''`" if value == '' else f'`{value}`'


def test_parameter_docs_are_the_rendering_of_the_definitions() -> None:
    """docs/parameters.md is generated like config/hands.yaml: a changed setting fails here."""
    from hand_pose_ros.ros.calibration_tf import CALIBRATION_TF_SPECS
    from hand_pose_ros.ros.replay import REPLAY_SPECS
    from hand_pose_ros.ros.retarget_node import RETARGET_SPECS
    text = (PKG.parent / 'docs' / 'parameters.md').read_text()
    assert text == parameters.render_markdown(), (
        'docs/parameters.md is stale: PYTHONPATH=hand_pose_ros python -m '
        'hand_pose_ros.ros.parameters --markdown > docs/parameters.md')
    sections = text.split('\n## ')[1:]
    groups = (parameters.NODE_SPECS, BASE_SPECS + TRACKER_SPECS, REPLAY_SPECS, RETARGET_SPECS,
              CALIBRATION_TF_SPECS)
    assert len(sections) == len(groups)
    for section, group in zip(sections, groups):
        rows = [line for line in section.splitlines() if line.startswith('| `')]
        assert [r.split(' | ')[0][3:-1] for r in rows] == [s.name for s in group]
        for spec, row in zip(group, rows):
            assert (' | live | ' if spec.live else ' | restart | ') in row, spec.name
            for mode in RunningMode:  # each running mode's default, where they differ
                assert _shown(spec.default_for(mode)) in row, (spec.name, mode)


def test_mode_defaults_resolve_and_explicit_values_win() -> None:
    image = TrackerOptions(running_mode=RunningMode.IMAGE)
    live = TrackerOptions(running_mode='live_stream')
    assert (image.detection_tiles, image.landmark_refinement, image.smoothing) == (2, 2, False)
    assert (live.detection_tiles, live.landmark_refinement, live.smoothing) == (0, 0, True)
    assert TrackerOptions(running_mode=RunningMode.IMAGE, detection_tiles=0).detection_tiles == 0
    with pytest.raises(ValueError, match='smoothing needs a tracking'):
        TrackerOptions(running_mode=RunningMode.IMAGE, smoothing=True)
    with pytest.raises(ValueError, match='running_mode'):
        TrackerOptions(running_mode='static')


def test_update_options_applies_live_changes_and_refuses_restart_ones() -> None:
    from hand_pose_ros.core.tracker import HandTracker
    tracker = HandTracker(TrackerOptions(base=BaseOptions(model='lite', runtime='litert'),
                                         running_mode=RunningMode.LIVE_STREAM))
    try:
        other = tracker.new_state()
        tracker.update_options(one_euro_beta=3.0, gesture_hold_frames=7, detection_tiles=1)
        assert tracker.options.detection_tiles == 1
        for state in (tracker.state, other):
            assert state.options is tracker.options
            assert state.smoother.params.beta == 3.0
            assert state.gestures.hold_frames == 7
        for name, value, reason in (('model', 'full', 'restart'),
                                    ('max_num_hands', 3, 'restart'),
                                    ('min_detection_confidence', 2.0, 'outside'),
                                    ('no_such_setting', 1, 'not a tracker setting')):
            with pytest.raises(ValueError, match=reason):
                tracker.update_options(**{name: value})
        assert tracker.options.base.model == 'lite'  # nothing applied on a refusal
    finally:
        tracker.close()
