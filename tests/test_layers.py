"""The package's layers: imports point only downward, no module imports another in a cycle, chapters are leaves
(no chapter imports another), and no module imports a circuitnb module by a name in a string."""
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


# What every chapter may import from its own layer: the shared loading and scorecard-row helpers and the result
# type. Anything else two chapters share belongs in circuitnb/analysis/ (STYLE.md §1: chapters are leaves).
CHAPTER_SHARED = {"circuitnb.chapters", "circuitnb.chapters.common", "circuitnb.chapters.report"}
# The calls that import a module named by a string, and a module exempt from the rule: the top-level package,
# whose __getattr__ loads its own subpackages on first use (PEP 562) so that `circuitnb --help` stays fast.
IMPORTERS = {"importlib.import_module", "__import__"}
LAZY_ROOT = "circuitnb"


def other_chapters(path: Path, pkg: Path = PKG) -> list[str]:
    """The chapter modules a chapter module imports, at any depth, other than :data:`CHAPTER_SHARED`."""
    return sorted(t for t in imported_modules(path, pkg)
                  if (t + ".").startswith("circuitnb.chapters.") and t not in CHAPTER_SHARED)


def _importer_names(tree: ast.AST) -> set[str]:
    """The names under which ``tree`` can call an importer: ``importlib.import_module`` through any alias of
    importlib, ``import_module`` imported from importlib (any alias), and ``__import__``."""
    names = {"__import__"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {f"{a.asname or a.name}.import_module" for a in node.names if a.name == "importlib"}
        elif isinstance(node, ast.ImportFrom) and node.module == "importlib":
            names |= {a.asname or a.name for a in node.names if a.name == "import_module"}
    return names


def _leading_text(arg) -> str | None:
    """The text a module-name argument starts with when written as a literal (a string, or an f-string's
    leading literal part; "" for an f-string that starts with a value); None when it is computed."""
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    if isinstance(arg, ast.JoinedStr):
        first = arg.values[0] if arg.values else None
        return first.value if isinstance(first, ast.Constant) else ""
    return None


def string_imports(path: Path) -> list[str]:
    """Every call in ``path`` that imports a module by a string naming a circuitnb module (absolute, relative,
    or an f-string that starts with either) or by a name computed at run time, which could name one. Such an
    import is an edge the layer checks above cannot see."""
    tree = ast.parse(path.read_text())
    importers = _importer_names(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and ast.unparse(node.func) in importers:
            arg = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "name"), None)
            text = _leading_text(arg)
            if text is None or text == "" or text.startswith(("circuitnb", ".")):
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def test_every_module_belongs_to_a_layer():
    stray = [m for m in MODULES if m != "circuitnb" and m.split(".")[1] not in LAYERS]
    assert not stray, f"modules outside the layers {LAYERS}: {stray}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != "circuitnb"))
def test_imports_point_downward(module):
    upward = [target for target in imported_modules(MODULES[module])
              if target != "circuitnb" and layer(target) > layer(module)]
    assert not upward, f"{module} ({LAYERS[layer(module)]}) imports from a higher layer: {upward}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("circuitnb.chapters.")))
def test_chapters_are_leaves(module):
    others = other_chapters(MODULES[module])
    assert not others, (f"{module} imports chapter module(s) {others}: a chapter imports only the library (layers "
                        f"below) and {sorted(CHAPTER_SHARED - {'circuitnb.chapters'})}; move what chapters share "
                        "into circuitnb/analysis/ and import it from there (STYLE.md §1: chapters are leaves)")


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != LAZY_ROOT))
def test_no_module_imports_a_circuitnb_module_by_a_string(module):
    found = string_imports(MODULES[module])
    assert not found, (f"{module} imports by a string (an import the layer checks cannot see): {found}; import "
                       "the module by name, or look the function up in a registry of the analysis layer "
                       "(e.g. circuitnb.analysis.claim_sources.SOURCES)")


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


def test_the_checker_sees_a_chapter_that_imports_another(tmp_path):
    # Function-level imports count, in either spelling; the shared modules do not.
    chapters = tmp_path / "circuitnb" / "chapters"
    chapters.mkdir(parents=True)
    for name in ("__init__", "common", "report", "b", "c"):
        (chapters / f"{name}.py").write_text("")
    (chapters / "a.py").write_text("from circuitnb.chapters import common, report\n"
                                   "from circuitnb.chapters.report import ChapterResult\n\n\n"
                                   "def run(cfg):\n    from circuitnb.chapters import b\n"
                                   "    import circuitnb.chapters.c\n")
    assert other_chapters(chapters / "a.py", tmp_path / "circuitnb") == ["circuitnb.chapters.b", "circuitnb.chapters.c"]
    assert other_chapters(chapters / "common.py", tmp_path / "circuitnb") == []


def test_the_checker_sees_an_import_by_a_string(tmp_path):
    path = tmp_path / "x.py"
    path.write_text("import importlib\nfrom importlib import import_module as im\n\n\n"
                    "def f(name):\n"
                    "    importlib.import_module(f'circuitnb.chapters.{name}')\n"      # the scorecard's old loop
                    "    im('.core.config', 'circuitnb')\n"
                    "    __import__(name)\n"
                    "    importlib.import_module('torch')\n")                          # not ours: allowed
    assert [f.split(":")[0] for f in string_imports(path)] == ["line 6", "line 7", "line 8"]
