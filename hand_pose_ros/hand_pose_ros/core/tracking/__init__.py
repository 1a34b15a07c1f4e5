"""
Hands over time: ids, duplicates, limits, loss hold, smoothing, skeleton and scale locks.

May import the shared vocabulary and the earlier stages (models, inputs, detection,
metric), never meaning.
"""
