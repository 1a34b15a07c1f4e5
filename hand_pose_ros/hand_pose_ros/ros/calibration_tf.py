"""
`calibration_tf`: a calibration file's camera poses as static transforms, for fusion.

The node's fusion reads every camera's pose from TF; a rig calibrated with anipose, Pose2Sim
or the YAML of ../shared/data/multiview has those poses in a file instead. This node reads
the file with core/fusion/calibration.load_rig and latches one transform per camera on
/tf_static: `frame` (the fusion frame, e.g. world; REP 105) -> `<camera><frame_suffix>`,
the camera's optical frame (REP 103: x right, y down, z forward), which is the frame_id the
camera's images must carry. The transform is the camera's pose in the fusion frame (the
inverse of the file's world -> camera rotation and translation).

  ros2 run hand_pose_ros calibration_tf --ros-args -p calibration:=calibration.yaml

Its parameters are `CalibrationTfOptions`, defined as the other nodes' settings are
(core/settings.py) and listed in docs/parameters.md.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from hand_pose_ros.core.fusion.calibration import CameraCalibration, load_rig
from hand_pose_ros.core.settings import check_all, option, ROS, specs

_ROS_ONLY = (ROS,)


@dataclass(frozen=True)
class CalibrationTfOptions:
    """calibration_tf's parameters, all read at start-up (a change needs a restart)."""

    calibration: str = option(
        '', 'Calibration file: anipose/Pose2Sim .toml or the multiview .yaml; required.',
        live=False, expose=_ROS_ONLY)
    frame: str = option(
        'world', 'Parent frame of the camera frames: the fusion_frame of hand_pose_node.',
        live=False, expose=_ROS_ONLY)
    frame_suffix: str = option(
        '_optical_frame', 'A camera named C in the file gets the frame C<frame_suffix>.',
        live=False, expose=_ROS_ONLY)

    def __post_init__(self) -> None:
        check_all(self)


CALIBRATION_TF_SPECS = specs(CalibrationTfOptions)


def camera_transform(camera: CameraCalibration, parent: str, child: str, stamp: Any) -> Any:
    """geometry_msgs/TransformStamped parent -> child: the camera's pose in the parent frame."""
    from geometry_msgs.msg import TransformStamped
    from hand_pose_ros.ros.msg_out import rotation_to_quaternion
    t = TransformStamped()
    t.header.stamp = stamp
    t.header.frame_id = parent
    t.child_frame_id = child
    tr = t.transform.translation
    tr.x, tr.y, tr.z = (float(v) for v in camera.centre)
    r = t.transform.rotation
    r.x, r.y, r.z, r.w = rotation_to_quaternion(camera.rotation.T)
    return t


def _node_class():
    from hand_pose_ros.ros import parameters
    from rclpy.node import Node
    from tf2_ros import StaticTransformBroadcaster

    class CalibrationTfNode(Node):
        """Latches the calibration's camera poses on /tf_static once, then idles."""

        def __init__(self, **kwargs: Any):
            super().__init__('calibration_tf', **kwargs)
            self.options = CalibrationTfOptions(
                **parameters.declare_all(self, CALIBRATION_TF_SPECS))
            p = dataclasses.asdict(self.options)
            if not p['calibration']:
                raise ValueError('parameter calibration is required (a .toml or .yaml file)')
            rig = load_rig(p['calibration'])  # ValueError: the reason, no traceback
            stamp = self.get_clock().now().to_msg()
            self.broadcaster = StaticTransformBroadcaster(self)
            self.broadcaster.sendTransform([
                camera_transform(cam, p['frame'], f'{name}{p["frame_suffix"]}', stamp)
                for name, cam in rig.items()])
            self.get_logger().info(
                f'{len(rig)} camera frames under {p["frame"]} from {p["calibration"]}: '
                + ', '.join(f'{n}{p["frame_suffix"]}' for n in rig))

    return CalibrationTfNode


def main(args: list[str] | None = None) -> None:
    from hand_pose_ros.ros.spin import spin_node
    spin_node(_node_class(), args)


if __name__ == '__main__':
    main()
