"""A camera driver stand-in for DDS tests: raw images and their CameraInfo at a fixed rate.

Run as a separate process (a camera driver is one), with whatever Fast DDS profile its
environment selects:

  python camera_publisher.py --width 640 --height 480 --rate 30 --seconds 60

It publishes sensor_msgs/Image on `image_raw` (rgb8, sensor_data QoS as drivers do) and
sensor_msgs/CameraInfo with the same header on `camera_info` (reliable, so that it arrives
where the image may not), for at most `--seconds`, then exits: a test that fails never
leaves it running for long.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--width', type=int, default=640)
    parser.add_argument('--height', type=int, default=480)
    parser.add_argument('--rate', type=float, default=30.0)
    parser.add_argument('--seconds', type=float, default=60.0)
    args = parser.parse_args()

    from hand_pose_ros.core.results import CameraIntrinsics
    from hand_pose_ros.ros import msg_out
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import Header

    rclpy.init()
    node = rclpy.create_node('camera_publisher')
    pub_image = node.create_publisher(Image, 'image_raw', qos_profile_sensor_data)
    pub_info = node.create_publisher(CameraInfo, 'camera_info', 10)
    w, h = args.width, args.height
    intr = CameraIntrinsics(fx=0.9 * w, fy=0.9 * w, cx=w / 2, cy=h / 2)
    rgb = np.zeros((h, w, 3), np.uint8)  # content does not matter to the transport
    image = msg_out.rgb_to_image(rgb, Header(frame_id='camera'))
    period = 1.0 / args.rate
    start = next_at = time.monotonic()
    try:
        while time.monotonic() - start < args.seconds:
            header = Header(frame_id='camera')
            header.stamp = node.get_clock().now().to_msg()
            image.header = header
            pub_info.publish(msg_out.intrinsics_to_camera_info(intr, w, h, header))
            pub_image.publish(image)
            next_at += period
            time.sleep(max(0.0, next_at - time.monotonic()))  # the camera's frame clock
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
