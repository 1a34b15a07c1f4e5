"""
The node's parameters: the tracker's settings plus the node's own, each defined once.

The tracker's settings (core/options.py) and the node's (`NodeOptions` below) carry their
definitions as field metadata (core/settings.py); `PARAMS` is derived from them, with the
defaults the node runs with (running mode LIVE_STREAM). It is the single source for
declaring the parameters (with descriptors that `ros2 param describe` shows), for
validating live changes (rejected with a reason), and for the two rendered documents:
config/hands.yaml (`render_yaml`) and docs/parameters.md (`render_markdown`, which also lists
replay's and hand_retarget_node's options and the tracker settings only `detect` or Python
take); a test checks both files against the renderers, so neither can drift. Parameters
that are not live shape subscriptions or load models: changing them at run time is rejected
with a reason that says a restart is needed. (They are not declared read_only: rclpy checks
read_only before any on-set callback and answers "Trying to set a read-only parameter",
which does not tell the user what to do.) rclpy itself enforces each descriptor's type and
range at run time; validate() states the same rules for start-up values, config/hands.yaml
and the choices and patterns descriptors cannot express.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
import math
from pathlib import Path
import sys
import textwrap
from typing import Any

from hand_pose_ros.core.options import BASE_SPECS, TRACKER_SPECS
from hand_pose_ros.core.settings import check_all, CLI, option, ROS, RunningMode, Spec, specs

# The same record for a ROS parameter as for any setting (name, default, range, liveness).
ParamSpec = Spec
NODE_MODE = RunningMode.LIVE_STREAM
_ROS_ONLY = (ROS,)


@dataclass(frozen=True)
class NodeOptions:
    """The node's own settings (topics and outputs); the tracker's are in TrackerOptions."""

    cameras: list = option(
        [''], 'Camera namespaces, one per camera, relative to the node namespace '
        "('' = the node namespace itself). Each gets image, camera_info, optional depth and "
        'its own outputs.', live=False, expose=_ROS_ONLY)
    image_topic: str = option(
        'image_raw', 'Image topic inside each camera namespace.', live=False,
        expose=_ROS_ONLY)
    compressed: bool = option(
        False, 'Subscribe to <image_topic>/compressed (sensor_msgs/CompressedImage, jpeg or '
        'png) instead of the raw image.', live=False, expose=_ROS_ONLY)
    camera_info_topic: str = option(
        'camera_info', 'CameraInfo topic inside each camera namespace; without CameraInfo '
        'there is no camera-frame 3D.', live=False, expose=_ROS_ONLY)
    depth_topic: str = option(
        '', 'Registered depth image topic (16UC1 mm or 32FC1 m) inside each camera '
        "namespace; '' = no depth.", live=False, expose=_ROS_ONLY)
    sync_tolerance_s: float = option(
        0.02, 'Max stamp difference when matching CameraInfo and depth to an image. '
        'CameraInfo falls back to the latest one; depth outside the tolerance is not used.',
        low=0.0, high=1.0, expose=_ROS_ONLY)
    gesture_modules: list = option(
        [''], 'Python modules imported at start-up that register extra gestures '
        "(hand_pose_ros.core.meaning.gestures.register_gesture); '' = none.", live=False,
        expose=_ROS_ONLY)
    publish_tf: bool = option(True, 'Broadcast wrist frames on /tf.', expose=_ROS_ONLY)
    tf_prefix: str = option(
        '', 'Prefix of TF frame names: <prefix>left_wrist; with several cameras '
        '<prefix><camera>_left_wrist.', expose=_ROS_ONLY)
    publish_fingertip_tf: bool = option(
        False, 'Also broadcast fingertip frames.', expose=_ROS_ONLY)
    publish_markers: bool = option(
        True, 'Publish RViz markers on hand_markers.', expose=_ROS_ONLY)
    publish_annotated_image: bool = option(
        True, 'Publish hands/image (only drawn while someone subscribes).', expose=_ROS_ONLY)
    publish_gestures: bool = option(
        True, 'Publish gesture changes on gestures.', expose=_ROS_ONLY)
    max_image_pixels: int = option(
        34_000_000, 'Images (raw, or compressed as their header declares) with more pixels are '
        'rejected before any decoding or conversion (cause image_too_large); the default '
        'admits 8K UHD (7680x4320).', low=1, high=1_073_676_289, expose=_ROS_ONLY)
    diagnostics_period_s: float = option(
        1.0, 'Period of /diagnostics messages.', live=False, low=0.1, high=60.0,
        expose=_ROS_ONLY)
    fusion_frame: str = option(
        '', 'Fuse the cameras into one hand per person in this TF frame (e.g. world or '
        "base_link) and publish it on fused/hands; '' = off. Camera poses come from TF at "
        'each image stamp, intrinsics from CameraInfo (docs/multi-camera.md).', live=False,
        expose=_ROS_ONLY)
    fusion_sync_tolerance_s: float = option(
        0.02, 'Max stamp difference between cameras whose frames are fused as one '
        'synchronized set (approximate sync).', low=0.0, high=1.0, expose=_ROS_ONLY)
    fusion_max_wait_s: float = option(
        0.3, 'How long a set waits for cameras whose frame is missing, counted from its '
        'last frame while the node has no other frame to track; then it is fused without '
        'them.', low=0.0, high=10.0, expose=_ROS_ONLY)

    def __post_init__(self) -> None:
        check_all(self)


def _node_default(spec: Spec) -> Spec:
    """Return the spec with the default the node runs with (its running mode's)."""
    return dataclasses.replace(spec, default=spec.default_for(NODE_MODE), mode_defaults=())


NODE_SPECS: tuple[Spec, ...] = specs(NodeOptions)
PARAMS: tuple[Spec, ...] = tuple(
    _node_default(s) for s in NODE_SPECS[:6] + BASE_SPECS + TRACKER_SPECS + NODE_SPECS[6:]
    if ROS in s.expose)
SPECS: dict[str, Spec] = {p.name: p for p in PARAMS}
if len(SPECS) != len(PARAMS):
    raise RuntimeError('two settings share a parameter name')


def validate(name: str, value: Any, running: bool = True,
             specs: dict[str, Spec] | None = None) -> str | None:
    """Reason the value is rejected, or None when it is acceptable (default: this node's)."""
    spec = (SPECS if specs is None else specs).get(name)
    if spec is None:
        return None  # not ours (e.g. qos_overrides.*, use_sim_time)
    if running and not spec.live:
        return f'{name} cannot change at run time: restart the node with the new value'
    return spec.check(value)


def first_rejection(params: list[Any], specs: dict[str, Spec] | None = None) -> str | None:
    """Reason the first of a set_parameters request's changes is rejected, or None."""
    for param in params:
        reason = validate(param.name, param.value, specs=specs)
        if reason:
            return reason
    return None


def node_options(values: dict[str, Any]) -> NodeOptions:
    """Build NodeOptions from the parameter values (tracker settings ignored)."""
    names = {s.name for s in NODE_SPECS}
    return NodeOptions(**{k: v for k, v in values.items() if k in names})


YAML_HEADER = """\
# hand_pose_node parameters: every parameter with its default (generated from the settings'
# definitions: python -m hand_pose_ros.ros.parameters > config/hands.yaml).
# (restart) = read at start-up; changing it at run time is rejected. The others change
# live: ros2 param set <node> <name> <value>, where <node> is /<namespace>/hand_pose_node:
# /hand_pose_node from hands.launch.py without a namespace, /camera/hand_pose_node from
# replay.launch.py (`ros2 node list` shows it).
# Image QoS (sensor_data by default) is overridable per topic, e.g.
#   qos_overrides./camera/image_raw.subscription.reliability: reliable
/**:
  ros__parameters:
"""


def _yaml_value(value: Any) -> str:
    import yaml
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('\n...')


def render_yaml() -> str:
    """config/hands.yaml: each parameter with its description and constraints as a comment."""
    lines = [YAML_HEADER.rstrip('\n')]
    for spec in PARAMS:
        comment = f'{spec.description} [{spec.constraints()}]'
        lines += textwrap.wrap(comment, 96, initial_indent='    # ',
                               subsequent_indent='    # ')
        lines.append(f'    {spec.name}: {_yaml_value(spec.default)}')
    return '\n'.join(lines) + '\n'


def declare_all(node: Any, params: tuple[Spec, ...] = PARAMS,
                check: bool = True) -> dict[str, Any]:
    """
    Declare every parameter with its descriptor; returns {name: value} after overrides.

    check=False leaves the checks to check_values(): a lifecycle node must come up even with a
    bad value, and refuse it at configure.
    """
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
    values = {}
    for spec in params:
        desc = ParameterDescriptor(
            name=spec.name,
            description=spec.description + ('' if spec.live else ' (restart needed)'),
            additional_constraints=spec.constraints(),
        )
        if spec.low is not None and isinstance(spec.default, float):
            desc.floating_point_range = [FloatingPointRange(
                from_value=float(spec.low), to_value=float(spec.high), step=0.0)]
        elif spec.low is not None and isinstance(spec.default, int):
            desc.integer_range = [IntegerRange(
                from_value=int(spec.low), to_value=int(spec.high), step=1)]
        param = node.declare_parameter(spec.name, spec.default, desc)
        values[spec.name] = param.value
        reason = spec.check(param.value) if check else None
        if reason:
            raise ValueError(f'invalid parameter: {reason}')
    return values


def check_values(values: dict[str, Any], params: tuple[Spec, ...] = PARAMS) -> None:
    """Raise ValueError as declare_all() does for the first value its spec refuses."""
    for spec in params:
        reason = spec.check(values[spec.name])
        if reason:
            raise ValueError(f'invalid parameter: {reason}')


MARKDOWN_HEADER = """\
# Parameters

<!-- Generated from the settings' definitions; do not edit. Regenerate with
  python -m hand_pose_ros.ros.parameters --markdown > docs/parameters.md
(PYTHONPATH=hand_pose_ros from the repository root); test_settings.py fails when it drifts. -->

Every setting is defined once, as a field of an options dataclass with its description,
range or choices, liveness and per-running-mode default (`core/settings.py`); the ROS
parameters and their descriptors (`ros2 param describe`), the `detect` and `bench` flags,
`config/hands.yaml` and this page are derived from those definitions.

- **changes**: `live` = `ros2 param set <node> <name> <value>` applies it to the running
  node; `restart` = read at start-up, a change at run time is rejected with the reason.
  A value outside its range or choices is rejected with the reason too.
- **default**: the value used when the parameter is not given. Where it depends on the
  running mode, each mode's value is listed: `hand_pose_node` runs `live_stream`,
  `detect` runs `image` unless `--running-mode video` is given.
- **on**: where the setting can be given: `node` (a ROS parameter), a `detect` flag
  (`--name-with-dashes`), or only in Python (`TrackerOptions(...)`).
- The node's parameter file, with every default, is `config/hands.yaml`; the node's
  parameters are at `/<namespace>/hand_pose_node` (`ros2 node list` shows it).
"""

# (heading, where the definitions are, what the group is) for docs/parameters.md; the specs
# are those of the options dataclass named, in field order.
_GROUPS = (
    ('hand_pose_node: topics and outputs', '`NodeOptions`, `ros/parameters.py`',
     'What the node subscribes to and publishes.'),
    ('hand_pose_node and detect: the tracker',
     '`BaseOptions` and `TrackerOptions`, `core/options.py`',
     'Which networks run (`BaseOptions`, restart only) and how the pipeline behaves; the '
     'same settings under the same names in `hand_pose_node`, `hand-pose-ros detect` and '
     'Python.'),
    ('replay', '`ReplayOptions`, `ros/replay.py`',
     'A folder of images, a video or a webcam published as a camera (Image + CameraInfo).'),
    ('hand_retarget_node', '`RetargetOptions`, `ros/retarget_node.py`',
     "HandArray in, a robot hand's JointState per side out (docs/teleop.md)."),
    ('calibration_tf', '`CalibrationTfOptions`, `ros/calibration_tf.py`',
     "A calibration file's camera poses as static transforms, for fusion "
     '(docs/multi-camera.md).'),
)


def _documented_specs() -> tuple[tuple[Spec, ...], ...]:
    """Return the definitions behind each group of _GROUPS, in the same order."""
    from hand_pose_ros.ros.calibration_tf import CALIBRATION_TF_SPECS
    from hand_pose_ros.ros.replay import REPLAY_SPECS
    from hand_pose_ros.ros.retarget_node import RETARGET_SPECS
    return (NODE_SPECS, BASE_SPECS + TRACKER_SPECS, REPLAY_SPECS, RETARGET_SPECS,
            CALIBRATION_TF_SPECS)


def _md(value: Any) -> str:
    if isinstance(value, RunningMode):
        value = value.value
    if isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, float) and math.isfinite(value):
        text = f'{value:g}'
    elif isinstance(value, str):
        text = repr(value) if value == '' else value
    else:
        text = str(value)
    return f'`{text}`'


def _prose(text: str) -> str:
    """Make a description fit for markdown: <name> would be read as an HTML tag, and vanish."""
    return text.replace('<', '&lt;')


def _md_default(spec: Spec) -> str:
    """Show the default; where it depends on the running mode, each value with its modes."""
    if not spec.mode_defaults:
        return _md(spec.default)
    by_value: dict[str, list[str]] = {}
    for mode in RunningMode:
        by_value.setdefault(_md(spec.default_for(mode)), []).append(mode.value)
    return '; '.join(f'{", ".join(modes)}: {value}' for value, modes in by_value.items())


def _md_range(spec: Spec) -> str:
    if spec.low is not None:
        return f'{_md(spec.low)} to {_md(spec.high)}'
    if spec.choices:
        return ', '.join(_md(c) for c in spec.choices)
    if spec.pattern:
        return f'matches `{spec.pattern}`'
    return ''


def _md_on(spec: Spec) -> str:
    on = (['node'] if ROS in spec.expose else []) + (
        [f'`--{spec.name.replace("_", "-")}`'] if CLI in spec.expose else [])
    return ', '.join(on) or 'Python'


def render_markdown() -> str:
    """docs/parameters.md: one table per options dataclass, every setting with its rules."""
    lines = [MARKDOWN_HEADER.rstrip('\n')]
    for (heading, where, what), group in zip(_GROUPS, _documented_specs()):
        say_where = len({s.expose for s in group}) > 1  # the "on" column, where it varies
        lines += ['', f'## {heading}', '', f'{what} Defined in {where}.', '']
        head = ['parameter', 'default', 'range / choices', 'changes'] + (
            ['on'] if say_where else []) + ['description']
        lines += ['| ' + ' | '.join(head) + ' |', '|' + ' --- |' * len(head)]
        for spec in group:
            row = [f'`{spec.name}`', _md_default(spec), _md_range(spec),
                   'live' if spec.live else 'restart'] + (
                [_md_on(spec)] if say_where else []) + [_prose(spec.description)]
            # A | inside a cell, code spans included, would end the cell (GFM tables).
            lines.append('| ' + ' | '.join(c.replace('|', '\\|') for c in row) + ' |')
    return '\n'.join(lines) + '\n'


def runtime_hint(message: str) -> str:
    """
    Return the runtime's error, with the install hint that fits how this package was installed.

    `requirements/torch.txt` exists in a checkout of the repository (the venv of
    scripts/setup.sh); a colcon workspace install has no such file, so name pip instead.
    """
    from hand_pose_ros.core.models.runtimes import TORCH_INSTALL
    req = Path(__file__).resolve().parents[3] / 'requirements' / 'torch.txt'
    if TORCH_INSTALL in message:
        hint = (f'pip install -r {req}' if req.is_file() else
                'pip install torch into the Python that runs ROS (docs/runtimes.md)')
        message = message.replace(TORCH_INSTALL, hint)
    return message


if __name__ == '__main__':
    sys.stdout.write(render_markdown() if sys.argv[1:] == ['--markdown'] else render_yaml())
