"""
The rosbags typestore: ROS 2 Jazzy's standard messages plus hand_pose_msgs from their .msg.

Registering hand_pose_msgs from the package's own .msg files (never a copy) lets the writer
embed their definitions in the output bag, so any MCAP or rosbag2 reader decodes the hands
without this package installed.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

MSG_PACKAGE = 'hand_pose_msgs'
# The interface package beside this one in the source tree (hand_pose_ros/hand_pose_ros/bags).
_SOURCE_MSG_DIR = Path(__file__).resolve().parents[3] / MSG_PACKAGE / 'msg'


def msg_dir() -> Path:
    """Folder of hand_pose_msgs' .msg files: the installed share folder, else the sources."""
    try:
        from ament_index_python.packages import get_package_share_directory
        installed = Path(get_package_share_directory(MSG_PACKAGE)) / 'msg'
        if installed.is_dir():
            return installed
    except (ImportError, LookupError, ValueError):
        pass
    if _SOURCE_MSG_DIR.is_dir():
        return _SOURCE_MSG_DIR
    raise RuntimeError(f'cannot find the {MSG_PACKAGE} .msg files (not installed, and not at '
                       f'{_SOURCE_MSG_DIR})')


@lru_cache(maxsize=1)
def typestore() -> Any:
    """Jazzy's standard types and hand_pose_msgs (built once per process)."""
    from rosbags.typesys import get_types_from_msg, get_typestore, Stores
    store = get_typestore(Stores.ROS2_JAZZY)
    types: dict[str, Any] = {}
    for path in sorted(msg_dir().glob('*.msg')):
        types.update(get_types_from_msg(path.read_text(), f'{MSG_PACKAGE}/msg/{path.stem}'))
    store.register(types)
    return store
