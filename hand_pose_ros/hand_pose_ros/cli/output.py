"""
What every JSON-writing verb does around its run: errors as exit codes, then the document.

Bad input (files, values) exits 2 and the environment (models, CUDA, optional packages)
exits 1, each with one line naming the verb; `-` writes the document to stdout, anything
else to that file with a one-line summary on stderr, so a pipeline gets only JSON.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
import json
from pathlib import Path
import sys
from typing import Any, TypeVar

T = TypeVar('T')


def run_or_exit(parser: argparse.ArgumentParser, verb: str,
                run: Callable[[argparse.Namespace], T], args: argparse.Namespace) -> T:
    """Return run(args), or exit with the verb's error line (2: bad input, 1: environment)."""
    try:
        return run(args)
    except ValueError as exc:  # bad input: files, values
        parser.exit(2, f'hand-pose-ros {verb}: error: {exc}\n')
    except RuntimeError as exc:  # the environment: models, CUDA, optional packages
        parser.exit(1, f'hand-pose-ros {verb}: error: {exc}\n')


def write_json(path: Path, document: dict[str, Any], summary: str) -> None:
    """Write the document to `path` ('-' = stdout), the summary to stderr."""
    text = json.dumps(document)
    if str(path) == '-':
        sys.stdout.write(text + '\n')
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(f'{summary} -> {path}', file=sys.stderr)
