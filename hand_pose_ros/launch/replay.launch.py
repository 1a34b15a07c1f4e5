"""
A recorded camera (folder, video or webcam) and, by default, hand tracking on it.

  ros2 launch hand_pose_ros replay.launch.py source:=/path/to/frames
  ros2 launch hand_pose_ros replay.launch.py source:=camera:0 fov_deg:=70 rviz:=true

`replay` publishes <namespace>/image_raw and <namespace>/camera_info with the same stamps and
frame id; hands.launch.py (included) tracks hands on them, with the parameters of `config`
(model, runtime and device override it only when given).
"""


from hand_pose_ros.ros import transport
from launch import LaunchDescription
from launch.actions import (
    DeclareLaunchArgument,
    IncludeLaunchDescription,
    OpaqueFunction,
)
from launch.conditions import IfCondition
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

ARGUMENTS = (
    ('source', '', 'Folder of images (recursive, sorted), a video file, or camera:N.'),
    ('rate_hz', '30.0', 'Publishing rate, Hz.'),
    ('loop', 'true', 'Start again at the end of a folder or video.'),
    ('frame_id', 'camera_optical_frame', 'frame_id of the images and CameraInfo.'),
    ('camera_info_file', '', "camera_calibration YAML with the intrinsics; '' = from fov_deg."),
    ('fov_deg', '60.0', 'Horizontal field of view used when there is no camera_info_file.'),
    ('namespace', 'camera', 'Namespace of the camera topics (and of the hand tracking node).'),
    ('tf_prefix', 'auto', "Prefix of the hand TF frames; auto = '<namespace>/'."),
    ('track', 'true', 'true: also run hands.launch.py on the replayed camera.'),
    ('config', PathJoinSubstitution([FindPackageShare('hand_pose_ros'), 'config', 'hands.yaml']),
     'Parameter file of hand_pose_node.'),
    ('model', '', "hand_pose_node model variant (full or lite); '' = as in the config file."),
    ('runtime', '', "hand_pose_node runtime (auto, litert or torch); '' = as in the config "
     'file.'),
    ('device', '', "hand_pose_node device (cpu, cuda or cuda:N); '' = as in the config file."),
    ('rviz', 'false', 'true: also start RViz.'),
)


def generate_launch_description() -> LaunchDescription:
    args = [DeclareLaunchArgument(name, default_value=default, description=desc)
            for name, default, desc in ARGUMENTS]
    cfg = {name: LaunchConfiguration(name) for name, _, _ in ARGUMENTS}
    replay = Node(
        package='hand_pose_ros',
        executable='replay',
        name='replay',
        namespace=cfg['namespace'],
        output='screen',
        parameters=[{
            'source': ParameterValue(cfg['source'], value_type=str),
            'rate_hz': ParameterValue(cfg['rate_hz'], value_type=float),
            'loop': ParameterValue(cfg['loop'], value_type=bool),
            'frame_id': ParameterValue(cfg['frame_id'], value_type=str),
            'camera_info_file': ParameterValue(cfg['camera_info_file'], value_type=str),
            'fov_deg': ParameterValue(cfg['fov_deg'], value_type=float),
        }],
    )
    hands = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(PathJoinSubstitution(
            [FindPackageShare('hand_pose_ros'), 'launch', 'hands.launch.py'])),
        launch_arguments={
            'namespace': cfg['namespace'],
            'tf_prefix': cfg['tf_prefix'],
            'config': cfg['config'],
            'model': cfg['model'],
            'runtime': cfg['runtime'],
            'device': cfg['device'],
            'rviz': cfg['rviz'],
        }.items(),
        condition=IfCondition(cfg['track']),
    )
    return LaunchDescription(
        [*args, OpaqueFunction(function=transport.launch_actions), replay, hands])
