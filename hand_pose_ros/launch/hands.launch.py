"""Hand tracking on one camera: hand_pose_node (+ RViz on request).

  ros2 launch hand_pose_ros hands.launch.py image:=/camera/color/image_raw \
      camera_info:=/camera/color/camera_info
  ros2 launch hand_pose_ros hands.launch.py image:=/camera/image_raw compressed:=true rviz:=true

The node's own topics are relative (image_raw, camera_info, depth, hands, hand_markers,
hands/image, gestures) and are remapped here to the arguments; `namespace` puts the node and
its outputs under a namespace. Several cameras in one node: use a config file whose
`cameras` lists camera namespaces (see config/hands.yaml).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
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
    ('compressed', 'false', 'true: subscribe to <image>/compressed (jpeg/png) instead of raw.'),
    ('depth', '', "Registered depth image topic (16UC1 mm or 32FC1 m); '' = no depth."),
    ('config', PathJoinSubstitution([FindPackageShare('hand_pose_ros'), 'config', 'hands.yaml']),
     'Parameter file (every parameter documented in config/hands.yaml).'),
    ('model', 'full', 'Model variant: full or lite.'),
    ('runtime', 'auto', 'Inference runtime: auto, litert or torch.'),
    ('device', 'cpu', 'Device: cpu, cuda or cuda:N.'),
    ('namespace', '', 'Namespace of the node and its output topics.'),
    ('rviz', 'false', 'true: also start RViz with config/hands.rviz.'),
)


def generate_launch_description() -> LaunchDescription:
    args = [DeclareLaunchArgument(name, default_value=default, description=desc)
            for name, default, desc in ARGUMENTS]
    cfg = {name: LaunchConfiguration(name) for name, _, _ in ARGUMENTS}
    use_depth = PythonExpression(["'depth' if '", cfg['depth'], "' else ''"])
    node = Node(
        package='hand_pose_ros',
        executable='hand_pose_node',
        name='hand_pose_node',
        namespace=cfg['namespace'],
        output='screen',
        parameters=[cfg['config'], {
            'compressed': ParameterValue(cfg['compressed'], value_type=bool),
            'depth_topic': ParameterValue(use_depth, value_type=str),
            'model': ParameterValue(cfg['model'], value_type=str),
            'runtime': ParameterValue(cfg['runtime'], value_type=str),
            'device': ParameterValue(cfg['device'], value_type=str),
        }],
        remappings=[
            ('image_raw', cfg['image']),
            ('image_raw/compressed', [cfg['image'], '/compressed']),
            ('camera_info', cfg['camera_info']),
            ('depth', PythonExpression(["'", cfg['depth'], "' or 'depth'"])),
        ],
    )
    rviz = Node(
        package='rviz2',
        executable='rviz2',
        name='rviz2',
        arguments=['-d', PathJoinSubstitution(
            [FindPackageShare('hand_pose_ros'), 'config', 'hands.rviz'])],
        condition=IfCondition(cfg['rviz']),
    )
    return LaunchDescription([*args, node, rviz])
