"""What the cache holds, and whether each entry is intact (``circuitnb cache ls|verify``).

    for e in scan(cfg.cache_path):
        print(e.status, e.kind, e.size, e.path, e.settings)

Entries are the folders of :mod:`circuitnb.core.cache`: ``models/<key>/final``,
``models/<key>/checkpoint``, ``models/<key>/snapshots/step_<N>`` and ``results/<name>-<key>``. Anything else a
killed writer or an older layout left there (``.tmp-``/``.old-`` folders, bare
``.pkl`` files) is listed as a leftover, which counts as damaged. An entry whose
lock another process holds is being written: it is listed as "in use" and
neither checked nor removed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from circuitnb.core import cache

__all__ = ["EntryStatus", "scan", "remove", "summary"]


@dataclass
class EntryStatus:
    path: Path                     # the entry folder (or leftover)
    kind: str                      # 'model', 'checkpoint', 'snapshot', 'result', 'data' or 'leftover'
    size: int                      # bytes
    settings: dict = field(default_factory=dict)    # what keys it (from its manifest)
    problem: str | None = None     # None when intact
    in_use: bool = False           # another process holds its lock

    @property
    def status(self) -> str:
        return "in use" if self.in_use else "ok" if self.problem is None else "damaged"


def _entry(path: Path, kind: str, lock_target: Path) -> EntryStatus:
    if cache.is_locked(lock_target):
        return EntryStatus(path, kind, cache.size_of(path), in_use=True)
    manifest = cache.read_manifest(path) or {}
    if manifest.get("kind") == "data":             # a cached synthetic draw, kept beside the results
        kind = "data"
    return EntryStatus(path, kind, cache.size_of(path), manifest.get("settings", {}), cache.verify(path))


def _leftover(path: Path, lock_target: Path, why: str) -> EntryStatus:
    in_use = cache.is_locked(lock_target)
    return EntryStatus(path, "leftover", cache.size_of(path), problem=None if in_use else why, in_use=in_use)


def scan(root: Path) -> list[EntryStatus]:
    """Every entry and leftover under a cache folder, models first, each checked (hashing every file)."""
    root = Path(root)
    out: list[EntryStatus] = []
    models = root / "models"
    for key_dir in sorted(models.iterdir()) if models.is_dir() else []:
        if key_dir.name.startswith("."):
            continue                                   # lock files
        if not key_dir.is_dir():
            out.append(_leftover(key_dir, key_dir, "not a model entry folder"))
            continue
        for child in sorted(key_dir.iterdir()):
            if child.name == "final":
                out.append(_entry(child, "model", key_dir))
            elif child.name == "checkpoint":
                out.append(_entry(child, "checkpoint", key_dir))
            elif child.name == "snapshots" and child.is_dir():
                for snap in sorted(child.iterdir()):
                    out.append(_entry(snap, "snapshot", key_dir) if snap.name.startswith("step_")
                               else _leftover(snap, key_dir, "leftover of an interrupted write"))
            else:
                out.append(_leftover(child, key_dir, "leftover of an interrupted write"))
    results = root / "results"
    for path in sorted(results.iterdir()) if results.is_dir() else []:
        if path.name.endswith(".lock"):
            continue
        if path.name.startswith("."):
            target = path.with_name(path.name[1:].split(".tmp-")[0].split(".old-")[0])
            out.append(_leftover(path, target, "leftover of an interrupted write"))
        elif path.is_dir():
            out.append(_entry(path, "result", path))
        else:
            out.append(_leftover(path, path, "a file without a manifest (older cache layout)"))
    return out


def remove(entry: EntryStatus) -> None:
    """Delete a damaged entry or leftover (never one in use)."""
    if entry.in_use:
        raise ValueError(f"{entry.path} is in use by another process")
    cache.discard(entry.path)


def summary(settings: dict, width: int = 110) -> str:
    """Settings as ``a=1 b.c=2 ...``, nested keys dotted, cut at ``width`` characters."""
    flat: list[str] = []

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            flat.append(f"{prefix}={value}")
    # Plain values first (dataset, steps, name...), nested ones (the full config) after them.
    walk("", {k: v for k, v in settings.items() if not isinstance(v, dict)})
    walk("", {k: v for k, v in settings.items() if isinstance(v, dict)})
    text = " ".join(flat)
    return text if len(text) <= width else text[: width - 3] + "..."
