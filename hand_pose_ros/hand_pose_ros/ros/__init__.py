"""
The thin rclpy layer: it translates and nothing more.

Messages in (msg_in) and out (msg_out), the node's parameters, topics, TF and markers,
replay and the retargeting node.

What a hand means, whether it is valid and where it is belong to the core; this layer
checks each message once (on receipt) and converts. Modules that only convert data
(msg_in, msg_out, markers, frame_queue, diagnostics, parameters) import ROS message
packages lazily, so their logic is testable without a ROS install.
"""
