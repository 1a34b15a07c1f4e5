"""
Where the hand is in metres: camera models, PnP, depth, and the per-hand scale.

Turns a hand's 2D keypoints and hand-centric world landmarks into the camera frame, with
the scale from depth, the user or the model. May import the shared vocabulary, models,
inputs and detection; tracking decides which scale a track keeps and calls in here.
"""
