"""The import rules of docs/layout.md for the single-file modules at the top of the tree (``make lint``).

import-linter (the ``[tool.importlinter]`` contracts) reads packages only, so it cannot see what
``connect.py`` or ``worker.py`` import; this check does, for them alone, with the same deny-list shape as
the contracts. Every import counts, including those inside functions and ``TYPE_CHECKING`` blocks.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = (
    "cli",
    "declarative",
    "activities",
    "workflows",
    "kube",
    "kruise",
    "connect",
    "codec",
    "watcher",
    "watcher_decisions",
    "worker",
    "starter",
)
TEST_ONLY = ("kubesim", "realk8s", "tests", "bench")

# module -> what it must not import (a package, a module, or a package's submodule).
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "codec": PRODUCT,
    "watcher_decisions": PRODUCT,
    "connect": (
        "cli",
        "declarative",
        "activities",
        "kube",
        "kruise",
        "watcher",
        "watcher_decisions",
        "worker",
        "starter",
    ),
    "watcher": ("cli", "declarative", "activities", "kruise", "connect", "worker", "starter"),
    "worker": ("cli", "declarative", "starter"),
    "starter": ("activities", "declarative", "watcher", "watcher_decisions", "worker"),
}


def imported(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import in the file."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
    return out


def covers(rule: str, module: str) -> bool:
    return module == rule or module.startswith(rule + ".")


def main() -> int:
    problems = []
    for source, denied in FORBIDDEN.items():
        for line, module in imported(ROOT / f"{source}.py"):
            for rule in (*denied, *TEST_ONLY):
                if covers(rule, module):
                    problems.append(f"{source}.py:{line}: imports {module} (docs/layout.md: not allowed)")
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
