"""The one init/spin/shutdown sequence every executable of the package uses."""

from __future__ import annotations

from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node


def spin_node(make_node: Callable[[], Node], args: list[str] | None = None) -> None:
    """Run one node until Ctrl-C or shutdown.

    rclpy.init() with try/finally rather than the context-manager form, which needs Kilted:
    the package supports Humble. A ValueError while making the node (the nodes' way to reject
    parameters) ends the process with exit status 1 and the reason, not a traceback.
    """
    rclpy.init(args=args)
    node = None
    try:
        try:
            node = make_node()
        except ValueError as exc:  # a bad parameter: say which, without a traceback
            rclpy.logging.get_logger('hand_pose_ros').fatal(str(exc))
            raise SystemExit(1) from None
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
