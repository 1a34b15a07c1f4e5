"""
The thin rclpy layer: message conversions, the node, TF, markers, replay and demo.

Modules that only convert data (conversions, markers, frame_queue, diagnostics, parameters)
import ROS message packages lazily, so their logic is testable without a ROS install.
"""
