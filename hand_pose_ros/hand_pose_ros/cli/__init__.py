"""The `hand-pose-ros` command line tool (offline detection, benchmarks, model fetching)."""
