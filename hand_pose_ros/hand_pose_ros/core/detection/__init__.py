"""
Finding hands in one image: palm detection, ROIs, tiles, the landmark read, body ROIs.

The geometry modules (anchors, roi, palm, tiles, landmarks) are pure maths on images and
coordinates, shared by every runtime, so they never import a runtime. `candidates` and
`reader` drive the runtime calls; `body` runs the body networks through the same runtime
interface. May import the shared vocabulary, models and inputs.
"""
