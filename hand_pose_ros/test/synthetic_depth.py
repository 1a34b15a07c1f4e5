"""The synthetic depth renderer the metric 3D tests use; it lives in the package
(hand_pose_ros/tools/synthetic_depth.py) so the evaluation tool needs no test folder."""

from hand_pose_ros.tools.synthetic_depth import (  # noqa: F401 - re-exported for the tests
    forearm,
    project,
    render_depth,
    to_16uc1,
)
