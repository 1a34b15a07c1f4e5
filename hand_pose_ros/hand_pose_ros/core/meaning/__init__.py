"""
What a hand means: gestures, teleop signals, retargeting views and robot hands.

Gestures and continuous teleop signals, the retargeting views (MANO keypoints, joint
angles, palm normal) and robot-hand retargeting.

The last stage: may import every earlier one, and nothing imports it but the orchestrator,
the ROS layer and the tools.
"""
