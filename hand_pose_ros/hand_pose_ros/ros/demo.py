"""Placeholder demo: proves the ROS 2 environment works (the node issue replaces it)."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    from importlib.metadata import PackageNotFoundError, version

    import rclpy

    distro = os.environ.get('ROS_DISTRO')
    rclpy_version = 'unknown'
    for dist in ('ros-rclpy', 'rclpy'):
        try:
            rclpy_version = version(dist)
            break
        except PackageNotFoundError:
            continue
    if not distro:
        # The PyPI wheels set no ROS_DISTRO; the wheel's name says which distro it is.
        for name in ('jazzy', 'kilted', 'humble'):
            try:
                version(f'ros-{name}-rclpy')
                distro = name
                break
            except PackageNotFoundError:
                continue
    print(f'ROS distro: {distro or "unknown"}, rclpy {rclpy_version} ({rclpy.__file__})')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
