"""
The DDS transport configuration for camera images, named in one place.

Fast DDS's defaults lose about a third of 30 Hz 640x480 frames between two processes
(BENCHMARKS.md); config/fastdds_large_images.xml gives shared memory a segment sized for
images. The launch files, the demo and the load benchmark select it through the variables
below, unless the user has chosen a profile file of their own.
"""

from __future__ import annotations

from collections.abc import Mapping
import os
from typing import Any

PROFILE_FILE = 'fastdds_large_images.xml'
# Fast DDS 2.x reads the first, 3.x the second.
PROFILE_VARS = ('FASTRTPS_DEFAULT_PROFILES_FILE', 'FASTDDS_DEFAULT_PROFILES_FILE')
# Domain ids whose ports stay below Linux's ephemeral range (32768-60999): a DDS participant
# of a higher id needs ports that any socket opened meanwhile may hold (ROS 2 docs, 'The
# ROS_DOMAIN_ID'). 0 is left to the user's own ROS graph.
PRIVATE_DOMAINS = range(1, 102)


def private_domain_id(slot: int = 0, pid: int | None = None) -> int:
    """
    Return a domain id of PRIVATE_DOMAINS for one process's tests or benchmark runs.

    The process id spreads concurrent runs over the range; `slot` separates the users within
    one process (test modules), so processes one leaves behind never talk to the next.
    """
    pid = os.getpid() if pid is None else pid
    return PRIVATE_DOMAINS[(pid + 11 * slot) % len(PRIVATE_DOMAINS)]


def user_profile(env: Mapping[str, str] = os.environ) -> bool:
    """Tell whether the environment already names a Fast DDS profile file."""
    return any(env.get(v) for v in PROFILE_VARS)


def profile_env(path: Any, env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Return the variables that select the profile at path ({} when the user chose one)."""
    return {} if user_profile(env) else dict.fromkeys(PROFILE_VARS, str(path))


def profile_path(env: Mapping[str, str] = os.environ) -> str:
    """
    Return the profile file to name: the user's, else this package's installed one.

    Without an ament index entry for the package (an unusual install), the shell expression
    that finds it once installed stands in, as in the README.
    """
    for var in PROFILE_VARS:
        if env.get(var):
            return env[var]
    try:
        from ament_index_python.packages import get_package_share_directory
        share = get_package_share_directory('hand_pose_ros')
    except (ImportError, LookupError, ValueError):  # PackageNotFoundError is a KeyError
        return f'$(ros2 pkg prefix hand_pose_ros)/share/hand_pose_ros/config/{PROFILE_FILE}'
    return os.path.join(share, 'config', PROFILE_FILE)


def export_command(env: Mapping[str, str] = os.environ) -> str:
    """Return the shell command that selects the profile for the next process started."""
    path = profile_path(env)
    return 'export ' + ' '.join(f'{var}={path}' for var in PROFILE_VARS)


def launch_actions(context: Any) -> list:
    """Set the profile for the processes a launch file starts (an OpaqueFunction)."""
    from launch.actions import SetEnvironmentVariable
    from launch.substitutions import PathJoinSubstitution
    from launch_ros.substitutions import FindPackageShare

    if user_profile():
        return []
    xml = PathJoinSubstitution([FindPackageShare('hand_pose_ros'), 'config', PROFILE_FILE])
    return [SetEnvironmentVariable(v, xml) for v in PROFILE_VARS]
