"""
One hand from several calibrated cameras: calibrations, association, triangulation, tracks.

Each camera's hands (2D keypoints, as the earlier stages find them) are associated across
views by geometry, triangulated in the calibration's common (world) frame, tracked with ids,
smoothed and given a locked skeleton; a hand only one camera sees falls back to that
camera's PnP at the fused track's measured scale.

Comes after tracking: may import the shared vocabulary and the earlier stages (models,
inputs, detection, metric, tracking), never meaning.
"""
