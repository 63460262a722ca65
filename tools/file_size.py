"""Fail when a product Python file is longer than the limit (``make lint``).

Product files are every tracked ``*.py`` outside ``tests/`` and ``bench/``. A file named in the allowlist
(``tools/file_size_allowlist.txt``, one path a line, ``#`` comments) may stay over the limit until it is
split; the check also fails when an allowlisted file is back under the limit, so the list only shrinks.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

LIMIT = 500
ROOT = Path(__file__).resolve().parent.parent
ALLOWLIST = ROOT / "tools" / "file_size_allowlist.txt"
EXCLUDED = ("tests/", "bench/")


def product_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, check=True, capture_output=True, text=True)
    return [p for p in out.stdout.split() if not p.startswith(EXCLUDED)]


def allowlisted() -> set[str]:
    lines = ALLOWLIST.read_text().splitlines() if ALLOWLIST.exists() else []
    return {line.split("#", 1)[0].strip() for line in lines} - {""}


def main() -> int:
    allowed = allowlisted()
    problems = []
    for path in product_files():
        file = ROOT / path
        if not file.exists():  # deleted in the work tree, not yet in the index
            continue
        lines = len(file.read_text().splitlines())
        if lines > LIMIT and path not in allowed:
            problems.append(f"{path}: {lines} lines (limit {LIMIT}); split it into cohesive modules")
        elif lines <= LIMIT and path in allowed:
            problems.append(f"{path}: {lines} lines, now under the limit; remove it from {ALLOWLIST.name}")
    problems += [
        f"{path}: in {ALLOWLIST.name} but not a product file; remove it"
        for path in sorted(allowed - set(product_files()))
    ]
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
