"""The import graph: no import cycle anywhere, and the libraries keep their boundaries.

Every module under ``studio/``, ``pipelines/``, ``reward/`` and ``bandit/`` is parsed with
``ast`` (nothing is imported); every ``import`` statement counts, at module level or inside a
function (the heavy imports live in functions), relative ones resolved against the module's
package. ``from package import name`` is an edge to ``package.name`` when that is a module,
else to ``package``. (The command line used to register its commands through a cycle:
``studio.cli`` imported ``studio.commands.*``, which imported the app back.)

The studio's role packages depend one way (``LAYERS``), and a module over ``LONG`` lines
says why it stays whole (a docstring line starting with ``REASON``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from conftest import REPO

PACKAGES = ("studio", "pipelines", "reward", "bandit")
LIBRARIES = ("pipelines", "reward", "bandit")
#: The studio's roles, lowest layer first: a module imports from its own layer or earlier
#: ones only. The shared top-level utilities are the lowest; the package itself and
#: ``python -m studio`` the highest. (``Store.audience()`` imports ``inputs``: earlier.)
LAYERS = (
    ("errors", "files", "progress", "assets"),  # shared utilities (studio/*.py)
    ("inputs",),      # catalogs, user tables, audiences, user features, brand guidelines
    ("prompts",),     # prompt writers
    ("creatives",),   # render + publish, pools, outfits, published records
    ("store",),       # all SQL
    ("serving",),     # the selection service, its configuration, the HTTP API
    ("learning",),    # scoring, batch, arms, evolve (runs the service), offline evaluation
    ("simulation",),  # the hidden-truth world and everything judged in it
    ("ui", "cli"),    # the faces
    ("__init__", "__main__"),
)
#: Lines above which a module must say why it is not split, in a docstring line that
#: starts with ``REASON``.
LONG = 300
REASON = "Why this module is long:"


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the four packages."""
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (anywhere in its body)."""
    files = module_files()
    graph: dict[str, set[str]] = {name: set() for name in files}

    def known(name: str) -> str | None:  # the module itself, else its closest known parent
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[:len(base) - (node.level - 1)]
                    base = ".".join(base + ([node.module] if node.module else []))
                else:
                    base = node.module
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    targets.append(full if full in files else base)
            for target in targets:
                resolved = known(target)
                if resolved and resolved != name:
                    graph[name].add(resolved)
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(cycles)


def test_the_graph_sees_relative_function_level_and_package_imports():
    graph = import_graph()
    assert "studio.cli.errors" in graph["studio.cli.create"]  # `from .errors import ...`
    assert "studio.creatives.outfit" in graph["studio.cli.create"]  # inside the command function
    assert "studio.cli.main" in graph["studio.cli"]  # `from .main import app`
    assert {"studio.cli.create", "studio.cli.reward", "studio.cli.store"} <= graph["studio.cli.main"]
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_anywhere():
    assert import_cycles(import_graph()) == []


def test_no_command_module_imports_the_root_app():
    graph = import_graph()
    commands = [m for m in graph if m.startswith("studio.cli.") and m != "studio.cli.main"]
    for module in commands:
        assert not graph[module] & {"studio.cli", "studio.cli.main"}, module


def test_the_libraries_import_neither_studio_nor_each_other():
    graph = import_graph()
    crossing = sorted(
        (module, target) for module, targets in graph.items()
        for target in targets
        if module.split(".")[0] in LIBRARIES and target.split(".")[0] != module.split(".")[0])
    assert crossing == []



SQL = re.compile(r"\b(SELECT\s.+\sFROM|INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|"
                 r"CREATE\s+(TABLE|INDEX)|ALTER\s+TABLE|PRAGMA\s+\w+)\b", re.S)


def test_no_sql_outside_the_store():
    """The store owns all SQL: no string literal of any other module is a SQL statement."""
    offenders = []
    for path in sorted((REPO / "studio").rglob("*.py")) + [REPO / "app.py"]:
        relative = path.relative_to(REPO).as_posix()
        if relative.startswith("studio/store/"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
                offenders.append(f"{relative}:{node.lineno}")
    assert not offenders, f"SQL outside studio/store/: {offenders}"


def test_store_repository_mixins_do_not_shadow_each_other():
    """``Store`` inherits its repository methods from several mixins: a name defined in
    two of them would silently hide one (the first in the MRO wins)."""
    from studio.store.leases import Leases
    from studio.store.pools import Pools
    from studio.store.serving_log import ServingLog
    from studio.store.store import Store

    owners: dict[str, str] = {}
    for cls in (Store, Leases, Pools, ServingLog):
        for name in vars(cls):
            if name.startswith("__"):
                continue
            assert name not in owners, f"{name} is defined in both {owners[name]} and {cls.__name__}"
            owners[name] = cls.__name__


def layer(module: str) -> int:
    """The layer of a studio module: the index in ``LAYERS`` of its role (``studio.X...``)."""
    parts = module.split(".")
    role = parts[1] if len(parts) > 1 else "__init__"
    for index, roles in enumerate(LAYERS):
        if role in roles:
            return index
    raise AssertionError(f"{module} has no layer: add its role to LAYERS")


def upward_imports(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """(module, target) for every studio import of a later layer than the module's."""
    return sorted((module, target) for module, targets in graph.items()
                  if module.split(".")[0] == "studio"
                  for target in targets
                  if target.split(".")[0] == "studio" and layer(target) > layer(module))


def test_the_studio_roles_depend_one_way():
    graph = import_graph()
    assert upward_imports({"studio.inputs.a": {"studio.learning.b", "studio.errors"},
                           "studio.learning.b": {"studio.inputs.a", "studio.serving.c"},
                           "studio.serving.c": set()}) == [("studio.inputs.a", "studio.learning.b")]
    assert "studio.inputs.audience" in graph["studio.store.store"]  # lazily, an earlier layer
    assert upward_imports(graph) == []


def test_every_long_module_says_why_it_stays_whole():
    paths = sorted(module_files().values()) + sorted(REPO.glob("*.py"))
    silent = []
    for path in paths:
        text = path.read_text()
        lines = len(text.splitlines())
        if lines <= LONG:
            continue
        docstring = ast.get_docstring(ast.parse(text)) or ""
        if not any(line.startswith(REASON) and len(line) > len(REASON) + 20
                   for line in docstring.splitlines()):
            silent.append(f"{path.relative_to(REPO).as_posix()} ({lines} lines)")
    assert not silent, f"split these modules or say why they stay whole ({REASON!r}): {silent}"
