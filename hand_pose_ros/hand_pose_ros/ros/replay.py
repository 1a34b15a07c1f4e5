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

Its parameters are `ReplayOptions`, defined as the tracker's and the node's settings are
(core/settings.py): declared with descriptors by parameters.declare_all and listed in
docs/parameters.md from the same definitions.

  ros2 run hand_pose_ros replay --ros-args -p source:=/path/to/frames -p rate_hz:=30
  ros2 run hand_pose_ros replay --ros-args -p source:=camera:0      # webcam 0
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
import math
from pathlib import Path
from typing import Any

import cv2
from hand_pose_ros.core.inputs.frames import FrameSource
from hand_pose_ros.core.results import CameraIntrinsics
from hand_pose_ros.core.settings import check_all, option, ROS, specs
from hand_pose_ros.ros.diagnostics import LogThrottle
import numpy as np
import yaml

_ROS_ONLY = (ROS,)
ENCODINGS = ('bgr8', 'rgb8')


@dataclass(frozen=True)
class ReplayOptions:
    """replay's parameters, all read at start-up (a change needs a restart)."""

    source: str = option(
        '', 'Folder of images (recursive, sorted), a video file, or camera:N (webcam N); '
        'required.', live=False, expose=_ROS_ONLY)
    rate_hz: float = option(
        30.0, 'Publishing rate, Hz (must be > 0).', live=False, low=0.0, high=1000.0,
        expose=_ROS_ONLY)
    loop: bool = option(
        True, 'Start again at the end of a folder or video.', live=False, expose=_ROS_ONLY)
    frame_id: str = option(
        'camera_optical_frame', 'frame_id of the images and CameraInfo.', live=False,
        expose=_ROS_ONLY)
    camera_info_file: str = option(
        '', "camera_calibration YAML with the intrinsics (its size must be the frames'); "
        "'' = estimated from fov_deg.", live=False, expose=_ROS_ONLY)
    fov_deg: float = option(
        60.0, 'Horizontal field of view, degrees, used when there is no camera_info_file.',
        live=False, low=1.0, high=179.0, expose=_ROS_ONLY)
    width: int = option(
        0, 'Resize frames to width x height (both > 0); 0 = as read.', live=False, low=0,
        high=32767, expose=_ROS_ONLY)
    height: int = option(
        0, 'Resize frames to width x height (both > 0); 0 = as read.', live=False, low=0,
        high=32767, expose=_ROS_ONLY)
    encoding: str = option(
        'bgr8', 'Encoding of the published Image.', live=False, choices=ENCODINGS,
        expose=_ROS_ONLY)
    compressed: bool = option(
        False, 'Also publish JPEG on image_raw/compressed.', live=False, expose=_ROS_ONLY)
    max_frames: int = option(
        0, 'Stop after this many frames; 0 = no limit.', live=False, low=0,
        high=2_147_483_647, expose=_ROS_ONLY)
    stamp_start_s: float = option(
        0.0, 'Stamp frame i as stamp_start_s + i / rate_hz (seconds since the epoch) and '
        'publish it at that time, so that several replays of synchronized videos give frame i '
        'one stamp in every camera and deliver it together (multiview.launch.py); a replay '
        'started late begins at the next frame due; 0 = stamp each frame with its publish '
        'time.', live=False,
        low=0.0, high=1e10, expose=_ROS_ONLY)

    def __post_init__(self) -> None:
        check_all(self)
        if not self.rate_hz > 0.0:  # the range admits 0 so that this reason is the one given
            raise ValueError(f'rate_hz must be > 0, got {self.rate_hz}')


REPLAY_SPECS = specs(ReplayOptions)
_BY_NAME = {s.name: s for s in REPLAY_SPECS}


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
    from hand_pose_ros.ros import msg_out, parameters
    from rcl_interfaces.msg import SetParametersResult
    from rclpy.node import Node
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image
    from std_msgs.msg import Header

    class ReplayNode(Node):
        """Timer-driven publisher of one FrameSource as a camera."""

        def __init__(self, **kwargs: Any):
            super().__init__('replay', **kwargs)
            self.options = ReplayOptions(**parameters.declare_all(self, REPLAY_SPECS))
            p = dataclasses.asdict(self.options)
            if not p['source']:
                raise ValueError('parameter source is required (folder, video file or camera:N)')
            self.p = p
            self.add_on_set_parameters_callback(self._on_set_parameters)
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
            self.sent = 0  # the index of the next frame (its stamp with stamp_start_s)
            self.published = 0
            if p['stamp_start_s'] > 0.0:
                self.timer = self.create_timer(self._skip_to_next_slot(), self._first_slot)
            else:
                self.timer = self.create_timer(1.0 / p['rate_hz'], self.tick)
            self.get_logger().info(
                f"replaying {p['source']} ({len(self.source)} frames) at {p['rate_hz']} Hz "
                f"as {p['frame_id']}")

        @staticmethod
        def _on_set_parameters(params: list[Any]) -> Any:
            """Refuse changes with the reason: every setting here is read at start-up."""
            reason = parameters.first_rejection(params, _BY_NAME)
            return SetParametersResult(successful=reason is None, reason=reason or '')

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

        def _next_frame(self) -> np.ndarray | None:
            """Return the next frame: the one read at start-up first, then the source's."""
            rgb = self.first if self.first is not None else self.source.next()
            self.first = None
            return rgb

        def _skip_to_next_slot(self) -> float:
            """
            Drop the frames whose publish time has passed; seconds until the next one's.

            Synchronized cameras expose together, and so do these replays: each frame goes
            out at its stamp, so replays that a loaded machine started seconds apart still
            deliver frame i of every camera at once (a node that keeps each camera's newest
            frame then gets the same instant from all of them), as a triggered rig does.
            """
            rate = self.p['rate_hz']
            now_s = self.get_clock().now().nanoseconds * 1e-9
            due = max(0, math.ceil((now_s - self.p['stamp_start_s']) * rate))
            length = len(self.source)
            # A looping source is read only to frame due mod its length (a start long ago).
            reads = due % length if self.p['loop'] and length else due
            for _ in range(reads):
                if self._next_frame() is None:
                    break
            self.sent = due
            return max(self.p['stamp_start_s'] + self.sent / rate - now_s, 1e-3)

        def _first_slot(self) -> None:
            """Publish the first frame at its stamp, then every 1 / rate_hz after it."""
            self.destroy_timer(self.timer)
            self.timer = self.create_timer(1.0 / self.p['rate_hz'], self.tick)
            self.tick()

        def tick(self) -> None:
            if self.p['max_frames'] and self.published >= self.p['max_frames']:
                self.timer.cancel()
                return
            rgb = self._next_frame()
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
            if self.p['stamp_start_s'] > 0.0:
                header.stamp = msg_out.ns_to_stamp(
                    round(self.p['stamp_start_s'] * 1e9) + round(self.sent * 1e9
                                                                 / self.p['rate_hz']))
            else:
                header.stamp = self.get_clock().now().to_msg()
            self.pub_info.publish(msg_out.intrinsics_to_camera_info(self.intr, w, h, header))
            self.pub_image.publish(msg_out.rgb_to_image(rgb, header, self.p['encoding']))
            if self.pub_jpeg is not None:
                self.pub_jpeg.publish(msg_out.rgb_to_compressed(rgb, header))
            self.sent += 1
            self.published += 1

        def destroy_node(self) -> None:
            self.source.close()
            super().destroy_node()

    return ReplayNode


def main(args: list[str] | None = None) -> None:
    from hand_pose_ros.ros.spin import spin_node
    spin_node(_node_class(), args)


if __name__ == '__main__':
    main()
