"""The import structure of `beatra/`, read from the source (every import statement, including
function-local and TYPE_CHECKING ones): no cycle among modules, and the layers below.

    entry points    beatra (create_app), beatra.cli, beatra.devserver, beatra.tasks.worker,
                    beatra.models (every table), beatra.runtime (the composition root)
    api             beatra.api.*: HTTP only; reads the built runtime (beatra.runtime)
    features        accounts, auth, chat, idempotency, images, media_inputs, music, ratelimit,
                    tasks, webhooks
    services        billing, catalog, net, providers, storage
    core            config, errors, extensions, ids, localprocs, logs, request_id, timeutil

A layer imports only from the layers below it (entry points from anything); the sandbox
(an offline upstream) imports nothing of beatra outside itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "beatra"

ENTRY = {"beatra", "beatra.cli", "beatra.devserver", "beatra.tasks.worker", "beatra.models",
         "beatra.runtime", "beatra.ops", "beatra.gunicorn_errors", "beatra.gunicorn_writes",
         "beatra.gunicorn_drain"}
LAYERS = [  # top to bottom
    {"beatra.api", "beatra.console"},
    {"beatra.accounts", "beatra.auth", "beatra.chat", "beatra.idempotency", "beatra.images",
     "beatra.media_inputs", "beatra.music", "beatra.ratelimit", "beatra.tasks",
     "beatra.webhooks"},
    {"beatra.billing", "beatra.catalog", "beatra.net", "beatra.providers", "beatra.storage"},
    {"beatra.config", "beatra.cooperative", "beatra.errors", "beatra.extensions",
     "beatra.fastsql", "beatra.groupcommit", "beatra.ids",
     "beatra.localprocs",
     "beatra.logs", "beatra.request_id", "beatra.timeutil", "beatra.metrics",
     "beatra.accesslog", "beatra.jsonsafe", "beatra.pagination", "beatra.devenv"},
]
# Known exceptions, each with its reason. Keep this list short.
ALLOWED = {
    # the flask-smorest Api object is built with the apispec plugin that documents headers
    ("beatra.extensions", "beatra.api.docs"),
    # the catalog parses each model's chat policy (a plain dataclass kept beside its rules)
    ("beatra.catalog.loader", "beatra.chat.policy"),
    # key budgets: the wallet's conditional UPDATE of the key row (api_keys) runs in the same
    # transaction as the balance's, and usage groups by key; both need the key table
    ("beatra.billing.wallet", "beatra.accounts.models"),
    ("beatra.billing.usage", "beatra.accounts.models"),
}


def _modules() -> dict[str, Path]:
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        mods[".".join(parts)] = path
    return mods


MODULES = _modules()


def _targets(module: str, path: Path, node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:  # relative: from the module's package, `level - 1` packages up
            package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
            package = package[: len(package) - node.level + 1]
            base = ".".join([*package, base] if base else package)
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                 for alias in node.names]
    out = []
    for name in names:
        while name not in MODULES and "." in name:
            name = name.rsplit(".", 1)[0]
        if name in MODULES and name != module:
            out.append(name)
    return out


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                targets.update(_targets(module, path, node))
        graph[module] = targets
    return graph


GRAPH = _graph()


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _layer(module: str) -> int | None:
    """Index in LAYERS (0 = top); None for entry points and the sandbox."""
    if module in ENTRY or module == "beatra.sandbox" or module.startswith("beatra.sandbox."):
        return None
    for depth, members in enumerate(LAYERS):
        if any(module == m or module.startswith(m + ".") for m in members):
            return depth
    raise AssertionError(f"{module} is in no layer: add it to LAYERS in {__file__}")


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    assert _cycles(GRAPH) == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_respect_the_layers(module):
    mine = _layer(module)
    sandbox = module.startswith("beatra.sandbox")
    wrong = []
    for target in sorted(GRAPH[module]):
        if (module, target) in ALLOWED:
            continue
        if sandbox:
            if not target.startswith("beatra.sandbox"):
                wrong.append(target)
            continue
        theirs = _layer(target)
        if target == "beatra.runtime" and mine == 0:
            continue  # the api layer reads the built runtime (current_runtime)
        if target.startswith("beatra.sandbox") or (theirs is None and mine is not None):
            wrong.append(target)  # only entry points use the sandbox or another entry point
        elif mine is not None and theirs is not None and theirs < mine:
            wrong.append(target)
    assert wrong == [], f"{module} imports from a higher layer: {wrong}"
