"""Damaged caches: the damage is planted on a tiny smoke config and the outcome asserted
(retrained, recomputed, trained once, cleaned up) with one warning naming the file, together with
"nothing else in the cache changed". Bad inputs are in test_bad_inputs.py."""
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

import circuitnb.core.config as C
from circuitnb import data
from circuitnb.core import cache
from circuitnb.modeling.checkpoints import WEIGHTS, CacheEntry
from circuitnb.modeling.train import load_or_train

from test_cache import snapshot

ROOT = Path(__file__).resolve().parents[1]


def weights(unet):
    return torch.cat([p.detach().flatten() for p in unet.parameters()])


def alter(path: Path) -> None:
    """A plausible edit: JSON stays valid JSON with one value changed; binary files get one byte flipped."""
    if path.suffix == ".json":
        doc = json.loads(path.read_text())
        if "step" in doc:
            doc["step"] -= 2                                   # resume at the wrong step
        elif "norm_eps" in doc:
            doc["norm_eps"] = 1e-2                             # loads fine, computes something else
        else:
            doc["losses"] = doc["losses"][:1]
        path.write_text(json.dumps(doc))
    else:
        blob = bytearray(path.read_bytes())
        blob[len(blob) // 2] ^= 0xFF
        path.write_bytes(bytes(blob))


@pytest.fixture
def bystander(tiny_cfg):
    """Another trained model in the same cache: it must come out of every test byte-identical."""
    model = load_or_train(C.with_overrides(tiny_cfg, seed=7), "synthetic", progress=False)
    folder = CacheEntry(tiny_cfg.cache_path, model.meta["key"]).dir
    return folder, snapshot(folder)


# --- 2. an altered training checkpoint is never resumed -------------------------------------------------
@pytest.mark.parametrize("damaged", ["trainer.pt", "state.json", "unet/config.json", f"unet/{WEIGHTS}"])
def test_altered_checkpoint_is_never_resumed(tiny_cfg, tmp_path, bystander, damaged):
    def crash(step, loss):
        if step == 5:                                        # the last checkpoint was written at step 4
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        load_or_train(tiny_cfg, "synthetic", progress=False, callback=crash)
    (entry,) = [CacheEntry(tiny_cfg.cache_path, p.name) for p in (tiny_cfg.cache_path / "models").iterdir()
                if p.is_dir() and p != bystander[0]]
    path = entry.checkpoint_dir / damaged
    alter(path)
    seen = []
    with pytest.warns(cache.CacheWarning, match=re.escape(str(path))):
        model = load_or_train(tiny_cfg, "synthetic", progress=False, callback=lambda s, loss: seen.append(s))
    assert seen == [1, 2, 3, 4, 5, 6] and not model.meta["resumed"]        # trained afresh, not resumed
    clean = load_or_train(C.with_overrides(tiny_cfg, cache_dir=str(tmp_path / "clean")), "synthetic", progress=False)
    assert torch.equal(weights(model.unet), weights(clean.unet))
    assert snapshot(bystander[0]) == bystander[1]


# --- 3. every file that is read back is covered by the checksum ------------------------------------------
@pytest.mark.parametrize("damaged", ["unet/config.json", f"unet/{WEIGHTS}", "meta.json"])
def test_every_final_file_is_verified(tiny_cfg, bystander, damaged):
    first = load_or_train(tiny_cfg, "synthetic", progress=False)
    entry = CacheEntry(tiny_cfg.cache_path, first.meta["key"])
    path = entry.final_dir / damaged
    alter(path)
    with pytest.warns(cache.CacheWarning, match=re.escape(str(path))) as record:
        again = load_or_train(tiny_cfg, "synthetic", progress=False)
    assert len([w for w in record if issubclass(w.category, cache.CacheWarning)]) == 1
    assert not again.from_cache and entry.verify() is None
    assert torch.equal(weights(first.unet), weights(again.unet))
    assert again.unet.config.norm_eps == first.unet.config.norm_eps
    assert snapshot(bystander[0]) == bystander[1]


# --- 4. two trainings of one key: one trains, the other waits and loads ----------------------------------
TRAINER = textwrap.dedent('''
    import hashlib, json, sys, time
    import logging
    logging.basicConfig(format="circuitnb: %(message)s")     # what the CLI shows: the lock wait, logged at INFO
    logging.getLogger("circuitnb").setLevel(logging.INFO)
    from pathlib import Path
    import torch
    import circuitnb.core.config as C
    from circuitnb.modeling.train import load_or_train
    cfg = C.load("smoke", n_images=16, n_analysis=8, batch_size=4, train_steps=6, checkpoint_every=2, warmup_steps=1,
                 block_out_channels=(8, 16, 16), device="cpu", cache_dir=sys.argv[1])
    started, ready = Path(sys.argv[2]), Path(sys.argv[2] + ".ready")

    def slow(step, loss):
        if step == 1 and sys.argv[3] == "first":            # hold the lock until the second one is at it
            started.write_text("training")
            deadline = time.time() + 240
            while not ready.exists() and time.time() < deadline:
                time.sleep(0.05)
            time.sleep(2.5)                                 # > the 1 s after which the waiter says so
    if sys.argv[3] == "second":
        ready.write_text("importing done")
    if sys.argv[3] == "kill":                               # die inside the first checkpoint write
        import os, signal
        def dying_save(obj, path):
            Path(path).write_bytes(b"half a file")
            os.kill(os.getpid(), signal.SIGKILL)
        torch.save = dying_save
    m = load_or_train(cfg, "synthetic", progress=False, callback=slow)
    digest = hashlib.sha256(torch.cat([p.detach().flatten() for p in m.unet.parameters()]).numpy().tobytes())
    print(json.dumps(dict(from_cache=m.from_cache, weights=digest.hexdigest())))
''')


def _trainer(tmp_path, role, cache_dir):
    script = tmp_path / "trainer.py"
    script.write_text(TRAINER)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return [sys.executable, str(script), str(cache_dir), str(tmp_path / "started"), role], env


def test_two_trainings_of_one_key_train_once(tmp_path):
    args, env = _trainer(tmp_path, "first", tmp_path / "cache")
    first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 180
    while not (tmp_path / "started").exists():
        assert first.poll() is None and time.time() < deadline, first.communicate()
        time.sleep(0.05)
    second = subprocess.run(_trainer(tmp_path, "second", tmp_path / "cache")[0], capture_output=True, text=True,
                            env=env, timeout=300)
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0 and second.returncode == 0, (err, second.stderr)
    a, b = json.loads(out), json.loads(second.stdout)
    assert not a["from_cache"] and b["from_cache"] and a["weights"] == b["weights"]
    assert "waiting for another process" in second.stderr
    (key_dir,) = [p for p in (tmp_path / "cache" / "models").iterdir() if p.is_dir()]
    assert cache.verify(key_dir / "final") is None


def test_killed_write_leaves_nothing_behind(tmp_path):
    args, env = _trainer(tmp_path, "kill", tmp_path / "cache")
    assert subprocess.run(args, capture_output=True, env=env, timeout=300).returncode == -9
    left = list((tmp_path / "cache").rglob(".checkpoint.tmp-*"))
    assert left                                                # the kill did leave a half-written folder
    cfg = C.load("smoke", n_images=16, n_analysis=8, batch_size=4, train_steps=6, checkpoint_every=2, warmup_steps=1,
                 block_out_channels=(8, 16, 16), device="cpu", cache_dir=str(tmp_path / "cache"))
    model = load_or_train(cfg, "synthetic", progress=False)
    assert not model.from_cache and not any(".tmp-" in p.name for p in (tmp_path / "cache").rglob("*"))


# --- 5. a damaged result pickle is recomputed, the other results untouched --------------------------------
def test_damaged_result_is_recomputed_others_untouched(tiny_cfg):
    from circuitnb.core import results
    from circuitnb.modeling.sampling import noise_mse_by_timestep
    model = load_or_train(tiny_cfg, "synthetic", progress=False)
    x0 = data.images(tiny_cfg, "synthetic")[:4]
    calls = []

    def mse(t):
        calls.append(t)
        return noise_mse_by_timestep(model.unet, model.scheduler, x0, [t])
    a = results.cached(tiny_cfg, "mse", model, lambda: mse(10), t=10)
    results.cached(tiny_cfg, "mse", model, lambda: mse(900), t=900)
    folders = sorted(p for p in (tiny_cfg.cache_path / "results").iterdir() if not p.name.startswith("."))
    target = next(f for f in folders if cache.read_manifest(f)["settings"]["extra"] == {"t": 10})
    others = {f: snapshot(f) for f in folders if f != target}
    alter(target / "value.pkl")
    with pytest.warns(cache.CacheWarning, match=re.escape(str(target / "value.pkl"))):
        again = results.cached(tiny_cfg, "mse", model, lambda: mse(10), t=10)
    assert calls == [10, 900, 10] and again.equals(a)
    assert all(snapshot(f) == s for f, s in others.items())


def test_a_result_is_keyed_by_the_images_it_reads(tiny_cfg):
    """A synthetic model's activations on CelebA images were once served from the cache after the CelebA
    folder changed (its key covered only its own training data): ``data=`` keys a result by image content."""
    from circuitnb.core import results
    model = load_or_train(tiny_cfg, "synthetic", progress=False)
    x0 = data.images(tiny_cfg, "synthetic")[:4]
    calls = []

    def mean_of(images):
        calls.append(1)
        return float(images.mean())
    first = results.cached(tiny_cfg, "on_images", model, lambda: mean_of(x0), data={"other": x0})
    assert results.cached(tiny_cfg, "on_images", model, lambda: mean_of(x0), data={"other": x0}) == first
    other = x0.copy()
    other[0, 0, 0, 0] += 0.5                                           # one pixel of the other data changed
    assert results.cached(tiny_cfg, "on_images", model, lambda: mean_of(other), data={"other": other}) != first
    assert len(calls) == 2


def test_every_cached_chapter_result_that_reads_images_is_keyed_by_them():
    """Every ``results.cached`` call in the chapters and the analysis layer passes ``data=``, except results
    computed from noise alone."""
    import ast
    from pathlib import Path

    import circuitnb.analysis as analysis
    import circuitnb.chapters as chapters
    from_noise = {"samples", "explorer_scrub"}                        # sampling from pure noise reads no image
    missing = []
    paths = [p for pkg in (chapters, analysis) for p in sorted(Path(pkg.__file__).parent.glob("*.py"))]
    assert any(p.parent.name == "analysis" and "results.cached" in p.read_text() for p in paths)
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "results.cached":
                name = node.args[1].value if isinstance(node.args[1], ast.Constant) else ast.unparse(node.args[1])
                if name not in from_noise and "data" not in {k.arg for k in node.keywords}:
                    missing.append(f"{path.name}: {name}")
    assert not missing, missing
