"""The house stays as built: every import runs down the layers, and nothing imports in a circle.

docs/architecture.md draws the layers; this test reads every module's imports (function-local
ones and those under TYPE_CHECKING included, since they are hidden circles all the same) and
fails on any import that runs against them:

    watcher/*.py (app, cli, init...)      the roof: wiring and commands
    watcher/web/                          the contacts' page
    watcher/engine/                       events in, incidents out; audit
    watcher/supervision/                  is the watch working
    detectors/ | connectors/ | playbooks/ side by side, never importing each other
    watcher/core/                         types, config, clock, store, evidence

Inside connectors/, one platform's package never imports another's; all may use the shared
modules at connectors/ itself. No module imports itself back through others (file level) and
no package through other packages (folder level).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("watcher", "connectors", "detectors", "playbooks")

# Lowest first. Prefixes in one tuple are siblings: same height, never importing each other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("watcher.core",),
    ("detectors", "connectors", "playbooks"),
    ("watcher.supervision",),
    ("watcher.engine",),
    ("watcher.web",),
    ("watcher",),
)
PLATFORMS = "connectors"  # its subpackages are siblings of each other


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, name: str) -> set[str]:
    """Every project module `path` imports, wherever the import statement stands."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            # `from watcher.core import store` imports the module watcher.core.store
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {m for m in found if m.split(".")[0] in PACKAGES}


def project_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        graph[name] = {m for m in imports_of(path, name) if m in modules and m != name}
    return graph


def place(module: str) -> tuple[int, str]:
    """(layer height, sibling group) of a module: the longest matching prefix wins."""
    best: tuple[int, str, int] | None = None
    for height, group in enumerate(LAYERS):
        for prefix in group:
            if (module == prefix or module.startswith(prefix + ".")) and \
                    (best is None or len(prefix) > best[2]):
                best = (height, prefix, len(prefix))
    assert best is not None, f"{module} is in no layer: add it to LAYERS and the docs"
    return best[0], best[1]


def platform(module: str) -> str | None:
    """connectors.telegram.send -> connectors.telegram; connectors.base -> None."""
    parts = module.split(".")
    if parts[0] != PLATFORMS or len(parts) < 3:
        return None
    return ".".join(parts[:2])


def violations(graph: Mapping[str, Iterable[str]]) -> list[str]:
    found = []
    for module, targets in graph.items():
        height, group = place(module)
        for target in targets:
            t_height, t_group = place(target)
            if t_height > height:
                found.append(f"{module} imports {target}, a higher layer")
            elif t_height == height and t_group != group:
                found.append(f"{module} imports {target}, a sibling at the same height")
            elif platform(module) and platform(target) and platform(module) != platform(target):
                found.append(f"{module} imports {target}, another platform's package")
    return sorted(found)


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan), i.e. import circles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    for node in list(graph):
        if node not in index:
            visit(node)
    return found


def package_graph(graph: Mapping[str, Iterable[str]]) -> dict[str, set[str]]:
    """Folder level: a module stands for the folder (package) it lives in."""
    modules = set(graph)

    def folder(module: str) -> str:
        return module if (ROOT / module.replace(".", "/")).is_dir() or module not in modules \
            else module.rpartition(".")[0]

    out: dict[str, set[str]] = {}
    for module, targets in graph.items():
        here = folder(module)
        out.setdefault(here, set()).update(folder(t) for t in targets if folder(t) != here)
    return out


def test_every_import_runs_down_the_layers() -> None:
    assert violations(project_graph()) == []


def test_no_import_circle_between_files() -> None:
    assert cycles(project_graph()) == []


def test_no_import_circle_between_folders() -> None:
    assert cycles(package_graph(project_graph())) == []


def test_the_checks_catch_what_they_are_for() -> None:
    """The checker itself: each kind of bad import is reported (so the tests above can fail)."""
    graph = {
        "watcher.core.store": {"watcher.engine.engine"},       # the floor reaching up
        "detectors.phrase": {"connectors.base"},                # sibling to sibling
        "connectors.telegram.send": {"connectors.signal.client"},  # platform to platform
        "connectors.signal.client": {"connectors.common"},       # allowed
        "watcher.engine.engine": {"watcher.core.store"},         # allowed
        "connectors.common": set(),
    }
    assert violations(graph) == [
        "connectors.telegram.send imports connectors.signal.client, another platform's package",
        "detectors.phrase imports connectors.base, a sibling at the same height",
        "watcher.core.store imports watcher.engine.engine, a higher layer",
    ]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_layers_are_the_ones_the_docs_draw() -> None:
    doc = (ROOT / "docs" / "architecture.md").read_text()
    for group in LAYERS:
        for prefix in group:
            assert f"{prefix.replace('.', '/')}/" in doc, prefix


def calls_of(attribute: str) -> list[str]:
    """Every module that calls `<something>.<attribute>(...)`."""
    found = set()
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                        and node.func.attr == attribute:
                    found.add(module_name(path))
    return sorted(found)


def test_one_place_queues_a_message_for_a_contact() -> None:
    """playbooks/outbox.py: only configured contacts at their own addresses are queued."""
    assert calls_of("enqueue") == ["playbooks.outbox"]


SQL_CALLS = ("execute", "executemany", "executescript")
CORE = "watcher.core"


def reads_conn(node: ast.AST) -> bool:
    """`x.conn`, or `getattr(x, "conn")`."""
    if isinstance(node, ast.Attribute):
        return node.attr == "conn"
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
        and node.func.id == "getattr" \
        and any(isinstance(a, ast.Constant) and a.value == "conn" for a in node.args)


def sql_outside_core(sources: Mapping[str, str]) -> list[str]:
    """Module name -> source: every place outside watcher/core that runs SQL itself or reaches
    for a store's connection (`.conn`, however it is spelt)."""
    found = []
    for name, text in sources.items():
        if name == CORE or name.startswith(CORE + "."):
            continue
        for node in ast.walk(ast.parse(text, name)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in SQL_CALLS:
                found.append(f"{name}:{node.lineno} calls .{node.func.attr}()")
            elif isinstance(node, ast.expr) and reads_conn(node):
                found.append(f"{name}:{node.lineno} reads .conn")
    return sorted(found)


def test_the_store_is_the_only_sql() -> None:
    """watcher/core (store.py, evidence.py) holds every query; the rest asks the Store."""
    sources = {module_name(p): p.read_text()
               for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    assert sql_outside_core(sources) == []


def test_the_sql_check_catches_what_it_is_for() -> None:
    sources = {
        "watcher.web.views": "rows = self.store.conn.execute('SELECT 1').fetchall()\n",
        "playbooks.drills": "store.db.executemany('UPDATE x', [])\n",
        "watcher.cli": "conn = getattr(store, 'conn')\nconn.executescript('DROP TABLE x')\n",
        "watcher.core.store": "self.conn.execute('SELECT 1')\n",     # allowed: the store
        "watcher.core.evidence": "conn.execute('SELECT 1')\n",       # allowed: its table module
        "connectors.telegram.send": "await bot.send_message(chat, text)\n",  # allowed
    }
    assert sql_outside_core(sources) == [
        "playbooks.drills:1 calls .executemany()",
        "watcher.cli:1 reads .conn",
        "watcher.cli:2 calls .executescript()",
        "watcher.web.views:1 calls .execute()",
        "watcher.web.views:1 reads .conn",
    ]
