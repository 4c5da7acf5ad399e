"""The architecture of docs/architecture.md, enforced: import-linter's contracts (.importlinter:
project -> apps -> inference, inference and training free of the web layer), apps that use each
other only through named modules, and no import cycle in the project or in training/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("emotionsite", "recognition", "training")

# What an app may import of another app (the layers say which app may use which): its data, its
# services and selectors, and the few named modules listed here. Operations is infrastructure
# (metrics, logs, warm-up) every app may use as a whole.
PUBLIC = {
    "recognition.operations": None,
    "recognition.accounts": {"models", "services", "selectors", "ratelimit"},
    "recognition.analyses": {"models", "services", "selectors", "media", "results", "exports", "live_sessions"},
    "recognition.corrections": {"models", "services", "selectors", "items", "dataset"},
    "recognition.live": {"protocol"},
    "recognition.api": set(),
}


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    sys.path.insert(0, str(REPO))
    return grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True)


def app_of(module: str) -> str | None:
    return next((app for app in PUBLIC if module == app or module.startswith(app + ".")), None)


def test_import_linter_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_apps_use_each_other_only_through_named_modules(graph):
    wrong = []
    for importer in sorted(graph.modules):
        source = app_of(importer)
        if source is None:
            continue
        for imported in graph.find_modules_directly_imported_by(importer):
            target = app_of(imported)
            if target is None or target == source or PUBLIC[target] is None:
                continue
            public = {f"{target}.{name}" for name in PUBLIC[target]}
            if not any(imported == p or imported.startswith(p + ".") for p in public):
                wrong.append(f"{importer} -> {imported}")
    assert not wrong, "imports of another app's private modules:\n" + "\n".join(wrong)


def cycles(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    edges = {m: sorted(graph.find_modules_directly_imported_by(m) & modules) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(modules):
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            recurse = False
            for j in range(i, len(edges[node])):
                nxt = edges[node][j]
                if nxt not in index:
                    work.append((node, j + 1))
                    work.append((nxt, 0))
                    recurse = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if recurse:
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycles(graph, package):
    modules = {m for m in graph.modules if m == package or m.startswith(package + ".")}
    # A package's __init__ that only documents it imports nothing; one that re-exports would
    # make every child import "cycle" through it, so packages count as their own modules here.
    assert cycles(graph, modules) == []
