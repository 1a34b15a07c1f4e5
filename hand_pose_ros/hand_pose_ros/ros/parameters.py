"""The node's parameters: one table with defaults, ranges, descriptions and liveness.

The table is the single source for declaring the parameters (with descriptors that
`ros2 param describe` shows), for validating live changes (rejected with a reason), and for
config/hands.yaml (a test checks that the YAML lists exactly these names and defaults).
Parameters marked `live=False` shape subscriptions or load models: changing them at run
time is rejected with a reason that says a restart is needed. (They are not declared
read_only: rclpy checks read_only before any on-set callback and answers "Trying to set a
read-only parameter", which does not tell the user what to do.) rclpy itself enforces each
descriptor's type and range at run time; validate() states the same rules for start-up
values, config/hands.yaml and the choices/device rules descriptors cannot express.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: Any
    description: str
    live: bool = True
    low: float | None = None  # inclusive range for numbers
    high: float | None = None
    choices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # validate() relies on these: a range also rules out NaN/inf, and rclpy cannot infer
        # the type of an empty list default.
        number = isinstance(self.default, (int, float)) and not isinstance(self.default, bool)
        if number and (self.low is None or self.high is None):
            raise ValueError(f'parameter {self.name}: a number needs a range')
        if isinstance(self.default, list) and not self.default:
            raise ValueError(f'parameter {self.name}: a list default must not be empty')

    def constraints(self) -> str:
        parts = []
        if self.low is not None:
            parts.append(f'range [{self.low}, {self.high}]')
        if self.choices:
            parts.append('one of: ' + ', '.join(self.choices))
        parts.append('changes live' if self.live else 'restart needed to change')
        return '; '.join(parts)


RUNTIMES = ('auto', 'litert', 'torch')

PARAMS: tuple[ParamSpec, ...] = (
    # ---- inputs (shape subscriptions: restart)
    ParamSpec('cameras', [''], 'Camera namespaces, one per camera, relative to the node '
              "namespace ('' = the node namespace itself). Each gets image, camera_info, "
              'optional depth and its own outputs.', live=False),
    ParamSpec('image_topic', 'image_raw', 'Image topic inside each camera namespace.',
              live=False),
    ParamSpec('compressed', False, 'Subscribe to <image_topic>/compressed '
              '(sensor_msgs/CompressedImage, jpeg or png) instead of the raw image.',
              live=False),
    ParamSpec('camera_info_topic', 'camera_info', 'CameraInfo topic inside each camera '
              'namespace; without CameraInfo there is no camera-frame 3D.', live=False),
    ParamSpec('depth_topic', '', "Registered depth image topic (16UC1 mm or 32FC1 m) inside "
              "each camera namespace; '' = no depth.", live=False),
    ParamSpec('sync_tolerance_s', 0.02, 'Max stamp difference when matching CameraInfo and '
              'depth to an image. CameraInfo falls back to the latest one; depth outside the '
              'tolerance is not used.', low=0.0, high=1.0),
    # ---- model and runtime (load time: restart)
    ParamSpec('model', 'full', 'Model variant.', live=False, choices=('full', 'lite')),
    ParamSpec('runtime', 'auto', "Inference runtime ('auto' = torch on CUDA when a GPU is "
              'visible, else litert).', live=False, choices=RUNTIMES),
    ParamSpec('device', 'auto', "Device: 'auto' (a CUDA GPU when torch sees one, else the "
              "CPU), 'cpu', 'cuda' or 'cuda:N'.", live=False),
    ParamSpec('num_threads', 2, 'CPU threads of the litert runtime.', live=False,
              low=1, high=64),
    ParamSpec('precision', 'fp32', "Landmark model precision: 'int8' = int8 conv weights, "
              'about 1.5x faster landmark model on CPUs with int8 dot products, litert only '
              "('auto' then picks litert).", live=False, choices=('fp32', 'int8')),
    ParamSpec('max_num_hands', 2, 'Maximum hands tracked per camera.', live=False,
              low=1, high=8),
    # ---- tracking (live)
    ParamSpec('min_detection_confidence', 0.5, 'Palm detector score threshold.',
              low=0.0, high=1.0),
    ParamSpec('min_tracking_confidence', 0.5, 'Hand presence below which a tracked hand is '
              'dropped and the palm detector runs again.', low=0.0, high=1.0),
    ParamSpec('detect_every_n_frames', 1, 'While some but fewer than max_num_hands hands are '
              "tracked, run the palm detector only every N frames (1 = MediaPipe's rule).",
              low=1, high=1000),
    ParamSpec('detection_tiles', 0, 'Extra palm detector views for far and near hands, run '
              "while fewer than max_num_hands hands are tracked (0 = MediaPipe's single "
              'view; 1 = a zoomed-out view and windows of the image height, +3 detector '
              'calls at 640x480; 2 = also half-height windows, +15).', low=0, high=3),
    ParamSpec('tile_detector', 'lite', "Palm detector of the detection_tiles views ('lite' "
              'finds small hands better; the whole-image view always runs model).',
              choices=('lite', 'full')),
    ParamSpec('landmark_refinement', 0, 'Extra landmark model passes per hand and frame, '
              "each on the ROI of the previous pass's landmarks (tracking already does this "
              "from frame to frame; a pass sharpens a track's first frame and fast motion, "
              'at one more landmark call per hand).', low=0, high=5),
    ParamSpec('mirrored', False, 'The image is mirrored (selfie view); handedness is then '
              'taken as the model reports it.'),
    ParamSpec('smoothing', True, 'One Euro filtering of keypoints and wrist pose per track.'),
    ParamSpec('one_euro_min_cutoff', 1.0, 'One Euro min cutoff, Hz (lower = smoother).',
              low=0.001, high=100.0),
    ParamSpec('one_euro_beta', 10.0, 'One Euro speed coefficient (higher = less lag).',
              low=0.0, high=1000.0),
    ParamSpec('gesture_hold_frames', 3, 'Frames a gesture must hold before it is reported.',
              low=1, high=100),
    ParamSpec('gesture_modules', [''], 'Python modules imported at start-up that register '
              "extra gestures (hand_pose_ros.core.gestures.register_gesture); '' = none.",
              live=False),
    ParamSpec('hand_scale', 1.0, "User's hand size relative to the model's average hand.",
              low=0.5, high=2.0),
    # ---- outputs (live)
    ParamSpec('publish_tf', True, 'Broadcast wrist frames on /tf.'),
    ParamSpec('tf_prefix', '', 'Prefix of TF frame names: <prefix>left_wrist; with several '
              'cameras <prefix><camera>_left_wrist.'),
    ParamSpec('publish_fingertip_tf', False, 'Also broadcast fingertip frames.'),
    ParamSpec('publish_markers', True, 'Publish RViz markers on hand_markers.'),
    ParamSpec('publish_annotated_image', True, 'Publish hands/image (only drawn while '
              'someone subscribes).'),
    ParamSpec('publish_gestures', True, 'Publish gesture changes on gestures.'),
    ParamSpec('diagnostics_period_s', 1.0, 'Period of /diagnostics messages.', live=False,
              low=0.1, high=60.0),
    # ---- input limits (live)
    ParamSpec('max_image_pixels', 34_000_000, 'Images (raw, or compressed as their header '
              'declares) with more pixels are rejected before any decoding or conversion '
              '(cause image_too_large); the default admits 8K UHD (7680x4320).',
              low=1, high=1_073_676_289),
)
SPECS: dict[str, ParamSpec] = {p.name: p for p in PARAMS}


def validate(name: str, value: Any, running: bool = True) -> str | None:
    """Reason the value is rejected, or None when it is acceptable."""
    spec = SPECS.get(name)
    if spec is None:
        return None  # not ours (e.g. qos_overrides.*, use_sim_time)
    if running and not spec.live:
        return f'{name} cannot change at run time: restart the node with the new value'
    if isinstance(spec.default, bool):
        if not isinstance(value, bool):
            return f'{name} must be a bool'
        return None
    if isinstance(spec.default, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f'{name} must be a number'
        if isinstance(spec.default, int) and not isinstance(value, int):
            return f'{name} must be an integer'
        if not spec.low <= value <= spec.high:  # False for NaN too
            return f'{name}={value} is outside [{spec.low}, {spec.high}]'
        return None
    if isinstance(spec.default, str):
        if not isinstance(value, str):
            return f'{name} must be a string'
        if spec.choices and value not in spec.choices:
            return f'{name}={value!r} is not one of {", ".join(spec.choices)}'
        if (name == 'device' and value not in ('auto', 'cpu', 'cuda')
                and not value.startswith('cuda:')):
            return f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {value!r}"
        return None
    if isinstance(spec.default, list) and not all(isinstance(v, str) for v in value):
        return f'{name} must be a list of strings'
    return None


def declare_all(node: Any) -> dict[str, Any]:
    """Declare every parameter with its descriptor; returns {name: value} after overrides."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
    values = {}
    for spec in PARAMS:
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
        reason = validate(spec.name, param.value, running=False)
        if reason:
            raise ValueError(f'invalid parameter: {reason}')
    return values
