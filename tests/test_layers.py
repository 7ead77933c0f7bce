"""The import arrows point one way (ARCHITECTURE.md): kernel <- implants <- submissions <- matching
<- raiox, and torch/open_clip are imported at module level only inside matching/ (web processes
import everything else and must never load the model).

Parses every module's imports (``ast``: also those inside functions, which are arrows too) and
fails naming each arrow that points the wrong way.
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
    top_level = {id(node) for node in tree.body}
    # Imports under a module-level ``if``/``try`` run at import time too.
    for node in tree.body:
        if isinstance(node, ast.If | ast.Try):
            top_level |= {id(child) for child in ast.walk(node)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno, id(node) in top_level) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node.lineno, id(node) in top_level))
    return found


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
