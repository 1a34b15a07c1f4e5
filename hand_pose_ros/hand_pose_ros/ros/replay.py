"""
`replay`: publish a folder of images, a video file or a webcam as a ROS camera.

Publishes sensor_msgs/Image on `image_raw` (and CompressedImage on `image_raw/compressed`
when `compressed` is true) plus sensor_msgs/CameraInfo on `camera_info`, at a set rate,
looping; frames are read by core/frames.FrameSource, the reader detect and the tools use
too. Image and CameraInfo of one frame carry the same header (stamp = publish time,
frame_id = `frame_id`), as a camera driver does, so anything downstream can be tested
without a camera. Intrinsics come from a camera_calibration YAML (`camera_info_file`) or are
estimated from a horizontal field of view (`fov_deg`). Unreadable image files are skipped
with a warning (logged once, then at 10, 100, ... skips); a camera_info_file whose size does
not match the frames, or rate_hz <= 0, stops the node at start-up with the reason.

  ros2 run hand_pose_ros replay --ros-args -p source:=/path/to/frames -p rate_hz:=30
  ros2 run hand_pose_ros replay --ros-args -p source:=camera:0      # webcam 0
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import cv2
from hand_pose_ros.core.inputs.frames import FrameSource
from hand_pose_ros.core.results import CameraIntrinsics
from hand_pose_ros.ros.diagnostics import LogThrottle
import numpy as np
import yaml


def intrinsics_from_fov(width: int, height: int, fov_deg: float) -> CameraIntrinsics:
    """Pinhole intrinsics for a horizontal field of view, square pixels, centred."""
    if not 1.0 <= fov_deg <= 179.0:
        raise ValueError(f'fov_deg must be in [1, 179], got {fov_deg}')
    f = (width / 2.0) / math.tan(math.radians(fov_deg) / 2.0)
    return CameraIntrinsics(fx=f, fy=f, cx=width / 2.0, cy=height / 2.0)


def load_camera_info_yaml(path: str | Path) -> tuple[CameraIntrinsics, int, int]:
    """camera_calibration / camera_info_manager YAML -> (intrinsics, width, height)."""
    data = yaml.safe_load(Path(path).read_text())
    k = np.asarray(data['camera_matrix']['data'], dtype=np.float64).reshape(3, 3)
    d = np.asarray(data.get('distortion_coefficients', {}).get('data', []), dtype=np.float64)
    intr = CameraIntrinsics(
        fx=float(k[0, 0]), fy=float(k[1, 1]), cx=float(k[0, 2]), cy=float(k[1, 2]), d=d,
        distortion_model=str(data.get('distortion_model', 'plumb_bob')))
    return intr, int(data.get('image_width', 0)), int(data.get('image_height', 0))


def _node_class():
    from hand_pose_ros.ros import msg_out
    from rclpy.node import Node
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image
    from std_msgs.msg import Header

    class ReplayNode(Node):
        """Timer-driven publisher of one FrameSource as a camera."""

        def __init__(self, **kwargs: Any):
            super().__init__('replay', **kwargs)
            p = {
                'source': self.declare_parameter('source', '').value,
                'rate_hz': float(self.declare_parameter('rate_hz', 30.0).value),
                'loop': bool(self.declare_parameter('loop', True).value),
                'frame_id': self.declare_parameter('frame_id', 'camera_optical_frame').value,
                'camera_info_file': self.declare_parameter('camera_info_file', '').value,
                'fov_deg': float(self.declare_parameter('fov_deg', 60.0).value),
                'width': int(self.declare_parameter('width', 0).value),
                'height': int(self.declare_parameter('height', 0).value),
                'encoding': self.declare_parameter('encoding', 'bgr8').value,
                'compressed': bool(self.declare_parameter('compressed', False).value),
                'max_frames': int(self.declare_parameter('max_frames', 0).value),
            }
            if not p['source']:
                raise ValueError('parameter source is required (folder, video file or camera:N)')
            if not p['rate_hz'] > 0.0:
                raise ValueError(f"rate_hz must be > 0, got {p['rate_hz']}")
            if p['encoding'] not in ('bgr8', 'rgb8'):
                raise ValueError(f"encoding must be 'bgr8' or 'rgb8', got {p['encoding']!r}")
            self.p = p
            self.skipped = 0
            self.skip_log = LogThrottle()  # a folder of bad files logs every few s, not per file
            size = (p['width'], p['height']) if p['width'] > 0 and p['height'] > 0 else None
            self.source = FrameSource(p['source'], p['loop'], size)
            self.intr: CameraIntrinsics | None = None
            self.info_size: tuple[int, int] | None = None
            if p['camera_info_file']:
                self.intr, w, h = load_camera_info_yaml(p['camera_info_file'])
                self.info_size = (w, h) if w and h else None
            self.first = self._first_frame()
            if self.info_size and self.info_size != self.first_size:
                raise ValueError(f"camera_info_file {p['camera_info_file']} is for "
                                 f'{self.info_size[0]}x{self.info_size[1]}, the frames are '
                                 f'{self.first_size[0]}x{self.first_size[1]} (set width/height '
                                 'to resize them)')
            self.pub_image = self.create_publisher(Image, 'image_raw', 10)
            self.pub_jpeg = (self.create_publisher(CompressedImage, 'image_raw/compressed', 10)
                             if p['compressed'] else None)
            self.pub_info = self.create_publisher(CameraInfo, 'camera_info', 10)
            self.sent = 0
            self.timer = self.create_timer(1.0 / p['rate_hz'], self.tick)
            self.get_logger().info(
                f"replaying {p['source']} ({len(self.source)} frames) at {p['rate_hz']} Hz "
                f"as {p['frame_id']}")

        def _first_frame(self) -> np.ndarray:
            """Return the first readable frame, read now so that sizes are checked at start-up."""
            rgb = self.source.next()
            self._warn_unreadable()
            if rgb is None:
                raise ValueError(f"no readable frame in {self.p['source']}")
            self.first_size = (rgb.shape[1], rgb.shape[0])
            return rgb

        def _warn_unreadable(self) -> None:
            while self.source.unreadable:
                path = self.source.unreadable.pop(0)
                self.skipped += 1
                if self.skip_log.note('unreadable') is not None:
                    again = '' if self.skipped == 1 else f' ({self.skipped} skipped so far)'
                    self.get_logger().warning(f'skipping unreadable image {path}{again}')

        def tick(self) -> None:
            if self.p['max_frames'] and self.sent >= self.p['max_frames']:
                self.timer.cancel()
                return
            rgb = self.first if self.first is not None else self.source.next()
            self.first = None
            self._warn_unreadable()
            if rgb is None:
                self.get_logger().info('end of source')
                self.timer.cancel()
                return
            h, w = rgb.shape[:2]
            if (w, h) != self.first_size:  # a folder of mixed sizes: resize to the first
                rgb = cv2.resize(rgb, self.first_size, interpolation=cv2.INTER_AREA)
                h, w = rgb.shape[:2]
            if self.intr is None:
                self.intr = intrinsics_from_fov(w, h, self.p['fov_deg'])
            header = Header(frame_id=self.p['frame_id'])
            header.stamp = self.get_clock().now().to_msg()
            self.pub_info.publish(msg_out.intrinsics_to_camera_info(self.intr, w, h, header))
            self.pub_image.publish(msg_out.rgb_to_image(rgb, header, self.p['encoding']))
            if self.pub_jpeg is not None:
                self.pub_jpeg.publish(msg_out.rgb_to_compressed(rgb, header))
            self.sent += 1

        def destroy_node(self) -> None:
            self.source.close()
            super().destroy_node()

    return ReplayNode


def main(args: list[str] | None = None) -> None:
    from hand_pose_ros.ros.spin import spin_node
    spin_node(_node_class(), args)


if __name__ == '__main__':
    main()
