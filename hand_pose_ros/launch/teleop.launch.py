"""
Camera in -> hand_pose_node -> hand_retarget_node -> robot-hand JointState out.

  ros2 launch hand_pose_ros teleop.launch.py image:=/camera/color/image_raw \
      camera_info:=/camera/color/camera_info urdf_dir:=/path/to/dex-urdf/robots/hands \
      left_config:=leap_hand_left_dexpilot right_config:=leap_hand_right_dexpilot

hands.launch.py runs the tracker (its HandArray on `hands` under `namespace`);
hand_retarget_node turns each side's hand into the robot hand's joint positions on
`left/joint_states` and `right/joint_states` (URDF joint names, the image's stamp). For TF
and RViz of the robot, run robot_state_publisher per side with that URDF, its joint_states
remapped to these topics and a `frame_prefix` (the left and right URDFs share link names).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

ARGUMENTS = (
    ('image', 'image_raw', 'Input image topic (sensor_msgs/Image).'),
    ('camera_info', 'camera_info', 'CameraInfo topic of that camera (wrist pose, TF).'),
    ('config', PathJoinSubstitution([FindPackageShare('hand_pose_ros'), 'config', 'hands.yaml']),
     'hand_pose_node parameter file.'),
    ('namespace', '', 'Namespace of both nodes and their topics.'),
    ('rviz', 'false', 'true: also start RViz with config/hands.rviz.'),
    ('left_config', 'allegro_hand_left_dexpilot', 'Left robot hand: a dex-retargeting config '
     "name or YAML path; '' = none."),
    ('right_config', 'allegro_hand_right_dexpilot', 'Right robot hand: a dex-retargeting '
     "config name or YAML path; '' = none."),
    ('urdf_dir', '', "Folder the configs' urdf_path is relative to (dex-urdf robots/hands), "
     'for both sides.'),
)


def generate_launch_description() -> LaunchDescription:
    args = [DeclareLaunchArgument(name, default_value=default, description=desc)
            for name, default, desc in ARGUMENTS]
    cfg = {name: LaunchConfiguration(name) for name, _, _ in ARGUMENTS}
    hands = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(PathJoinSubstitution(
            [FindPackageShare('hand_pose_ros'), 'launch', 'hands.launch.py'])),
        launch_arguments={
            'image': cfg['image'], 'camera_info': cfg['camera_info'], 'config': cfg['config'],
            'namespace': cfg['namespace'], 'rviz': cfg['rviz']}.items(),
    )
    retarget = Node(
        package='hand_pose_ros',
        executable='hand_retarget_node',
        name='hand_retarget_node',
        namespace=cfg['namespace'],
        output='screen',
        parameters=[{
            'left_config': cfg['left_config'],
            'right_config': cfg['right_config'],
            'left_urdf_dir': cfg['urdf_dir'],
            'right_urdf_dir': cfg['urdf_dir'],
        }],
    )
    return LaunchDescription([*args, hands, retarget])
