"""ament_python build of hand_pose_ros (colcon in a ROS workspace, or pip install -e)."""

from glob import glob
from pathlib import Path
import re

from setuptools import find_packages, setup

PACKAGE = 'hand_pose_ros'
HERE = Path(__file__).resolve().parent
# One source of truth for the version: package.xml.
VERSION = re.search(r'<version>([^<]+)</version>', (HERE / 'package.xml').read_text()).group(1)


def _files(pattern: str) -> list[str]:
    """Paths relative to this folder: setuptools rejects absolute data_files sources."""
    return sorted(str(Path(p).relative_to(HERE)) for p in glob(str(HERE / pattern)))


setup(
    name=PACKAGE,
    version=VERSION,
    packages=find_packages(where=str(HERE), exclude=['test', 'test.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', [f'resource/{PACKAGE}']),
        (f'share/{PACKAGE}', ['package.xml']),
        (f'share/{PACKAGE}/launch', _files('launch/*.py')),
        (f'share/{PACKAGE}/config',
         _files('config/*.yaml') + _files('config/*.rviz') + _files('config/*.xml')),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='hand_pose_ros maintainers',
    maintainer_email='maintainer@hand-pose-ros.dev',
    description='Real-time MediaPipe-class hand tracking for ROS 2.',
    license='Apache-2.0',
    tests_require=['pytest'],
    entry_points={
        'console_scripts': [
            'hand-pose-ros = hand_pose_ros.cli.main:main',
            'hand_pose_node = hand_pose_ros.ros.node:main',
            'hand_pose_lifecycle_node = hand_pose_ros.ros.lifecycle_node:main',
            'hand_retarget_node = hand_pose_ros.ros.retarget_node:main',
            'replay = hand_pose_ros.ros.replay:main',
            'calibration_tf = hand_pose_ros.ros.calibration_tf:main',
        ],
    },
)
