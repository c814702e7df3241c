"""The package's layout keeps to its architecture: no module imports upward, and the docs list every module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "elepose"
ARCHITECTURE = Path(__file__).resolve().parents[1] / "docs" / "ARCHITECTURE.md"

# Lower layers never import higher ones (docs/ARCHITECTURE.md); the root modules are layer 0.
LAYERS = {"data": 1, "models": 2, "evaluate": 3, "train": 4, "lift": 5, "benchmark": 6, "cli": 7}


def _layer(module: str) -> int:
    """Layer of a dotted module name inside elepose (``elepose.models.io`` -> 2)."""
    parts = module.split(".")
    return LAYERS.get(parts[1], 0) if len(parts) > 1 else 0


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[str]:
    """Every ``elepose.*`` module ``path`` imports, lazily or not (``from elepose.x import y`` -> ``elepose.x.y`` when y is a module)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.startswith("elepose")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("elepose"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                is_module = (PACKAGE.parent / Path(*candidate.split("."))).with_suffix(".py").is_file() or (
                    PACKAGE.parent / Path(*candidate.split("."))
                ).is_dir()
                found.append(candidate if is_module else node.module)
    return found


@pytest.mark.parametrize("path", _modules(), ids=lambda p: _name(p))
def test_no_module_imports_upward(path: Path) -> None:
    name = _name(path)
    if name in ("elepose", "elepose.__main__"):  # the root re-exports Lifter lazily; __main__ is the entry point
        return
    upward = [m for m in _imports(path) if _layer(m) > _layer(name)]
    assert not upward, f"{name} (layer {_layer(name)}) imports {upward}"


def test_architecture_page_names_every_module_and_no_other() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    listed = {
        line.split("`")[1].replace("/", ".")
        for line in text.splitlines()
        if line.startswith("| `") and line.count("`") >= 2
    }
    modules = {_name(p).removeprefix("elepose.") for p in _modules() if p.name != "__init__.py"}
    assert modules - listed == set(), f"modules missing from docs/ARCHITECTURE.md: {sorted(modules - listed)}"
    assert listed - modules == set(), (
        f"docs/ARCHITECTURE.md lists modules that do not exist: {sorted(listed - modules)}"
    )
