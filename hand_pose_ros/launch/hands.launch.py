"""
Hand tracking on one camera: hand_pose_node (+ RViz on request).

  ros2 launch hand_pose_ros hands.launch.py image:=/camera/color/image_raw \
      camera_info:=/camera/color/camera_info
  ros2 launch hand_pose_ros hands.launch.py image:=/camera/image_raw compressed:=true rviz:=true

The node's own topics are relative (image_raw, camera_info, depth, hands, hand_markers,
hands/image, gestures) and are remapped here to the arguments; `namespace` puts the node and
its outputs under a namespace. Several cameras in one node: use a config file whose
`cameras` lists camera namespaces (see config/hands.yaml).

Several launches, one TF tree: `tf_prefix` (default `auto`: `<namespace>/`, e.g.
`robot1/cam/left_wrist`; nothing without a namespace) names the wrist frames, so two launches
in different namespaces never broadcast the same frame. Any other value is used as given.

Transport: large images between processes need Fast DDS's shared memory sized for them
(config/fastdds_large_images.xml); it is selected here unless the user set
FASTRTPS_DEFAULT_PROFILES_FILE or FASTDDS_DEFAULT_PROFILES_FILE, and applies to the processes
this launch starts (the camera driver needs it too: export it, see the README).

The parameter file is the base; compressed, depth, model, runtime, device and tf_prefix
override it only when given (launch_ros applies later parameter entries over earlier ones,
so a default value here would silently replace the user's YAML).
"""


from hand_pose_ros.ros import transport
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

ARGUMENTS = (
    ('image', 'image_raw', 'Input image topic (sensor_msgs/Image; with compressed:=true its '
     '<image>/compressed CompressedImage is used).'),
    ('camera_info', 'camera_info', 'CameraInfo topic of that camera (needed for metric 3D, TF '
     'and markers).'),
    ('compressed', '', "true: subscribe to <image>/compressed (jpeg/png) instead of raw; '' = "
     'as in the config file.'),
    ('depth', '', "Registered depth image topic (16UC1 mm or 32FC1 m); '' = as in the config "
     'file (no depth by default).'),
    ('config', PathJoinSubstitution([FindPackageShare('hand_pose_ros'), 'config', 'hands.yaml']),
     'Parameter file (every parameter documented in config/hands.yaml).'),
    ('model', '', "Model variant: full or lite; '' = as in the config file."),
    ('runtime', '', "Inference runtime: auto, litert or torch; '' = as in the config file."),
    ('device', '', "Device: cpu, cuda or cuda:N; '' = as in the config file."),
    ('namespace', '', 'Namespace of the node and its output topics.'),
    ('tf_prefix', 'auto', "Prefix of the hand TF frames; auto = '<namespace>/' (nothing "
     'without a namespace), so launches in different namespaces never share a frame.'),
    ('rviz', 'false', 'true: also start RViz with config/hands.rviz.'),
    ('lifecycle', 'false', 'true: start the managed node (hand_pose_lifecycle_node), '
     'unconfigured until `ros2 lifecycle set <node> configure` then `activate`.'),
)

# Launch argument -> (node parameter, type): set on the node only when the argument is not ''.
PARAMETER_ARGUMENTS = {
    'compressed': ('compressed', bool),
    'depth': ('depth_topic', str),
    'model': ('model', str),
    'runtime': ('runtime', str),
    'device': ('device', str),
}


def _overrides(context: LaunchContext) -> list[dict]:
    """[parameters given as launch arguments] ([] when none); '' keeps the config file's value."""
    out = {}
    for arg, (param, value_type) in PARAMETER_ARGUMENTS.items():
        if not LaunchConfiguration(arg).perform(context).strip():
            continue
        # The depth argument is a topic remapped onto the node's relative `depth` topic.
        value = 'depth' if arg == 'depth' else LaunchConfiguration(arg)
        out[param] = ParameterValue(value, value_type=value_type)
    prefix = tf_prefix(LaunchConfiguration('tf_prefix').perform(context),
                       LaunchConfiguration('namespace').perform(context))
    if prefix is not None:
        out['tf_prefix'] = prefix
    return [out] if out else []


def tf_prefix(value: str, namespace: str) -> str | None:
    """Return the node's tf_prefix for the launch argument; None keeps the config's value."""
    if value != 'auto':
        return value
    ns = namespace.strip('/')
    return f'{ns}/' if ns else None


def _node(context: LaunchContext) -> list:
    cfg = {name: LaunchConfiguration(name) for name, _, _ in ARGUMENTS}
    # Same parameters and remappings for both; only the executable differs.
    managed = cfg['lifecycle'].perform(context).strip().lower() in ('true', '1')
    return [Node(
        package='hand_pose_ros',
        executable='hand_pose_lifecycle_node' if managed else 'hand_pose_node',
        name='hand_pose_node',
        namespace=cfg['namespace'],
        output='screen',
        parameters=[cfg['config'], *_overrides(context)],
        remappings=[
            ('image_raw', cfg['image']),
            ('image_raw/compressed', [cfg['image'], '/compressed']),
            ('camera_info', cfg['camera_info']),
            ('depth', PythonExpression(["'", cfg['depth'], "' or 'depth'"])),
        ],
    )]


def generate_launch_description() -> LaunchDescription:
    args = [DeclareLaunchArgument(name, default_value=default, description=desc)
            for name, default, desc in ARGUMENTS]
    cfg = {name: LaunchConfiguration(name) for name, _, _ in ARGUMENTS}
    rviz = Node(
        package='rviz2',
        executable='rviz2',
        name='rviz2',
        arguments=['-d', PathJoinSubstitution(
            [FindPackageShare('hand_pose_ros'), 'config', 'hands.rviz'])],
        condition=IfCondition(cfg['rviz']),
    )
    return LaunchDescription([*args, OpaqueFunction(function=transport.launch_actions),
                              OpaqueFunction(function=_node), rviz])
