"""The import graph's direction, read from the source with `ast` (nothing is imported, so no side effects).

- Layers, top down: retarget_launcher (the `retarget` command: the app or the CLI) > gui/, training/ > retarget/.
  A layer imports only the layers below it, deferred or not, with no exception: retarget/ imports nothing of
  gui/, training/ or the launcher; gui/ and training/ never import the launcher.
- No private name (leading underscore) is imported across packages.
- retarget's top-level modules and subpackages import each other without cycles.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("retarget", "gui", "training", "retarget_launcher")
# Each package's layer: an import may only go to a lower one (or within its own package).
LAYER = {"retarget": 0, "gui": 1, "training": 1, "retarget_launcher": 2}
KNOWN_PART_CYCLES: set = set()  # none: the shared vocabulary (blendshape names, media kinds) is its own leaf layer
KNOWN_MODULE_CYCLES: set = set()  # none: the test-model writers left face/ (weights.test_face_models)


@dataclass(frozen=True)
class Import:
    importer: str  # dotted module name of the file holding the import
    module: str  # absolute dotted module imported (for `from M import n`: M, or M.n when that is a module)
    names: tuple[str, ...]  # the names taken from `module` (empty for `import M`)
    line: int
    deferred: bool  # inside a function: runs only when the function is called


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def source_modules(root: Path = ROOT) -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            found[module_name(path, root)] = path
    return found


def _absolute(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(path: Path, name: str, known: set[str]) -> list[Import]:
    """Every import statement in the file, and importlib.import_module/__import__ calls with a literal name."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[Import] = []

    def visit(node: ast.AST, deferred: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(Import(name, alias.name, (), node.lineno, deferred))
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node, name, path.name == "__init__.py")
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                if submodule in known:  # `from retarget.pipeline import loading`: the module itself
                    found.append(Import(name, submodule, (), node.lineno, deferred))
                else:
                    found.append(Import(name, module, (alias.name,), node.lineno, deferred))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if called in ("import_module", "__import__"):
                found.append(Import(name, node.args[0].value, (), node.lineno, deferred))
        inside = deferred or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, inside)

    visit(tree, False)
    return found


def import_graph(root: Path = ROOT) -> list[Import]:
    modules = source_modules(root)
    known = set(modules)
    return [imp for name, path in modules.items() for imp in imports_of(path, name, known)]


def part(module: str) -> str:
    """What a module belongs to: retarget's top-level module or subpackage (retarget.face), else its package (gui)."""
    pieces = module.split(".")
    return ".".join(pieces[:2]) if pieces[0] == "retarget" and len(pieces) > 1 else pieces[0]


def upward_imports(graph: list[Import]) -> list[Import]:
    """Imports of a package of a higher layer (retarget/ -> gui/, gui/ -> the launcher), or of a sibling one
    (gui/ <-> training/)."""
    def crosses(imp: Import) -> bool:
        source, target = imp.importer.split(".")[0], imp.module.split(".")[0]
        return target in LAYER and source != target and LAYER[target] >= LAYER[source]

    return [imp for imp in graph if crosses(imp)]


def private_crossings(graph: list[Import]) -> list[str]:
    """A private name (or private module) of one part imported into another part."""
    crossings = []
    for imp in graph:
        if imp.module.split(".")[0] not in PACKAGES or part(imp.importer) == part(imp.module):
            continue
        private = [p for p in imp.module.split(".") if p.startswith("_") and not p.startswith("__")]
        private += [n for n in imp.names if n.startswith("_") and not n.startswith("__")]
        if private:
            crossings.append(f"{imp.importer}:{imp.line} imports {', '.join(private)} from {imp.module}")
    return crossings


def strongly_connected(edges: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components with more than one member: the import cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[set[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(component)

    for vertex in sorted(edges):
        if vertex not in index:
            connect(vertex)
    return cycles


def retarget_edges(graph: list[Import], key) -> dict[str, set[str]]:
    """importer -> imported, both mapped through `key`, for imports within retarget/ (deferred ones included)."""
    edges: dict[str, set[str]] = {}
    for imp in graph:
        if imp.importer.split(".")[0] != "retarget" or imp.module.split(".")[0] != "retarget":
            continue
        source, target = key(imp.importer), key(imp.module)
        if source != target and target != "retarget":
            edges.setdefault(source, set()).add(target)
    return edges


@pytest.fixture(scope="module")
def graph() -> list[Import]:
    return import_graph()


def test_the_graph_sees_every_package(graph):
    importers = {part(imp.importer) for imp in graph}
    assert {"gui", "training", "retarget.pipeline", "retarget.cli", "retarget.media"} <= importers
    # The reading itself: the app's window imports the session/engine side of retarget.
    assert any(imp.importer.startswith("gui.") and imp.module.startswith("retarget.") for imp in graph)


def test_retarget_imports_neither_gui_nor_training(graph):
    """No exception, deferred or not: the window is opened by the launcher above both."""
    upward = upward_imports(graph)
    assert [f"{imp.importer}:{imp.line} imports {imp.module}" for imp in upward] == []


def test_the_app_does_not_import_the_command_line(graph):
    """retarget.cli is the app's peer (both sit on the library), not a library: the launcher alone knows both."""
    sideways = [f"{imp.importer}:{imp.line} imports {imp.module}" for imp in graph
                if imp.importer.split(".")[0] == "gui" and imp.module.startswith("retarget.cli")]
    assert sideways == []


# gui/ modules that may touch the generator itself, each with the reason: everything else goes through the Session.
PIPELINE_READERS = {
    "gui.bench": "the live benchmark wraps the generator to slow it down (a measured stand-in for a slow GPU)",
    "gui.calibration": "the bridge fit from renders runs the generator inside Session.run_exclusive (RENDERING)",
}


def test_the_app_reaches_the_generator_only_through_the_session():
    """Adapter kind, image size, device, LCM state and every generate go through retarget.session.Session."""
    readers = set()
    for name, path in source_modules().items():
        if name.split(".")[0] != "gui":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if any(isinstance(node, ast.Attribute) and node.attr == "pipeline" for node in ast.walk(tree)):
            readers.add(name)
    assert readers == set(PIPELINE_READERS)


def test_the_launcher_is_the_composition_root(graph):
    """The `retarget` command is read too: it is the one place that imports both the app and the CLI."""
    imported = {imp.module.split(".")[0] for imp in graph if imp.importer.startswith("retarget_launcher")}
    assert {"gui", "retarget"} <= imported


def test_no_private_name_crosses_a_package(graph):
    assert private_crossings(graph) == []


def test_no_module_import_cycles_in_retarget(graph):
    modules = set(source_modules())

    def module_of(name: str) -> str:  # `from retarget.face.align import x` names the module retarget.face.align
        while name not in modules and "." in name:
            name = name.rsplit(".", 1)[0]
        return name

    cycles = {frozenset(cycle) for cycle in strongly_connected(retarget_edges(graph, module_of))}
    assert cycles == KNOWN_MODULE_CYCLES


def test_no_import_cycles_between_retarget_parts(graph):
    cycles = {frozenset(cycle) for cycle in strongly_connected(retarget_edges(graph, part))}
    assert cycles == KNOWN_PART_CYCLES


def test_the_checks_catch_a_violation(tmp_path):
    """The same reading over a small tree with one violation of each kind finds each of them."""
    files = {
        "retarget/__init__.py": "",
        "retarget/a.py": "from retarget.b import thing\n",
        "retarget/b.py": "def f():\n    from retarget.a import other\n",
        "retarget/face/__init__.py": "from . import _helpers\n",
        "retarget/face/_helpers.py": "",
        "retarget/cli/__init__.py": "import gui.window\n",
        "gui/__init__.py": "",
        "gui/window.py": "from retarget.face._helpers import x\nfrom retarget.a import _private\n",
        "gui/start.py": "def f():\n    import retarget_launcher\n",
        "training/__init__.py": "import gui\n",
        "retarget_launcher/__init__.py": "import gui.window\nimport retarget.cli\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = import_graph(tmp_path)
    assert sorted((i.importer, i.module, i.deferred) for i in upward_imports(graph)) == [
        ("gui.start", "retarget_launcher", True), ("retarget.cli", "gui.window", False), ("training", "gui", False)]
    assert len(private_crossings(graph)) == 2  # the face package's own `_helpers` import is not a crossing
    assert strongly_connected(retarget_edges(graph, part)) == [{"retarget.a", "retarget.b"}]
