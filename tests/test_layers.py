"""The import arrows point one way (ARCHITECTURE.md): kernel <- implants <- submissions <- matching
<- raiox, and torch/open_clip are imported at module level only inside matching/ (web processes
import everything else and must never load the model).

Inside ``submissions`` the arrows point one way too, inner to outer (``SUBMISSIONS_LAYERS``):
validators < models < fields < regions, access, results' links < services < results < intake <
the pages, the API and the admin. And no module of ours imports itself back through others: an
import cycle works only by import order (the first module imported decides whether the other finds
its names), so a harmless-looking move of an import breaks it.

Parses every module's imports (``ast``: also those inside functions, which are arrows too) and
fails naming each arrow that points the wrong way and each cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# What each layer may not import (anything else of ours, plus any library, is allowed).
FORBIDDEN: dict[str, set[str]] = {
    "kernel": {"implants", "submissions", "matching", "raiox"},
    "implants": {"submissions", "matching", "raiox"},
    "submissions": {"matching", "raiox"},
    "matching": {"raiox"},
    "raiox": set(),
}
MODEL_LIBRARIES = {"torch", "open_clip", "torchvision"}


def _imports(tree: ast.Module) -> list[tuple[str, int, bool]]:
    """(imported module, line, at module level) for every import in a module."""
    return [(module, line, top) for module, _names, line, top, _typing in _import_nodes(tree)]


def _import_nodes(tree: ast.Module) -> list[tuple[str, tuple[str, ...], int, bool, bool]]:
    """(module, names taken from it, line, at module level, only for type checkers) per import."""
    top_level = {id(node) for node in tree.body}
    typing_only: set[int] = set()
    # Imports under a module-level ``if``/``try`` run at import time too.
    for node in tree.body:
        if isinstance(node, ast.If | ast.Try):
            top_level |= {id(child) for child in ast.walk(node)}
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only |= {id(child) for child in ast.walk(node)}
    found = []
    for node in ast.walk(tree):
        where = (node.lineno, id(node) in top_level, id(node) in typing_only) if isinstance(node, ast.stmt) else ()
        if isinstance(node, ast.Import):
            found += [(alias.name, (), *where) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, tuple(alias.name for alias in node.names), *where))
    return found


def _modules(root: Path) -> dict[str, Path]:
    """Our modules by dotted name (a package by its ``__init__``), migrations left out."""
    modules = {}
    for package in FORBIDDEN:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if "migrations" in parts:
                continue
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def violations(root: Path = ROOT) -> list[str]:
    wrong: list[str] = []
    for layer, forbidden in FORBIDDEN.items():
        for path in sorted((root / layer).rglob("*.py")):
            relative = path.relative_to(root)
            if "migrations" in relative.parts:
                continue  # generated; they name apps by label, not by import
            for module, line, module_level in _imports(ast.parse(path.read_text(), str(path))):
                top = module.split(".")[0]
                if top in forbidden:
                    wrong.append(f"{relative}:{line}: {layer} imports {module}")
                if top in MODEL_LIBRARIES and module_level and layer != "matching":
                    wrong.append(f"{relative}:{line}: {module} imported at module level outside matching/")
    return wrong


def test_every_layer_has_modules():
    for layer in FORBIDDEN:
        assert list((ROOT / layer).rglob("*.py")), f"{layer}/ not found: the test would check nothing"


def test_imports_point_one_way():
    assert violations() == []


@pytest.mark.parametrize(
    ("layer", "source", "expected"),
    [
        ("kernel", "from implants.models import Implant\n", "kernel imports implants.models"),
        ("implants", "def f():\n    from submissions import services\n", "implants imports submissions"),
        ("submissions", "import matching.state\n", "submissions imports matching.state"),
        ("matching", "from raiox.health import healthcheck\n", "matching imports raiox.health"),
        ("submissions", "import torch\n", "torch imported at module level outside matching/"),
        ("raiox", "try:\n    import open_clip\nexcept ImportError:\n    pass\n", "open_clip imported at module"),
    ],
)
def test_a_planted_wrong_arrow_is_caught(tmp_path, layer, source, expected):
    for name in FORBIDDEN:
        (tmp_path / name).mkdir()
    (tmp_path / layer / "planted.py").write_text(source)
    found = violations(tmp_path)
    assert len(found) == 1 and expected in found[0], found


def test_a_lazy_model_import_outside_matching_is_allowed(tmp_path):
    # raiox.checks imports the embedder inside a function, on the management command's path only.
    for name in FORBIDDEN:
        (tmp_path / name).mkdir()
    (tmp_path / "raiox" / "lazy.py").write_text("def f():\n    import torch\n")
    assert violations(tmp_path) == []


# --- inside submissions -------------------------------------------------------------------------

# Inner to outer: a module may import its own layer and those before it, never one after it. A
# module is in the layer of the longest prefix that names it; a module named nowhere is an outer
# adapter (views, API, admin, forms, serializers, tasks, commands), which may import everything.
SUBMISSIONS_LAYERS: list[tuple[str, tuple[str, ...]]] = [
    # Leaves that import nothing of ours: the value validators and the messages said in several places.
    ("validators", ("submissions.validators", "submissions.messages")),
    ("models", ("submissions.models",)),
    # The value rules of intake and the records the services take (IntakeRecord, MatchCandidate).
    ("fields", ("submissions.fields",)),
    # Rules over those values: the regions of a film, who may reach what, the result links, the
    # finder's quality codes, the order the services lock rows in.
    (
        "rules",
        (
            "submissions.regions",
            "submissions.access",
            "submissions.results.links",
            "submissions.fixtures",
            "submissions.locks",
        ),
    ),
    # Every write (the e-mails' text is the read model's, handed to the send service by the tasks).
    ("services", ("submissions.services",)),
    # The read model: the result page, answer and e-mail text, the CSV, the dashboard's figures and charts.
    ("results", ("submissions.results", "submissions.stats", "submissions.charts")),
    # One adapter per route, turning its request into an IntakeRecord for the services.
    ("intake", ("submissions.intake",)),
]
OUTER = "views, API, admin"


def _layer(module: str) -> tuple[int, str]:
    best = (len(SUBMISSIONS_LAYERS), OUTER, 0)
    for rank, (name, prefixes) in enumerate(SUBMISSIONS_LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best[2]:
                best = (rank, name, len(prefix))
    return best[0], best[1]


def _target(module: str, names: tuple[str, ...], modules: dict[str, Path]) -> list[str]:
    """Our modules an import reaches: ``from a.b import c`` reaches ``a.b.c`` when that is a module."""
    reached = [f"{module}.{name}" for name in names if f"{module}.{name}" in modules]
    if len(reached) < len(names) or not names:
        while module and module not in modules:
            module = module.rpartition(".")[0]
        if module:
            reached.append(module)
    return reached


def inner_violations(root: Path = ROOT) -> list[str]:
    modules = _modules(root)
    wrong = []
    for module, path in modules.items():
        if not module.startswith("submissions."):
            continue
        rank, layer = _layer(module)
        for imported, names, line, _top, _typing in _import_nodes(ast.parse(path.read_text(), str(path))):
            # By name when it is no module of ours (yet): the arrow is wrong whether or not it resolves.
            for target in _target(imported, names, modules) or [imported]:
                target_rank, target_layer = _layer(target)
                if not target.startswith("submissions.") or target_rank <= rank:
                    continue
                wrong.append(f"{path.relative_to(root)}:{line}: {module} ({layer}) imports {target} ({target_layer})")
    return wrong


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the modules of ours it imports (at module level or in a function: both run).

    Importing ``a.b.c`` from outside the package ``a.b`` runs ``a/b/__init__.py`` first, so that
    is an arrow too (the usual way a re-exporting ``__init__`` closes a cycle); from inside the
    package it is not (the package is already being imported). Imports only for type checkers
    never run and are left out."""
    modules = _modules(root)
    graph: dict[str, set[str]] = {module: set() for module in modules}
    for module, path in modules.items():
        for imported, names, _line, _top, typing_only in _import_nodes(ast.parse(path.read_text(), str(path))):
            if typing_only:
                continue
            for target in _target(imported, names, modules):
                parts = target.split(".")
                for end in range(1, len(parts) + 1):
                    ancestor = ".".join(parts[:end])
                    inside = module == ancestor or module.startswith(ancestor + ".")
                    if ancestor in modules and ancestor != module and (end == len(parts) or not inside):
                        graph[module].add(ancestor)
    return graph


def cycles(root: Path = ROOT) -> list[str]:
    """Each strongly connected component of the import graph (Tarjan), as one cycle through it."""
    graph = import_graph(root)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[list[str]] = []

    def visit(node: str) -> None:  # recursive: our graph is a few hundred modules, not deep
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [" -> ".join(_cycle_through(graph, component)) for component in components]


def _cycle_through(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """A shortest path from the component's first module back to itself (breadth first)."""
    start, members = component[0], set(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph[node] & members):
            if nxt == start:
                return [*paths[node], start]
            if nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                queue.append(nxt)
    return component  # pragma: no cover - a component always closes


def test_submissions_layers_point_inward_to_outward():
    assert inner_violations() == []


def test_every_inner_layer_names_a_module():
    modules = _modules(ROOT)
    for name, prefixes in SUBMISSIONS_LAYERS:
        assert any(_layer(module)[1] == name for module in modules), f"layer {name}: no module matches {prefixes}"


def test_no_import_cycle():
    assert cycles() == []


def _plant(root: Path, files: dict[str, str]) -> None:
    for name in FORBIDDEN:
        (root / name).mkdir(exist_ok=True)
    for relative, source in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        for folder in path.relative_to(root).parents:
            if str(folder) not in (".", *FORBIDDEN):
                (root / folder / "__init__.py").touch()
        path.write_text(source)


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            {"submissions/services/planted.py": "from submissions.intake.fields import FORM_NAMES\n"},
            "submissions.services.planted (services) imports submissions.intake.fields (intake)",
        ),
        (
            {"submissions/models.py": "def f():\n    from submissions import fields\n", "submissions/fields.py": ""},
            "submissions.models (models) imports submissions.fields (fields)",
        ),
        (
            {"submissions/regions.py": "from submissions.results import result_url\n", "submissions/results.py": ""},
            "submissions.regions (rules) imports submissions.results (results)",
        ),
    ],
)
def test_a_planted_inward_arrow_is_caught(tmp_path, files, expected):
    _plant(tmp_path, files)
    found = inner_violations(tmp_path)
    assert len(found) == 1 and expected in found[0], found


def test_an_outer_adapter_may_import_every_layer(tmp_path):
    _plant(tmp_path, {"submissions/views.py": "from submissions.intake import form\nfrom submissions import fields\n"})
    assert inner_violations(tmp_path) == []


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        # Two modules importing each other, one of them lazily (a function-level import is a cycle too).
        (
            {
                "implants/a.py": "from implants.b import x\n",
                "implants/b.py": "def x():\n    from implants.a import y\n",
            },
            "implants.a -> implants.b -> implants.a",
        ),
        # The cycle this test was written for: an adapter, the services' re-exporting __init__ and a
        # service that imports the adapter back.
        (
            {
                "submissions/intake/fields.py": "from submissions.services import IntakeRecord\n",
                "submissions/services/__init__.py": "from submissions.services.review import x\n",
                "submissions/services/review.py": "from submissions.intake import fields\n",
            },
            "submissions.intake.fields -> submissions.services -> submissions.services.review -> "
            "submissions.intake.fields",
        ),
        # Importing a.b.c runs a/b/__init__.py: a module reached back only through a package's
        # __init__ (``other`` imports ``pkg.sibling``, which imports nothing; ``pkg`` imports ``inner``).
        (
            {
                "matching/pkg/__init__.py": "from matching.pkg.inner import x\n",
                "matching/pkg/inner.py": "from matching.other import y\n",
                "matching/pkg/sibling.py": "",
                "matching/other.py": "import matching.pkg.sibling\n",
            },
            "matching.other -> matching.pkg -> matching.pkg.inner -> matching.other",
        ),
    ],
)
def test_a_planted_cycle_is_caught(tmp_path, files, expected):
    _plant(tmp_path, files)
    found = cycles(tmp_path)
    assert found == [expected], found


def test_siblings_importing_through_their_package_are_no_cycle(tmp_path):
    # A package's __init__ re-exporting its modules, which import each other by full path: Python
    # runs the __init__ once, first, so this is no cycle; nor is an import only for type checkers.
    _plant(
        tmp_path,
        {
            "submissions/services/__init__.py": (
                "from submissions.services.a import x\nfrom submissions.services.b import y\n"
            ),
            "submissions/services/a.py": "x = 1\n",
            "submissions/services/b.py": "from submissions.services.a import x\ny = x\n",
            "kernel/one.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from kernel.two import T\n",
            "kernel/two.py": "from kernel.one import z\n",
        },
    )
    assert cycles(tmp_path) == []


def test_tests_and_bench_share_only_testkit(tmp_path):
    """``tests/`` and ``bench/`` may both import ``testkit/``; ``testkit/`` imports neither, and
    ``tests/`` never imports ``bench/`` (so a bench can change without a test noticing). Parsed on
    its own here, every import counted (also those inside functions), with a planted arrow of each
    kind to show the check can fail."""
    forbidden = {"testkit": {"tests", "bench"}, "tests": {"bench"}}

    def wrong_arrows(root: Path) -> list[str]:
        found = []
        for folder, banned in forbidden.items():
            for path in sorted((root / folder).rglob("*.py")):
                for node in ast.walk(ast.parse(path.read_text(), str(path))):
                    if isinstance(node, ast.Import):
                        names = [alias.name for alias in node.names]
                    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                        names = [node.module]
                    else:
                        continue
                    found += [
                        f"{path.relative_to(root)}:{node.lineno}: {folder} imports {name}"
                        for name in names
                        if name.split(".")[0] in banned
                    ]
        return found

    assert list((ROOT / "testkit").rglob("*.py")), "testkit/ not found: the test would check nothing"
    assert wrong_arrows(ROOT) == []

    for folder in ("tests", "testkit", "bench"):
        (tmp_path / folder).mkdir()
    (tmp_path / "tests" / "planted.py").write_text("def f():\n    from bench.intake import run\n")
    (tmp_path / "testkit" / "planted.py").write_text("import tests.conftest\n")
    (tmp_path / "bench" / "fine.py").write_text("from testkit import procs\n")
    found = sorted(wrong_arrows(tmp_path))
    assert len(found) == 2 and "testkit imports tests" in found[0] and "tests imports bench.intake" in found[1], found
