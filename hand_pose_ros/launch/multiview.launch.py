"""
Synchronized videos of calibrated cameras replayed as cameras, and hands fused across them.

  ros2 launch hand_pose_ros multiview.launch.py source:=../shared/data/multiview/pose2sim_single

`source` is a folder with a calibration (`calibration.yaml`, or any file given as
`calibration`, .yaml or .toml) and one video (or image folder) per camera, named as the
camera in the calibration (cam01.mp4, ...); cameras of the calibration without a video are
skipped. Per camera a `replay` publishes <camera>/image_raw and <camera>/camera_info (the
calibration's intrinsics) in frame <camera>_optical_frame; every replay stamps frame i with
one shared start time + i / rate_hz, so frame i of every camera carries the same stamp.
`calibration_tf` publishes the cameras' poses under `fusion_frame` on /tf_static, and one
hand_pose_node tracks every camera and fuses them on /fused/hands (docs/multi-camera.md).
The default rate suits a CPU: four full-HD cameras cost the node about a second per set.
"""

from pathlib import Path
import tempfile
import time

from hand_pose_ros.core.fusion.calibration import load_rig
from hand_pose_ros.ros import transport
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare
import yaml

VIDEO_SUFFIXES = ('.mp4', '.avi', '.mov', '.mkv')
START_LEAD_S = 3.0  # the first stamp lies this far after launch: the nodes start meanwhile

ARGUMENTS = (
    ('source', '', 'Folder with the calibration and one video (or image folder) per camera.'),
    ('calibration', '', "Calibration file (.yaml or .toml); '' = <source>/calibration.yaml."),
    ('fusion_frame', 'world', "Frame of the fused hands: the calibration's world frame."),
    ('rate_hz', '2.0', 'Frames per second each camera replays.'),
    ('loop', 'true', 'Start again at the end of the videos.'),
    ('config', PathJoinSubstitution([FindPackageShare('hand_pose_ros'), 'config', 'hands.yaml']),
     'Parameter file of hand_pose_node (cameras and fusion_frame are set here).'),
    ('rviz', 'false', 'true: also start RViz with config/multiview.rviz (fixed frame world).'),
)


def camera_inputs(source: Path, cameras: list[str]) -> dict[str, Path]:
    """{camera: its video or image folder} for the calibration's cameras found in source."""
    out = {}
    for name in cameras:
        found = [source / f'{name}{s}' for s in VIDEO_SUFFIXES
                 if (source / f'{name}{s}').is_file()]
        if not found and (source / name).is_dir():
            found = [source / name]
        if found:
            out[name] = found[0]
    return out


def frame_size(path: Path) -> tuple[int, int]:
    """(width, height) of a video's or image folder's first frame."""
    from hand_pose_ros.core.inputs.frames import FrameSource
    source = FrameSource(str(path), False, None)
    try:
        rgb = source.next()
    finally:
        source.close()
    if rgb is None:
        raise ValueError(f'{path}: no readable frame')
    return rgb.shape[1], rgb.shape[0]


def camera_info_yaml(camera, size: tuple[int, int], path: Path) -> Path:
    """
    Write a camera's intrinsics as the camera_calibration YAML that replay reads.

    The size is the video's: a video may be coded a few pixels narrower than the sensor
    the calibration names (pose2sim_single: 1080 of 1088 columns), with the same pixel grid.
    """
    intr = camera.intrinsics
    path.write_text(yaml.safe_dump({
        'image_width': size[0], 'image_height': size[1],
        'camera_name': camera.name,
        'camera_matrix': {'rows': 3, 'cols': 3,
                          'data': [float(v) for v in intr.matrix.ravel()]},
        'distortion_model': intr.distortion_model,
        'distortion_coefficients': {'rows': 1, 'cols': len(intr.d),
                                    'data': [float(v) for v in intr.d]},
    }))
    return path


def _nodes(context: LaunchContext) -> list:
    cfg = {name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGUMENTS}
    if not cfg['source']:
        raise ValueError('source:= is required (a folder with calibration.yaml and videos)')
    source = Path(cfg['source']).expanduser().resolve()
    calibration = Path(cfg['calibration'] or source / 'calibration.yaml').expanduser().resolve()
    rig = load_rig(calibration)
    inputs = camera_inputs(source, list(rig))
    if not inputs:
        raise ValueError(f'no video or image folder in {source} is named as a camera of '
                         f'{calibration} ({", ".join(rig)})')
    infos = Path(tempfile.mkdtemp(prefix='multiview_camera_info_'))
    start = round(time.time() + START_LEAD_S, 3)
    replays = [Node(
        package='hand_pose_ros', executable='replay', name='replay', namespace=name,
        output='screen', parameters=[{
            'source': str(path), 'rate_hz': float(cfg['rate_hz']),
            'loop': cfg['loop'].lower() == 'true', 'frame_id': f'{name}_optical_frame',
            'camera_info_file': str(camera_info_yaml(rig[name], frame_size(path),
                                                     infos / f'{name}.yaml')),
            'stamp_start_s': start}])
        for name, path in inputs.items()]
    static_tf = Node(
        package='hand_pose_ros', executable='calibration_tf', name='calibration_tf',
        output='screen', parameters=[{'calibration': str(calibration),
                                      'frame': cfg['fusion_frame'],
                                      'frame_suffix': '_optical_frame'}])
    node = Node(
        package='hand_pose_ros', executable='hand_pose_node', name='hand_pose_node',
        output='screen', parameters=[cfg['config'], {
            'cameras': list(inputs), 'fusion_frame': cfg['fusion_frame']}])
    return [*replays, static_tf, node]


def generate_launch_description() -> LaunchDescription:
    args = [DeclareLaunchArgument(name, default_value=default, description=desc)
            for name, default, desc in ARGUMENTS]
    rviz = Node(
        package='rviz2', executable='rviz2', name='rviz2',
        arguments=['-d', PathJoinSubstitution(
            [FindPackageShare('hand_pose_ros'), 'config', 'multiview.rviz'])],
        condition=IfCondition(LaunchConfiguration('rviz')))
    return LaunchDescription([*args, OpaqueFunction(function=transport.launch_actions),
                              OpaqueFunction(function=_nodes), rviz])
