"""
Demo, benchmark and evaluation tooling: installed, but not part of the pipeline or the node.

The `hand-pose-ros bench` verb (cli/main.py) and `make demo` run from here; nothing in core/,
ros/ or cli/detect.py imports this package.
"""
