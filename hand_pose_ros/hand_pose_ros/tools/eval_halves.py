"""
Tuning and report halves of `hand-pose-ros eval-hands` (the extra-hand checks' sets).

Every image of the sets the checks are judged on (pairs, false, twohands) falls in one of
two fixed halves: 'tune', where the checks' thresholds are chosen, and 'report', where they
are measured. The split is deterministic (a CRC-32 of the source image's name, or a motion
sequence's first and second half), so it never changes between runs or machines.

`kept` summarises a half: true second hands kept by a checked column, as a share of those
the same model finds with the checks off (column 'unchecked'), over the synthetic pairs (all
overlaps) and the real two-hand motion frames; and the false hands per column.
"""

from __future__ import annotations

import zlib

HALVES = ('tune', 'report')
# The parts that take --half; the others always use all their images.
HALVED_PARTS = ('pairs', 'false', 'twohands')
UNCHECKED = 'unchecked'


def in_half(name: str, half: str) -> bool:
    """
    Return True when the image `name` belongs to `half` ('tune', 'report' or 'all').

    A stable hash of the source image's name splits every set in two, so a check can be
    tuned on one half and reported on the other; the framings and crops of one source
    image share its name's half.
    """
    if half == 'all':
        return True
    return zlib.crc32(name.encode()) % 2 == (0 if half == 'tune' else 1)


def halves_of(choice: str) -> tuple[str, ...]:
    """Return the halves a --half choice runs: 'both' is the tuning then the report half."""
    return HALVES if choice == 'both' else (choice,)


def true_hands(results: dict) -> dict[str, int]:
    """Per 'column/model', true hands found over the pairs (every overlap) and twohands."""
    out: dict[str, int] = {}
    for row in results.get('pairs', {}).values():
        for key, value in row.items():
            if key != 'of':
                out[key] = out.get(key, 0) + value
    for key, value in results.get('twohands', {}).get('found', {}).items():
        out[key] = out.get(key, 0) + value
    return out


def kept(results: dict) -> dict:
    """
    Summarise one half's results: second hands kept and false hands per checked column.

    kept: true hands found by the column over those the same model's unchecked column finds
    (omitted without an unchecked column); false: hands on the hand-free images.
    """
    found = true_hands(results)
    false = results.get('false', {}).get('hands', {})
    out: dict = {}
    for key in sorted(set(found) | set(false)):
        column, model = key.split('/')
        if column == UNCHECKED:
            continue
        row: dict = {}
        base = found.get(f'{UNCHECKED}/{model}')
        if key in found:
            row['true_hands'] = found[key]
            if base:
                row['unchecked_true_hands'] = base
                row['kept'] = round(found[key] / base, 3)
        if key in false:
            row['false_hands'] = false[key]
        out[key] = row
    return out
