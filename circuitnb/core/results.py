"""A verified disk cache for expensive analysis results, so the whole book runs each sweep once.

    sweep = cached(cfg, "sweep", models["synthetic"], lambda: record_sweep(...), t=timesteps)

A result is keyed by its name, the trained models' cache keys (which hash their
config and data), the settings it reads (``reads``: qualified config field names; by
default every analysis setting and the seed), any extra arguments, and a
fingerprint of the code that computed it (:func:`code_fingerprint`): the
syntax trees of the compute function's module and of every ``circuitnb``
module it imports, directly or not, plus the versions of the numerical
libraries. A result computed by other code is never served: it is replaced.
There is no version number to bump by hand.

Each result is a :mod:`circuitnb.core.cache` entry: a folder with ``value.pkl``
and a manifest holding its sha256 and the settings above. A pickle that does
not match is never unpickled: it is reported, removed and recomputed. One
process computes a given result at a time; a second one waits for it.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import json
import pickle
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from circuitnb.core import cache
from circuitnb.core.config import Config, check_cache_dir, field_value, key_name, lookup

__all__ = ["cached", "each", "BUSY", "result_path", "result_settings", "code_fingerprint", "package_data_fingerprint"]

VALUE = "value.pkl"
_PACKAGE = Path(__file__).resolve().parents[1]        # the circuitnb folder
_DATA_FILES = _PACKAGE                                 # where package_data_fingerprint looks (a test swaps it)
_LIBRARIES = ("torch", "diffusers", "numpy", "scipy", "pandas", "pingouin", "scikit-learn")


def _module_file(name: str) -> Path | None:
    """The source file of a ``circuitnb`` module, found on disk (no import: core stays below the rest)."""
    return _find_module_file(_PACKAGE, name)


@functools.lru_cache(maxsize=None)
def _find_module_file(package: Path, name: str) -> Path | None:
    # Remembered per process (a module's file does not move while the book runs): each code fingerprint
    # looks up every name its closure imports, about 25 ms a fingerprint with the library versions
    # (below) uncached, over a second in a chapter that reads 50 results.
    if name != "circuitnb" and not name.startswith("circuitnb."):
        return None
    base = package.joinpath(*name.split(".")[1:])
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


@functools.lru_cache(maxsize=256)
def _tree(source: bytes) -> tuple[str, tuple[str, ...]]:
    """(digest of a module's syntax tree without docstrings, every module name it imports).

    Cached by the source bytes themselves (file times can repeat within a clock tick).
    Comments and docstrings do not count: editing prose keeps results, editing code discards them.
    """
    tree = ast.parse(source)
    imports = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                node.body = node.body[1:] or [ast.Pass()]
        if isinstance(node, ast.Import):
            imports += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:   # the package imports absolutely
            imports += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    digest = hashlib.sha256(ast.dump(tree).encode()).hexdigest()
    return digest, tuple(sorted(set(imports)))


def _closure(start: Path) -> dict[str, str]:
    """Digest of ``start`` and of every circuitnb module reachable through its imports."""
    seen: dict[str, str] = {}
    todo = [start]
    while todo:
        path = todo.pop()
        key = str(path)
        if key in seen:
            continue
        digest, imports = _tree(path.read_bytes())
        seen[key] = digest
        todo += [p for p in map(_module_file, imports) if p is not None]
    return {str(Path(k).relative_to(_PACKAGE)) if Path(k).is_relative_to(_PACKAGE) else Path(k).name: v
            for k, v in sorted(seen.items())}


def _unwrap(fn: Any) -> Any:
    while isinstance(fn, functools.partial):
        fn = fn.func
    return getattr(fn, "__func__", fn)


@functools.lru_cache(maxsize=1)
def _library_versions() -> dict[str, str | None]:
    """The numerical libraries' versions, read once per process (each read parses a package's metadata)."""
    versions: dict[str, str | None] = {}
    for lib in _LIBRARIES:
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            versions[lib] = None
    return versions


def code_fingerprint(*functions: Callable) -> str:
    """16 hex digits that change when the code behind ``functions`` changes.

        code_fingerprint(lambda: record_sweep(...))   # the lambda's module and everything it imports

    A function whose module has no source file (defined interactively) contributes its bytecode.
    """
    parts: dict[str, Any] = {}
    for fn in map(_unwrap, functions):
        module = sys.modules.get(getattr(fn, "__module__", "") or "")
        path = Path(getattr(module, "__file__", "") or "")
        if path.suffix == ".py" and path.is_file():
            parts.update(_closure(path.resolve()))
        else:
            code = getattr(fn, "__code__", None)
            parts[repr(fn)] = hashlib.sha256(code.co_code if code else repr(fn).encode()).hexdigest()
    text = json.dumps([parts, _library_versions()], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def package_data_fingerprint() -> str:
    """16 hex digits that change when a data file of the package changes (the paper's claims, margins and
    audit, the explorers' script): what a result computed from them, such as a verdict, depends on."""
    files = sorted(p for p in _DATA_FILES.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc"))
    return cache.files_fingerprint(files, relative_to=_DATA_FILES)


def _read_settings(cfg: Config, reads: Iterable[str] | None) -> dict:
    """The values of the ``reads`` (qualified field names), keyed by each field's :func:`key_name`."""
    if reads is None:                           # not declared: everything an analysis could read
        return {**cfg.to_dict()["analysis"], "seed": cfg.run.seed}
    out = {}
    for name in reads:
        if lookup(name) != name:
            raise ValueError(f"cached(): 'reads' names {name!r}, which is not a qualified config field")
        out[key_name(name)] = field_value(cfg, name)
    return out


def result_settings(cfg: Config, name: str, model_keys: Iterable[str], reads: Iterable[str] | None = None,
                    data: Any = None, **extra: Any) -> dict:
    """The settings that locate a result: name, models, the config fields it reads, the images, extras."""
    if data is not None:
        extra["data"] = data_fingerprint(data)
    return dict(name=name, models=list(model_keys), settings=_read_settings(cfg, reads),
                extra=json.loads(json.dumps(extra, sort_keys=True, default=str)))


def result_path(cfg: Config, name: str, model_keys: Iterable[str], reads: Iterable[str] | None = None,
                data: Any = None, **extra: Any) -> Path:
    """The pickle of a result: ``<cache>/results/<name>-<hash of its settings>/value.pkl``.

    The code fingerprint is not in the folder name but in the manifest, and checked on every
    read: an entry computed by other code is replaced, so the cache holds one result per setting.
    """
    settings = result_settings(cfg, name, model_keys, reads, data, **extra)
    key = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return cfg.cache_path / "results" / f"{name}-{key}" / VALUE


def data_fingerprint(data: Any) -> Any:
    """sha256 (16 hex) of an image array's bytes, shape and dtype, or a dict name -> that (for ``cached(data=)``)."""
    if isinstance(data, dict):
        return {k: data_fingerprint(v) for k, v in sorted(data.items())}
    import numpy as np
    return cache.array_fingerprint(np.asarray(data))


BUSY = object()         # what cached(wait=False) returns while another process is computing that entry


def cached(cfg: Config, name: str, models, compute: Callable[[], Any], *, reads: Iterable[str] | None = None,
           code: Iterable[Callable] = (), data: Any = None, wait: bool = True, **extra: Any) -> Any:
    """``compute()``'s result, from the cache when the same name, models, settings and code were seen before.

    ``data`` is the images ``compute`` reads (an array, or a dict of them): their content keys the result,
    since a model's key covers only what it was trained on (a synthetic model's activations on CelebA
    images depend on those images, which that key does not cover). ``models`` is one
    :class:`circuitnb.modeling.train.TrainedModel` or a list of them. ``reads``
    narrows the key to the config fields the result depends on (default: every analysis
    setting and the seed); ``code`` adds functions whose modules' code keys it besides
    ``compute``'s own module. ``wait=False``: :data:`BUSY` instead of waiting while another process
    is computing the entry (see :func:`each`).
    """
    check_cache_dir(cfg)
    models = models if isinstance(models, (list, tuple)) else [models]
    keys = [m.meta["key"] for m in models]
    fingerprint = code_fingerprint(compute, *code)
    settings = {**result_settings(cfg, name, keys, reads, data, **extra), "code": fingerprint}

    def make(tmp: Path) -> Any:
        value = compute()
        (tmp / VALUE).write_bytes(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
        return value

    def load(folder: Path) -> Any:
        return pickle.loads((folder / VALUE).read_bytes())   # only after its sha256 matched

    target = result_path(cfg, name, keys, reads, data, **extra).parent
    if not wait and cache.is_locked(target):
        return BUSY
    return cache.get_or_make(target, load, make, kind="result",
                             settings=settings, what="result cache entry", redo="recomputing",
                             accept=lambda manifest: manifest is not None
                             and manifest["settings"].get("code") == fingerprint)


def each(calls: Sequence[Callable[..., Any]]) -> list[Any]:
    """``[call() for call in calls]`` for calls that end in :func:`cached` and take its ``wait``, with the
    entries another process is computing right now taken last.

        sweeps = each([functools.partial(sweep, cfg, name, m) for m in models])

    Why: the book runs notebooks side by side (:func:`circuitnb.publish.book.execute_notebooks`), and
    two chapters often need the same per-model results in the same order. Taken in order, the second
    waits for each model the first is computing, one after the other; taken this way, it computes the
    models nobody has started, and the two share the work. The values come back in the order of ``calls``.
    """
    out: dict[int, Any] = {}
    pending = list(range(len(calls)))
    while pending:
        busy = []
        for i in pending:
            value = calls[i](wait=False)
            if value is BUSY:
                busy.append(i)
            else:
                out[i] = value
        if busy and len(busy) == len(pending):          # nothing left but work in progress elsewhere: wait
            out[busy[0]] = calls[busy[0]](wait=True)
            busy = busy[1:]
        pending = busy
    return [out[i] for i in range(len(calls))]
