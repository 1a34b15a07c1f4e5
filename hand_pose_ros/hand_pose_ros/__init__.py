"""Real-time hand tracking for ROS 2: a pure-Python core (`core`) and a thin ROS layer (`ros`)."""

__version__ = '0.1.0'
