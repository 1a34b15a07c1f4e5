"""
hand_retarget_node: HandArray in, one robot hand's sensor_msgs/JointState per side out.

Why a separate node: retargeting needs dex-retargeting, pinocchio and a robot URDF, none of
which the tracker needs, and a robot is driven by whoever consumes the hands (one tracker can
feed several robots). It solves dex-retargeting for the hand of each side in every HandArray
(so at the camera rate), from `keypoints_mano`, and publishes the robot's joint positions in
its URDF joint names with the HandArray's header, ready for robot_state_publisher (run one per
robot hand with that URDF, remapping its joint_states; `frame_prefix` keeps two hands with the
same link names apart) or a hand driver.

When several hands of one side are tracked, the one with the lowest track id (tracked
longest) drives the robot; every solve is warm-started from the same track's last solution.
Nothing is published for a side while no hand of it is seen: the robot holds its pose.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from hand_pose_ros.core.meaning.retarget import HandRetargeter
from hand_pose_ros.core.settings import check_all, option, ROS, specs
import numpy as np

_ROS_ONLY = (ROS,)
SIDES = ('left', 'right')


@dataclass(frozen=True)
class RetargetOptions:
    """hand_retarget_node's parameters (all read at start-up)."""

    hands_topic: str = option(
        'hands', 'hand_pose_msgs/HandArray input topic.', live=False, expose=_ROS_ONLY)
    left_config: str = option(
        'allegro_hand_left_dexpilot', 'Left robot hand: a dex-retargeting config shipped '
        'with it, by name (e.g. leap_hand_left, inspire_hand_left_dexpilot, '
        "offline/allegro_hand_left), or a YAML path; '' = no left robot hand. The DexPilot "
        'configs (default) close pinches; the plain vector ones leave thumb and index ~7 cm '
        'apart on Allegro.', live=False, expose=_ROS_ONLY)
    right_config: str = option(
        'allegro_hand_right_dexpilot', "Right robot hand, as left_config; '' = none.",
        live=False, expose=_ROS_ONLY)
    left_urdf_dir: str = option(
        '', "Folder the left config's urdf_path is relative to (dex-urdf's robots/hands "
        'layout: <robot>/<urdf>). Needed unless the config has an absolute urdf_path.',
        live=False, expose=_ROS_ONLY)
    right_urdf_dir: str = option(
        '', "Folder the right config's urdf_path is relative to.", live=False,
        expose=_ROS_ONLY)
    left_joint_states_topic: str = option(
        'left/joint_states', 'sensor_msgs/JointState output of the left robot hand.',
        live=False, expose=_ROS_ONLY)
    right_joint_states_topic: str = option(
        'right/joint_states', 'sensor_msgs/JointState output of the right robot hand.',
        live=False, expose=_ROS_ONLY)

    def __post_init__(self) -> None:
        check_all(self)


RETARGET_SPECS = specs(RetargetOptions)
_BY_NAME = {s.name: s for s in RETARGET_SPECS}


def pick_hands(hands: list[Any]) -> dict[str, Any]:
    """{side: the hand of that side with the lowest track id} among a HandArray's hands."""
    chosen: dict[str, Any] = {}
    for hand in hands:
        side = str(hand.handedness).lower()
        if side in SIDES and (side not in chosen or hand.id < chosen[side].id):
            chosen[side] = hand
    return chosen


def mano_of(hand: Any) -> np.ndarray | None:
    """(21, 3) keypoints_mano of a Hand message, None when unset (all zero)."""
    mano = np.array([[p.x, p.y, p.z] for p in hand.keypoints_mano], dtype=np.float64)
    if mano.shape != (21, 3) or not np.any(mano) or not np.all(np.isfinite(mano)):
        return None
    return mano


def joint_states(robots: dict[str, HandRetargeter], msg: Any) -> dict[str, Any]:
    """
    Return {side: sensor_msgs JointState} for one HandArray: what the node publishes for it.

    Each side's robot solves for the hand of that side with the lowest track id, with the
    HandArray's header; a side with no such hand (or no MANO keypoints) gets nothing. The
    robots' per-track warm starts follow the HandArrays given, in order (process-bag uses
    this too, one set of robots per camera).
    """
    from sensor_msgs.msg import JointState
    chosen = pick_hands(list(msg.hands))
    out = {}
    for side, robot in robots.items():
        robot.keep_tracks({h.id for h in msg.hands if h.handedness == side})
        hand = chosen.get(side)
        mano = None if hand is None else mano_of(hand)
        if mano is None:
            continue
        qpos = robot.retarget(mano, int(hand.id))
        state = JointState()
        state.header = msg.header
        state.name = list(robot.joint_names)
        state.position = [float(v) for v in qpos]
        out[side] = state
    return out


def _make_node() -> Any:
    from hand_pose_msgs.msg import HandArray
    from hand_pose_ros.ros import parameters
    from rcl_interfaces.msg import SetParametersResult
    from rclpy.node import Node
    from sensor_msgs.msg import JointState

    class HandRetargetNode(Node):
        def __init__(self) -> None:
            super().__init__('hand_retarget_node')
            try:
                self.options = RetargetOptions(**parameters.declare_all(self, RETARGET_SPECS))
            except (TypeError, ValueError) as exc:
                raise ValueError(f'invalid parameter: {exc}') from exc
            opts = dataclasses.asdict(self.options)
            self.robots: dict[str, HandRetargeter] = {}
            self.pubs: dict[str, Any] = {}
            for side in SIDES:
                config = opts[f'{side}_config']
                if not config:
                    continue
                try:
                    robot = HandRetargeter(config, opts[f'{side}_urdf_dir'])
                except (FileNotFoundError, ImportError) as exc:
                    raise ValueError(f'{side} robot hand: {exc}') from exc
                self.robots[side] = robot
                self.pubs[side] = self.create_publisher(
                    JointState, opts[f'{side}_joint_states_topic'], 10)
                self.get_logger().info(
                    f'{side}: {robot.config_path.name} ({robot.urdf_path.name}, '
                    f'{len(robot.joint_names)} joints) -> {opts[f"{side}_joint_states_topic"]}')
            if not self.robots:
                raise ValueError('left_config and right_config are both empty: nothing to do')
            self.create_subscription(HandArray, self.options.hands_topic, self._on_hands, 10)
            self.add_on_set_parameters_callback(self._on_set_parameters)

        @staticmethod
        def _on_set_parameters(params: list[Any]) -> Any:
            """Refuse changes: every setting here loads a robot model (restart needed)."""
            reason = parameters.first_rejection(params, _BY_NAME)
            return SetParametersResult(successful=reason is None, reason=reason or '')

        def _on_hands(self, msg: Any) -> None:
            for side, state in joint_states(self.robots, msg).items():
                self.pubs[side].publish(state)

    return HandRetargetNode()


def main(args: list[str] | None = None) -> None:
    from hand_pose_ros.ros.spin import spin_node
    spin_node(_make_node, args)


if __name__ == '__main__':
    main()
