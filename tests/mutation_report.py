"""Kill rate per scope from mutmut's results (``make mutate`` prints it; figures in docs/testing.md).

mutmut 3 keeps one ``mutants/<path>.meta`` JSON per mutated file with the exit code of every mutant's
test run. A scope is a whole file (``FILES``), or a named group of functions of some files
(``GROUPS``: the controller *math* in kubesim's controller files without their plumbing; the watcher's
decisions without its informer and signalling). The kill rate counts killed and timed-out mutants over
all that were checked; "no tests" mutants count as survivors (no test reaches them).

    python -m tests.mutation_report            # table of every scope
    python -m tests.mutation_report --survivors workflows/plan.py
    python -m tests.mutation_report --names    # the mutant name globs ``make mutate`` runs
    python -m tests.mutation_report --names declarative/decisions.py   # of some scopes only
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "mutants"

# Whole files: every function is mutated and checked.
FILES = [
    "workflows/plan.py",
    "workflows/analysis_math.py",  # canary analysis: measurement and metric outcome math
    "declarative/decisions.py",  # the declarative controller's rules on a running rollout
]

# kubesim's deployment/replicaset controller math: the deployment controller's sizes, fenceposts,
# proportional scaling, rounding and ReplicaSet ordering (deployment_util.py), and the replicaset
# controller's pod readiness, availability and deletion ranking (podutil.py). The controllers' methods
# that apply these numbers through the store are not mutated (see docs/testing.md).
CONTROLLER_MATH: dict[str, list[str]] = {
    "kubesim/controllers/deployment_util.py": [
        "replicas_of",
        "scaled_value",
        "resolve_fenceposts",
        "max_surge",
        "max_unavailable",
        "round_half_away_from_zero",
        "rs_spec_replicas",
        "rs_status",
        "revision",
        "max_revision",
        "filter_active",
        "sum_spec",
        "sum_status",
        "sort_by_creation",
        "sort_by_size_newer",
        "sort_by_size_older",
        "sort_by_revision",
        "replicas_annotations_need_update",
        "new_rs_new_replicas",
        "is_saturated",
        "find_active_or_latest",
        "replica_set_fraction",
        "get_proportion",
        "proportional_sizes",
    ],
    "kubesim/controllers/podutil.py": [],  # every function: readiness, availability, deletion ranking
}
# The shared watcher's decisions: its pure rules (all of watcher_decisions.py) and the held state it
# keeps per Deployment (watcher.py's ``held_state`` and ``HeldState``), not the informer or the signalling.
WATCHER: dict[str, list[str]] = {
    "watcher_decisions.py": [],
    "watcher.py": ["held_state", "HeldState.differs", "HeldState.change"],
}
# Named groups of functions; an empty list is every function of the file.
GROUPS: dict[str, dict[str, list[str]]] = {
    "kubesim controller math (selected functions)": CONTROLLER_MATH,
    "watcher decisions (watcher_decisions.py + HeldState)": WATCHER,
}
KILLED = {"killed", "timeout", "caught by type check"}


def _module(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def _globs(path: str, funcs: list[str]) -> list[str]:
    """mutmut name globs of ``funcs`` of ``path`` (``Class.method`` for a method; none: all of it)."""
    module = _module(path)
    if not funcs:
        return [f"{module}.*"]
    out = []
    for func in funcs:
        if "." in func:
            cls, method = func.split(".", 1)
            out.append(f"{module}.x\u01c1{cls}\u01c1{method}__mutmut_*")
        else:
            out.append(f"{module}.x_{func}__mutmut_*")
    return out


def names(only: list[str] | None = None) -> list[str]:
    """mutmut name globs of every scope (or of the scopes named in ``only``: files or group names)."""
    out = []
    for path in FILES:
        if not only or path in only:
            out += _globs(path, [])
    for group, members in GROUPS.items():
        if not only or group in only or any(p in only for p in members):
            for path, funcs in members.items():
                out += _globs(path, funcs)
    return out


def _function(key: str) -> str:
    """``pkg.mod.xǁClassǁmethod__mutmut_3`` -> ``Class.method``; ``pkg.mod.x_func__mutmut_3`` -> ``func``."""
    name = key.rsplit("__mutmut_", 1)[0].rsplit(".", 1)[-1]
    return ".".join(name.split("ǁ")[1:]) if "ǁ" in name else re.sub(r"^x_", "", name)


def load(path: str) -> dict[str, str]:
    """``{mutant key: status}`` of one mutated file (empty when it was not mutated yet)."""
    meta = MUTANTS / f"{path}.meta"
    if not meta.exists():
        return {}
    data = json.loads(meta.read_text())
    return {k: status_by_exit_code[v] for k, v in data["exit_code_by_key"].items()}


def scopes() -> dict[str, dict[str, str]]:
    """Every scope the report shows: each mutated file, and each group of functions across files."""
    out: dict[str, dict[str, str]] = {}
    for meta in sorted(MUTANTS.rglob("*.py.meta")):
        path = str(meta.relative_to(MUTANTS))[: -len(".meta")]
        out[path] = load(path)
    for group, members in GROUPS.items():
        selected: dict[str, str] = {}
        for path, funcs in members.items():
            results = out.get(path, {})
            selected.update({k: s for k, s in results.items() if not funcs or _function(k) in funcs})
        if selected:
            out[group] = selected
    return out


def row(results: dict[str, str]) -> tuple[int, int, int, int, float]:
    """(mutants, checked, killed, survived incl. no tests, kill rate %)."""
    counts = Counter(results.values())
    checked = sum(n for s, n in counts.items() if s != "not checked")
    killed = sum(counts[s] for s in KILLED)
    survived = checked - killed
    return len(results), checked, killed, survived, (100.0 * killed / checked if checked else 0.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--survivors", metavar="SCOPE", help="list the surviving mutants of one scope")
    parser.add_argument(
        "--names", nargs="*", metavar="SCOPE", help="print the mutant name globs to run (of SCOPEs only)"
    )
    args = parser.parse_args(argv)
    if args.names is not None:
        print(" ".join(names(args.names)))
        return 0
    all_scopes = scopes()
    if not all_scopes:
        print("no mutmut results: run `make mutate` first", file=sys.stderr)
        return 1
    if args.survivors:
        for key, status in sorted(all_scopes.get(args.survivors, {}).items()):
            if status not in KILLED and status != "not checked":
                print(f"{status:10} {key}")
        return 0
    print("| scope | mutants | checked | killed | survived | kill rate |")
    print("|---|---|---|---|---|---|")
    for scope, results in all_scopes.items():
        total, checked, killed, survived, rate = row(results)
        shown = f"{rate:.1f}%" if checked else "not run"
        print(f"| {scope} | {total} | {checked} | {killed} | {survived} | {shown} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
