"""Teleoperate a gripper with the right hand: pinch strength -> gripper, wrist -> target pose."""
from geometry_msgs.msg import PoseStamped
from hand_pose_msgs.msg import Hand, HandArray
import rclpy
from std_msgs.msg import Float64


def main() -> None:
    rclpy.init()
    try:
        node = rclpy.create_node('gripper_teleop')
        gripper = node.create_publisher(Float64, 'gripper_command', 10)  # 0 open .. 1 closed
        target = node.create_publisher(PoseStamped, 'target_pose', 10)

        def on_hands(msg: HandArray) -> None:
            for hand in msg.hands:
                if hand.handedness == Hand.RIGHT:
                    gripper.publish(Float64(data=float(hand.pinch_strength)))
                    if hand.camera_valid:  # wrist pose is in the camera optical frame
                        target.publish(PoseStamped(header=msg.header, pose=hand.wrist_pose))
                    return

        node.create_subscription(HandArray, 'hands', on_hands, 10)
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    finally:
        if rclpy.ok():
            rclpy.shutdown()


if __name__ == '__main__':
    main()
