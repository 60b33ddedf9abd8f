"""Verified cache entries: a sha256 manifest per entry, one writer per entry, atomic publishing.

    value = get_or_make(root / "results" / "sweep-1a2b", load=read_value, make=compute_and_write,
                        kind="result", settings={"timesteps": [100, 900]})

An entry is a folder. Its ``manifest.json`` records the settings that key it and
the sha256 of every other file in it, so every file that is ever read back is
covered (weights, ``config.json``, ``trainer.pt``, ``state.json``, pickles).
Before anything in an entry is read, :func:`verify` hashes every file: a
missing, altered or unlisted file makes the whole entry count as missing. One
warning line names the file, the entry is removed, and the caller recomputes;
nothing unverified is ever loaded.

Writers hold a file lock per entry (``.<name>.lock`` beside it) from the check
to the publish, so two processes asking for one entry compute it once: the
second waits, then reads the first one's result. That it waits is logged at INFO
on the ``circuitnb.core.cache`` logger: the command line shows it on stderr, while
a notebook, which configures no logging, keeps it out of its cell outputs (and so
off the book's pages). An entry is written into a
hidden sibling (``.<name>.tmp-<pid>``) and renamed into place; what a killed
writer leaves behind is removed by the next holder of the lock (it can only be
a leftover: nobody else may write while the lock is held).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from filelock import FileLock, Timeout

__all__ = ["MANIFEST", "MISSING", "CacheWarning", "sha256_file", "write_manifest", "read_manifest", "verify",
           "publish", "locked", "is_locked", "lock_path", "discard", "remove_leftovers", "leftovers",
           "read_verified", "get_or_make", "size_of"]

MANIFEST = "manifest.json"
log = logging.getLogger(__name__)
FORMAT = 1                       # manifest layout version; an entry with another one is not trusted
MISSING = object()               # read_verified's answer for "no usable entry"
_LEFTOVER_TAGS = (".tmp-", ".old-")


class CacheWarning(UserWarning):
    """A cache entry failed verification: it is treated as missing and recomputed."""


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks (weights can be hundreds of MiB)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _files(folder: Path) -> dict[str, Path]:
    """Every file below ``folder`` except the manifest, by POSIX path relative to it."""
    out = {}
    for dirpath, _, names in os.walk(folder):
        for name in names:
            path = Path(dirpath) / name
            rel = path.relative_to(folder).as_posix()
            if rel != MANIFEST:
                out[rel] = path
    return dict(sorted(out.items()))


def size_of(path: Path) -> int:
    """Bytes under ``path`` (a file or a folder)."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in _files(path).values()) + (
        (path / MANIFEST).stat().st_size if (path / MANIFEST).is_file() else 0)


def write_manifest(folder: Path, kind: str, settings: dict) -> None:
    """Record the sha256 of every file in ``folder`` and the settings that key it."""
    folder = Path(folder)
    files = {rel: sha256_file(p) for rel, p in _files(folder).items()}
    manifest = dict(format=FORMAT, kind=kind, settings=settings, files=files,
                    written=time.strftime("%Y-%m-%dT%H:%M:%S"))
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True, default=str))


def _manifest_json(folder: Path) -> Any:
    """The manifest file's JSON as it stands (any layout), or None when it cannot be read or parsed."""
    try:
        return json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_manifest(folder: Path) -> dict | None:
    """The parsed manifest, or None when it is missing, not a manifest, or of another format version."""
    manifest = _manifest_json(folder)
    ok = isinstance(manifest, dict) and manifest.get("format") == FORMAT and isinstance(manifest.get("files"), dict)
    return manifest if ok else None


def files_fingerprint(paths, relative_to: Path | None = None) -> str:
    """Content hash of files (each one's name and bytes, in the order given), 16 hex digits: the key of the
    package's data files (``results.package_data_fingerprint``) and of the CelebA files a decode read.
    The name is the path relative to ``relative_to``, else the file name."""
    h = hashlib.sha256()
    for path in paths:
        name = str(path.relative_to(relative_to)) if relative_to is not None else path.name
        h.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def array_fingerprint(x) -> str:
    """Content hash of an array (shape, dtype and bytes), 16 hex digits: the key of training data
    (:func:`circuitnb.data.fingerprint`) and of the images a result reads (``results.cached(data=)``)."""
    import numpy as np
    h = hashlib.sha256(f"{x.shape}{x.dtype}".encode())
    h.update(np.ascontiguousarray(x).tobytes())
    return h.hexdigest()[:16]


def verify(folder: Path) -> str | None:
    """None when every file of the entry matches its manifest; else what is wrong, naming the file."""
    folder = Path(folder)
    if not folder.is_dir():
        return f"{folder} is not a folder"
    manifest = read_manifest(folder)
    if manifest is None and not (folder / MANIFEST).exists():
        return f"{folder / MANIFEST} is missing (an entry cut short, or written by a version without manifests)"
    if manifest is None:
        raw = _manifest_json(folder)
        if isinstance(raw, dict) and raw.get("format") != FORMAT:    # another layout: its hashes mean nothing here
            found = f"format {raw['format']!r}" if "format" in raw else "no format version"
            return f"{folder / MANIFEST} has {found}; this version reads format {FORMAT} only"
        return f"{folder / MANIFEST} is unreadable or not a manifest"
    present = _files(folder)
    for rel, digest in sorted(manifest["files"].items()):
        if rel not in present:
            return f"{folder / rel} is missing"
        try:
            if sha256_file(present[rel]) != digest:
                return f"{folder / rel} does not match its sha256 in the manifest"
        except OSError as err:
            return f"{folder / rel} cannot be read ({err.strerror or err})"
    unlisted = sorted(set(present) - set(manifest["files"]))
    if unlisted:                  # a file nobody checksummed could still be read (e.g. a second weights file)
        return f"{folder / unlisted[0]} is not in the manifest"
    return None


def discard(path: Path) -> None:
    """Remove a file or folder (an entry that failed verification, a leftover)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def publish(target: Path, write: Callable[[Path], Any], kind: str, settings: dict) -> Any:
    """Call ``write(tmp)`` on a fresh hidden sibling, add the manifest, rename it to ``target``.

    Returns what ``write`` returned. Hold :func:`locked` (``target``'s entry) around it.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    discard(tmp)
    tmp.mkdir()
    try:
        value = write(tmp)
        write_manifest(tmp, kind, settings)
        # A folder cannot be renamed over a non-empty one: move the old one aside first.
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
    finally:
        discard(tmp)
        discard(old)
    return value


def lock_path(target: Path) -> Path:
    """The lock file of an entry: ``.<name>.lock`` beside it."""
    target = Path(target)
    return target.with_name(f".{target.name}.lock")


@contextmanager
def locked(target: Path, poll: float = 1.0) -> Iterator[None]:
    """Hold ``target``'s lock; logs once (INFO, :data:`log`) when it has to wait for another process."""
    path = lock_path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    # One lock object per path in this process, so a nested request for the same entry re-enters
    # instead of deadlocking on its own lock; other processes (and threads) still wait.
    lock = FileLock(str(path), is_singleton=True)
    try:
        lock.acquire(timeout=poll)
    except Timeout:
        log.info("waiting for another process that is writing %s (lock %s)", target, path)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def is_locked(target: Path) -> bool:
    """True while another process holds ``target``'s lock (a write is in progress)."""
    path = lock_path(target)
    if not path.exists():
        return False
    lock = FileLock(str(path))            # not the singleton: a lock held by this very process counts too
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False


def leftovers(target: Path) -> list[Path]:
    """Hidden ``.<name>.tmp-*`` / ``.<name>.old-*`` siblings a killed writer left behind."""
    target = Path(target)
    if not target.parent.is_dir():
        return []
    return sorted(p for tag in _LEFTOVER_TAGS for p in target.parent.glob(f".{target.name}{tag}*"))


def remove_leftovers(target: Path) -> None:
    """Remove a killed writer's leftovers. Call with the entry's lock held, so none is in use."""
    for path in leftovers(target):
        discard(path)


def read_verified(target: Path, load: Callable[[Path], Any], what: str, redo: str,
                  accept: Callable[[dict | None], bool] | None = None) -> Any:
    """``load(target)`` when the entry verifies; else :data:`MISSING` (a damaged one is warned about and removed).

    ``what`` names the entry in the warning ("model cache entry"), ``redo`` says what happens
    next ("retraining"). An entry that verifies but does not load counts as damaged too. An
    intact entry whose manifest ``accept`` rejects (written by other code) is outdated, not
    damaged: it is removed without a warning.
    """
    target = Path(target)
    if not target.exists():
        return MISSING
    problem = verify(target)
    if problem is None and accept is not None and not accept(read_manifest(target)):
        discard(target)
        return MISSING
    if problem is None:
        try:
            return load(target)
        except Exception as err:  # noqa: BLE001 - any failure to load a verified entry means it is unusable
            problem = f"{target} does not load ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"
    warnings.warn(f"damaged {what}: {problem}; treated as missing, {redo}", CacheWarning, stacklevel=3)
    discard(target)
    return MISSING


def get_or_make(target: Path, load: Callable[[Path], Any], make: Callable[[Path], Any], kind: str,
                settings: dict, what: str = "cache entry", redo: str = "recomputing",
                accept: Callable[[dict | None], bool] | None = None) -> Any:
    """The entry's value: read back when intact (and ``accept``-ed), else ``make(tmp)`` (which writes
    the files and returns the value) published atomically. One writer at a time per entry."""
    target = Path(target)
    with locked(target):
        remove_leftovers(target)
        value = read_verified(target, load, what, redo, accept)
        if value is MISSING:
            value = publish(target, make, kind, settings)
    return value
