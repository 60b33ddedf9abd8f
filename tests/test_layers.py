"""The package's layers: imports point only downward, and no module imports another in a cycle."""
import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "circuitnb"
# Bottom to top; a module may import from its own layer or any layer below (see circuitnb/__init__.py).
LAYERS = ["core", "data", "measures", "modeling", "hooking", "interventions", "analysis", "viz", "chapters", "publish",
          "cli"]


def module_name(path: Path, pkg: Path = PKG) -> str:
    parts = path.relative_to(pkg.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, pkg: Path = PKG) -> set[str]:
    """Every circuitnb module ``path`` imports, at any depth (function-level imports count too)."""
    name = module_name(path, pkg)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("circuitnb")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            if base.startswith("circuitnb"):
                found.add(base)
                for a in node.names:                       # `from circuitnb.x import module`
                    sub = pkg.parent / f"{base}.{a.name}".replace(".", "/")
                    if sub.is_dir() or sub.with_suffix(".py").exists():
                        found.add(f"{base}.{a.name}")
    return found - {name}


def layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:
        return -1                                     # the top-level package (lazy re-exports only)
    return LAYERS.index(parts[1])


MODULES = {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def test_every_module_belongs_to_a_layer():
    stray = [m for m in MODULES if m != "circuitnb" and m.split(".")[1] not in LAYERS]
    assert not stray, f"modules outside the layers {LAYERS}: {stray}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != "circuitnb"))
def test_imports_point_downward(module):
    upward = [target for target in imported_modules(MODULES[module])
              if target != "circuitnb" and layer(target) > layer(module)]
    assert not upward, f"{module} ({LAYERS[layer(module)]}) imports from a higher layer: {upward}"


def test_no_import_cycles():
    graph = {m: {t for t in imported_modules(p) if t in MODULES and t != "circuitnb"} for m, p in MODULES.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(node, stack):
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for m in graph:
        if m not in state:
            visit(m, [m])
    assert not cycles, f"import cycles: {cycles}"


def test_the_checker_sees_an_upward_import(tmp_path):
    # The check must be able to fail: a core module importing a chapter, relatively, is reported.
    core = tmp_path / "circuitnb" / "core"
    core.mkdir(parents=True)
    (core / "x.py").write_text("from ..chapters import common\n")
    (tmp_path / "circuitnb" / "chapters").mkdir()
    (tmp_path / "circuitnb" / "chapters" / "common.py").write_text("")
    found = imported_modules(core / "x.py", tmp_path / "circuitnb")
    assert "circuitnb.chapters.common" in found
    assert layer("circuitnb.chapters.common") > layer(module_name(core / "x.py", tmp_path / "circuitnb"))
