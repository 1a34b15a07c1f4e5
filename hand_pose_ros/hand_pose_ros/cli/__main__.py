"""`python -m hand_pose_ros.cli ...` runs the `hand-pose-ros` command."""

import sys

from hand_pose_ros.cli.main import main

sys.exit(main())
