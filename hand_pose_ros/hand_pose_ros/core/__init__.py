"""Pure-Python hand tracking core: image in, hands out. Never imports rclpy."""
