"""One definition, called everywhere: the README's quantity table names functions the package really uses,
and every dotted ``circuitnb.`` path in docstrings, messages and the README names something that exists."""
from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "circuitnb"
README = (ROOT / "README.md").read_text()
SUBPACKAGES = ("core", "data", "measures", "modeling", "hooking", "interventions", "analysis", "viz", "chapters",
               "publish")
DOTTED = re.compile(r"(?<![\w./-])circuitnb(?:\.[A-Za-z_]\w*)+")
ROLE = re.compile(r":(?:func|mod|class|data|attr|meth|obj|exc):`~?([\w.]+)`")
MODULES = sorted(PKG.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def resolve(dotted: str):
    """The module or attribute ``dotted`` names; raises LookupError naming the part that is missing."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        name = ".".join(parts[:i])
        try:
            obj = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name and name.startswith(e.name):         # this prefix is no module; try a shorter one
                continue
            raise
        for attr in parts[i:]:
            if not hasattr(obj, attr):
                raise LookupError(f"{dotted}: {name} has no attribute {attr!r}")
            obj = getattr(obj, attr)
            name = f"{name}.{attr}"
        return obj
    raise LookupError(f"{dotted}: no such module")


# --- (a) the README's table of where each paper quantity is defined -----------------------------------
def quantity_table() -> list[tuple[str, str]]:
    """(quantity, dotted path under circuitnb) for every backticked dotted name in the table's function column."""
    block = README.split("Where each paper quantity is defined", 1)[1].split("\n## ", 1)[0]
    rows = [ln for ln in block.splitlines() if ln.startswith("|") and not ln.startswith("|---")][1:]
    out = []
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        for name in re.findall(r"`([A-Za-z_][\w.]*)`", cells[2]):
            if "." in name and name.split(".")[0] in SUBPACKAGES:
                out.append((cells[1], f"circuitnb.{name}"))
    return out


def uses_by_module() -> dict[str, set[str]]:
    """For each package module, the dotted ``circuitnb.`` names it refers to in code (called, or passed on as a
    function), resolved through its own imports, function-level ones included."""
    found = {}
    for path in MODULES:
        name = module_name(path)
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        tree = ast.parse(path.read_text())
        alias = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    alias[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                for a in node.names:
                    alias[a.asname or a.name] = f"{base}.{a.name}"
        refs = set()
        for node in ast.walk(tree):
            chain = []
            while isinstance(node, ast.Attribute):
                chain.append(node.attr)
                node = node.value
            if isinstance(node, ast.Name) and node.id in alias:
                full = ".".join([alias[node.id], *reversed(chain)])
                parts = full.split(".")
                refs |= {".".join(parts[:k]) for k in range(1, len(parts) + 1)}
        found[name] = refs
    return found


TABLE = quantity_table()
USES = uses_by_module()


def test_the_quantity_table_is_read():
    assert len(TABLE) >= 15, TABLE          # the table's layout changed: this test no longer reads it


@pytest.mark.parametrize("quantity,dotted", TABLE, ids=[d for _, d in TABLE])
def test_each_quantity_has_one_definition_that_the_package_uses(quantity, dotted):
    obj = resolve(dotted)                   # the README names something that exists ...
    home = dotted if isinstance(obj, type(ast)) else obj.__module__
    users = sorted(m for m, refs in USES.items() if dotted in refs and m != home)
    # ... and some other package module uses it (a function only tests call is not where the book's numbers
    # come from)
    assert users, f"{quantity}: {dotted} is used by no package module outside {home}"


# --- (b) dotted paths in docstrings, messages and the README resolve ----------------------------------
def strings(path: Path) -> list[str]:
    """Every string constant of a module: docstrings, messages, the text parts of f-strings."""
    return [n.value for n in ast.walk(ast.parse(path.read_text()))
            if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def broken_paths(path: Path) -> list[str]:
    mod = importlib.import_module(module_name(path))
    broken = []
    for text in strings(path):
        for dotted in DOTTED.findall(text):
            try:
                resolve(dotted)
            except LookupError as e:
                broken.append(str(e))
        for target in ROLE.findall(text):       # Sphinx cross-references, absolute or relative to the module
            head, *rest = target.split(".")
            if head == "circuitnb":
                dotted = target
            elif hasattr(mod, head):
                dotted = ".".join([module_name(path), target])
            elif any(isinstance(v, type) and hasattr(v, head) for v in vars(mod).values()):
                continue                        # a method or attribute of a class defined or imported here
            else:
                broken.append(f"{target}: not defined in {module_name(path)}")
                continue
            try:
                resolve(dotted)
            except LookupError as e:
                broken.append(str(e))
    return sorted(set(broken))


# Stale paths in files another change is rewriting; strict, so the mark must go once the path is fixed.
PENDING: dict[str, str] = {}          # module -> why its stale path is still there (strict xfail until fixed)


@pytest.mark.parametrize("path", [pytest.param(p, marks=pytest.mark.xfail(strict=True, reason=PENDING[rel]))
                                  if (rel := str(p.relative_to(ROOT))) in PENDING else p for p in MODULES],
                         ids=[str(p.relative_to(ROOT)) for p in MODULES])
def test_dotted_paths_in_docstrings_and_messages_resolve(path):
    broken = broken_paths(path)
    assert not broken, f"{path.relative_to(ROOT)} names what does not exist: {broken}"


def test_dotted_paths_in_the_readme_resolve():
    broken = []
    for dotted in sorted(set(DOTTED.findall(README))):
        try:
            resolve(dotted)
        except LookupError as e:
            broken.append(str(e))
    assert not broken, f"README.md names what does not exist: {broken}"


@pytest.mark.parametrize("page", sorted((ROOT / "book").glob("*.md")), ids=lambda p: p.name)
def test_dotted_paths_on_the_book_pages_resolve(page):
    # The pages name where each quantity is computed; a function that moves must take its page along.
    broken = []
    for dotted in sorted(set(DOTTED.findall(page.read_text()))):
        try:
            resolve(dotted)
        except LookupError as e:
            broken.append(str(e))
    assert not broken, f"{page.name} names what does not exist: {broken}"
