"""core.cache, core.results and core.inventory: manifests, verification, one writer, code-keyed results."""
import importlib.util
import os
import pickle
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

import circuitnb.core.config as C
from circuitnb.core import cache, inventory, results

ROOT = Path(__file__).resolve().parents[1]


def snapshot(root: Path) -> dict:
    """Every file under ``root`` (lock files aside) with its sha256: what 'nothing else changed' compares."""
    return {str(p.relative_to(root)): cache.sha256_file(p) for p in sorted(Path(root).rglob("*"))
            if p.is_file() and not p.name.endswith(".lock")}


def write_entry(target: Path, files: dict) -> None:
    def write(tmp):
        for rel, data in files.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_bytes(data)
    cache.publish(target, write, kind="test", settings={"n": len(files)})


# --- manifests ---------------------------------------------------------------------------------------
def test_manifest_covers_every_file_and_names_the_bad_one(tmp_path):
    entry = tmp_path / "e"
    write_entry(entry, {"a.bin": b"abc", "sub/config.json": b"{}"})
    manifest = cache.read_manifest(entry)
    assert set(manifest["files"]) == {"a.bin", "sub/config.json"} and manifest["settings"] == {"n": 2}
    assert cache.verify(entry) is None
    (entry / "sub" / "config.json").write_bytes(b'{"x": 1}')
    assert cache.verify(entry) == f"{entry / 'sub' / 'config.json'} does not match its sha256 in the manifest"
    write_entry(entry, {"a.bin": b"abc"})
    (entry / "a.bin").unlink()
    assert "a.bin is missing" in cache.verify(entry)
    write_entry(entry, {"a.bin": b"abc"})
    (entry / "extra.bin").write_bytes(b"")                 # a file nobody checksummed could still be read
    assert "extra.bin is not in the manifest" in cache.verify(entry)
    (entry / cache.MANIFEST).write_text("{broken")
    assert "manifest.json is unreadable or not a manifest" in cache.verify(entry)
    (entry / cache.MANIFEST).unlink()                       # e.g. an entry written before manifests existed
    assert "manifest.json is missing" in cache.verify(entry)


def test_damaged_entry_is_never_loaded_warned_once_and_removed(tmp_path):
    entry = tmp_path / "e"
    write_entry(entry, {"v": b"1"})
    (entry / "v").write_bytes(b"2")
    loads = []
    with pytest.warns(cache.CacheWarning) as record:
        assert cache.read_verified(entry, loads.append, "test entry", "recomputing") is cache.MISSING
    assert not loads and not entry.exists()
    assert len(record) == 1 and str(entry / "v") in str(record[0].message)
    assert "\n" not in str(record[0].message)


def test_get_or_make_removes_a_killed_writers_leftovers(tmp_path):
    target = tmp_path / "results" / "x-1"
    left = target.with_name(".x-1.tmp-99999")
    left.mkdir(parents=True)
    (left / "value.pkl").write_bytes(b"half")
    value = cache.get_or_make(target, lambda d: (d / "v").read_text(),
                              lambda tmp: (tmp / "v").write_text("ok") and "ok", kind="t", settings={})
    assert value == "ok" and not left.exists() and cache.verify(target) is None
    assert cache.get_or_make(target, lambda d: (d / "v").read_text(), lambda tmp: 1 / 0, kind="t", settings={}) == "ok"


# --- results ------------------------------------------------------------------------------------------
def fake_model(key="synthetic-0"):
    return SimpleNamespace(meta={"key": key})


def test_result_pickle_damage_is_recomputed_never_unpickled(tiny_cfg):
    calls = []

    def compute():
        calls.append(1)
        return {"table": list(range(50))}
    first = results.cached(tiny_cfg, "demo", fake_model(), compute)
    (entry,) = [p for p in (tiny_cfg.cache_path / "results").iterdir() if not p.name.startswith(".")]
    blob = (entry / results.VALUE).read_bytes()
    for pos in range(0, len(blob), max(1, len(blob) // 12)):    # flips all along the pickle
        damaged = bytearray(blob)
        damaged[pos] ^= 0x55
        (entry / results.VALUE).write_bytes(bytes(damaged))
        with pytest.warns(cache.CacheWarning, match="value.pkl does not match its sha256"):
            assert results.cached(tiny_cfg, "demo", fake_model(), compute) == first
    assert len(calls) == 1 + len(range(0, len(blob), max(1, len(blob) // 12)))
    assert results.cached(tiny_cfg, "demo", fake_model(), compute) == first and calls.count(1) == len(calls)


def test_result_key_follows_settings_read_and_models(tiny_cfg):
    path = results.result_path(tiny_cfg, "r", ["m1"], reads=["timesteps"])
    assert path.name == results.VALUE and path.parent.parent == tiny_cfg.cache_path / "results"
    same = results.result_path(C.with_overrides(tiny_cfg, n_bootstrap=999), "r", ["m1"], reads=["timesteps"])
    assert same == path                                               # a setting it does not read
    for changed in (results.result_path(C.with_overrides(tiny_cfg, timesteps=[5]), "r", ["m1"], reads=["timesteps"]),
                    results.result_path(tiny_cfg, "r", ["m2"], reads=["timesteps"]),
                    results.result_path(tiny_cfg, "r", ["m1"], reads=["timesteps"], t=3),
                    results.result_path(tiny_cfg, "r", ["m1"])):      # default: every analysis setting
        assert changed != path
    with pytest.raises(ValueError, match="'bogus'"):
        results.result_path(tiny_cfg, "r", [], reads=["bogus"])


def _load_module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_code_change_recomputes_prose_change_does_not(tiny_cfg, tmp_path, monkeypatch):
    # A private package tree: the compute function's module imports a helper module, as chapters do.
    pkg = tmp_path / "circuitnb"
    (pkg / "measures").mkdir(parents=True)
    (pkg / "measures" / "helper.py").write_text("def k():\n    return 2\n")
    (pkg / "chapters").mkdir()
    chapter = pkg / "chapters" / "demo.py"
    # The import sits in the function so that loading this module does not need the fake helper.
    chapter.write_text("def compute():\n    from circuitnb.measures import helper\n    return helper.k()\n")
    monkeypatch.setattr(results, "_PACKAGE", pkg)
    fn = _load_module(chapter, "demo_chapter").compute
    before = results.code_fingerprint(fn)
    chapter.write_text('"""Docs."""\n# a comment\n\ndef compute():\n    """More docs."""\n'
                       '    from circuitnb.measures import helper\n    return helper.k()\n')
    assert results.code_fingerprint(fn) == before                   # prose only
    calls = []

    def compute():
        calls.append(1)
        return len(calls)
    assert results.cached(tiny_cfg, "demo", fake_model(), compute, code=[fn]) == 1
    assert results.cached(tiny_cfg, "demo", fake_model(), compute, code=[fn]) == 1     # a hit
    (pkg / "measures" / "helper.py").write_text("def k():\n    return 3\n")
    assert results.code_fingerprint(fn) != before                    # a module it imports changed ...
    assert results.cached(tiny_cfg, "demo", fake_model(), compute, code=[fn]) == 2     # ... so it is recomputed
    entries = [p for p in (tiny_cfg.cache_path / "results").iterdir() if not p.name.startswith(".")]
    assert len(entries) == 1 and cache.read_manifest(entries[0])["settings"]["code"] == results.code_fingerprint(
        compute, fn)                                                   # the outdated result was replaced


# --- one writer per entry, with real processes -------------------------------------------------------
WORKER = textwrap.dedent('''
    import sys, time, json
    import logging
    logging.basicConfig(format="circuitnb: %(message)s")     # what the CLI shows: the lock wait, logged at INFO
    logging.getLogger("circuitnb").setLevel(logging.INFO)
    from pathlib import Path
    from types import SimpleNamespace
    import circuitnb.core.config as C
    from circuitnb.core import results
    cfg = C.load("smoke", n_images=16, n_analysis=8, device="cpu", cache_dir=sys.argv[1])
    log = Path(sys.argv[2])

    started, ready = Path(sys.argv[3]), Path(sys.argv[3] + ".ready")

    def compute():
        with open(log, "a") as f:
            f.write("computed\\n")
        started.write_text("started")
        deadline = time.time() + 240
        while not ready.exists() and time.time() < deadline:   # hold the lock until the second one is at it
            time.sleep(0.05)
        time.sleep(6)               # > the 1 s after which the waiter says so, with room for a loaded CPU
        return {"pid": __import__("os").getpid()}
    if started.exists():
        ready.write_text("second")
    value = results.cached(cfg, "shared", SimpleNamespace(meta={"key": "m"}), compute)
    print(json.dumps(value))
''')


def test_two_processes_compute_one_result_once(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    args = [sys.executable, str(script), str(tmp_path / "cache"), str(tmp_path / "log"), str(tmp_path / "started")]
    first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 120
    while not (tmp_path / "started").exists():
        assert first.poll() is None and time.time() < deadline, first.communicate()
        time.sleep(0.05)
    second = subprocess.run(args, capture_output=True, text=True, env=env, timeout=180)
    out1, err1 = first.communicate(timeout=180)
    assert first.returncode == 0 and second.returncode == 0, (err1, second.stderr)
    assert (tmp_path / "log").read_text() == "computed\n"           # one computation
    assert out1 == second.stdout                                      # the second read the first one's result
    assert "waiting for another process" in second.stderr


WAITER = textwrap.dedent('''
    import sys, threading
    from pathlib import Path
    from circuitnb.core import cache
    target, cli = Path(sys.argv[1]), sys.argv[2] == "cli"
    held, release = threading.Event(), threading.Event()

    def writer():                       # another writer (a thread: the lock excludes threads too)
        with cache.locked(target):
            held.set()
            release.wait(60)
    threading.Thread(target=writer).start()
    held.wait(60)
    threading.Timer(0.5, release.set).start()
    if cli:
        from circuitnb.cli import _log_to_stderr
        with _log_to_stderr(), cache.locked(target, poll=0.1):
            print("written")
    else:
        with cache.locked(target, poll=0.1):
            print("written")
''')


@pytest.mark.parametrize("how", ["notebook", "cli"])
def test_a_lock_wait_shows_in_the_terminal_of_the_cli_only(tmp_path, how):
    # A notebook kernel's sys.stderr is its cell output: a wait printed there once showed on a built page.
    # The library logs it at INFO, which unconfigured Python drops and the command line's handler shows.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-c", WAITER, str(tmp_path / "results" / "entry"), how],
                         capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0 and run.stdout == "written\n", run.stderr
    if how == "cli":
        assert run.stderr.startswith("circuitnb: waiting for another process that is writing "), run.stderr
    else:
        assert run.stderr == ""



def test_each_takes_entries_in_progress_elsewhere_last(tiny_cfg):
    """results.each: a result whose lock another writer holds is taken after the free ones (which are
    computed meanwhile), then waited for; values come back in the callers' order."""
    import functools
    import threading

    from filelock import FileLock
    order = []

    def call(i, wait=True):
        return results.cached(tiny_cfg, "each_demo", fake_model(), lambda: order.append(i) or 10 * i, i=i, wait=wait)
    busy = results.result_path(tiny_cfg, "each_demo", ["synthetic-0"], i=0).parent
    busy.parent.mkdir(parents=True, exist_ok=True)
    held = threading.Event()

    def other_writer():                                        # holds entry 0's lock until 1 and 2 are done
        lock = FileLock(str(cache.lock_path(busy)))
        with lock:
            held.set()
            deadline = time.time() + 60
            while len(order) < 2 and time.time() < deadline:
                time.sleep(0.05)
            time.sleep(0.2)
    threading.Thread(target=other_writer).start()
    held.wait()
    assert call(0, wait=False) is results.BUSY
    assert results.each([functools.partial(call, i) for i in range(3)]) == [0, 10, 20]
    assert order == [1, 2, 0]                                  # in order it would have waited first
    assert results.each([functools.partial(call, i) for i in range(3)]) == [0, 10, 20] and order == [1, 2, 0]


# --- inventory (circuitnb cache ls / verify) -----------------------------------------------------------
def test_scan_lists_entries_and_finds_damage(tmp_path):
    root = tmp_path / "cache"
    write_entry(root / "models" / "synthetic-1" / "final", {"unet/config.json": b"{}", "meta.json": b"{}"})
    write_entry(root / "results" / "sweep-2", {"value.pkl": pickle.dumps(1)})
    (root / "results" / "old-3.pkl").write_bytes(b"x")                           # older layout
    (root / "models" / "synthetic-1" / ".checkpoint.tmp-4").mkdir()               # a killed writer's folder
    found = {str(e.path.relative_to(root)): e for e in inventory.scan(root)}
    assert found["models/synthetic-1/final"].status == "ok" and found["models/synthetic-1/final"].kind == "model"
    assert found["results/sweep-2"].status == "ok" and found["results/sweep-2"].settings == {"n": 1}
    assert found["results/old-3.pkl"].status == "damaged"
    assert found["models/synthetic-1/.checkpoint.tmp-4"].status == "damaged"
    (root / "results" / "sweep-2" / "value.pkl").write_bytes(b"y")
    assert inventory.scan(root)[-1].problem.endswith("value.pkl does not match its sha256 in the manifest")
    with cache.locked(root / "results" / "sweep-2"):
        busy = [e for e in inventory.scan(root) if e.path.name == "sweep-2"]
    assert busy[0].status == "in use"


def test_nested_request_for_one_entry_does_not_deadlock(tmp_path):
    target = tmp_path / "results" / "nested-1"
    with cache.locked(target):
        with cache.locked(target):                  # the same process re-enters its own lock
            assert cache.is_locked(target)
    assert not cache.is_locked(target)


def test_chapter_results_are_cached_and_keyed_by_what_they_read(tiny_cfg, monkeypatch, tmp_path):
    """common.cached_chapter: a second call is served from the cache; another config value, option or
    package data file (the claims and margins a verdict reads) computes it again."""
    import shutil

    from circuitnb.chapters import common
    calls = []

    @common.cached_chapter()
    def chapter(cfg, k=0):
        calls.append(k)
        return {"k": k, "n": cfg.analysis.n_bootstrap}
    assert chapter(tiny_cfg) == {"k": 0, "n": tiny_cfg.analysis.n_bootstrap} and chapter(tiny_cfg) == chapter(tiny_cfg)
    assert calls == [0]
    assert chapter(tiny_cfg, k=1)["k"] == 1 and calls == [0, 1]                     # an option keys it
    other = C.with_overrides(tiny_cfg, n_bootstrap=tiny_cfg.analysis.n_bootstrap + 1)
    assert chapter(other)["n"] == other.analysis.n_bootstrap and calls == [0, 1, 0]  # a config field keys it
    package = tmp_path / "circuitnb"                                                  # a package whose margins differ
    shutil.copytree(results._DATA_FILES, package, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(results, "_DATA_FILES", package)
    before = results.package_data_fingerprint()
    chapter(tiny_cfg)
    assert calls == [0, 1, 0]                                                         # same files: a hit
    margins = package / "measures" / "paper" / "margins.csv"
    margins.write_text(margins.read_text().replace(",", ", ", 1))
    assert results.package_data_fingerprint() != before
    chapter(tiny_cfg)
    assert calls == [0, 1, 0, 0]
