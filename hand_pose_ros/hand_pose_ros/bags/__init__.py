"""
Recordings: rosbag2 bags in, the same results the node publishes written back as a bag.

Bags are read and written with `rosbags` (pure Python, both MCAP and sqlite3 storage, no ROS
install needed); messages are checked and converted by the node's own ros/msg_in.py and
ros/msg_out.py, so a frame is judged and published the same way live and offline.
"""
