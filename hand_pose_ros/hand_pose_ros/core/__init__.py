"""
Pure-Python hand tracking core: image in, hands out. Never imports rclpy.

The folders are the pipeline's stages, in the order a frame meets them; a stage may import
the shared vocabulary (anatomy, results, settings, options) and the stages before it, never
one after it (test_import_graph.py enforces this):

models -> inputs -> detection -> metric -> tracking -> fusion -> meaning

`fusion` joins several calibrated cameras' hands into one world-frame hand (after each
camera's own tracking, before meaning). `tracker.HandTracker` orchestrates one camera's
stages; `mediapipe_tracker` is the official pipeline behind the same
`tracker_protocol.Tracker` interface, for reference runs.
"""
