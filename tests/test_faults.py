"""Issue 11, one test per defect class: the damage or bad input is planted on a tiny smoke config and the
outcome asserted (retrained or recomputed with one warning naming the file, one error line with exit 2,
or a file skipped and named), together with "nothing else in the cache changed"."""
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
from PIL import Image

import circuitnb.core.config as C
from circuitnb import data
from circuitnb.cli import main
from circuitnb.core import cache, machine
from circuitnb.data import load_celeba
from circuitnb.modeling.checkpoints import WEIGHTS, CacheEntry
from circuitnb.modeling.train import load_or_train
from test_cache import snapshot, write_entry

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
        model = load_or_train(tiny_cfg, "synthetic", progress=False, callback=lambda s, l: seen.append(s))
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
    assert torch.equal(weights(first.unet), weights(again.unet)) and again.unet.config.norm_eps == first.unet.config.norm_eps
    assert snapshot(bystander[0]) == bystander[1]


# --- 4. two trainings of one key: one trains, the other waits and loads ----------------------------------
TRAINER = textwrap.dedent('''
    import hashlib, json, sys, time
    from pathlib import Path
    import torch
    import circuitnb.core.config as C
    from circuitnb.modeling.train import load_or_train
    cfg = C.load("smoke", n_images=16, batch_size=4, train_steps=6, checkpoint_every=2, warmup_steps=1,
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
    cfg = C.load("smoke", n_images=16, batch_size=4, train_steps=6, checkpoint_every=2, warmup_steps=1,
                 block_out_channels=(8, 16, 16), device="cpu", cache_dir=str(tmp_path / "cache"))
    model = load_or_train(cfg, "synthetic", progress=False)
    assert not model.from_cache and not any(".tmp-" in p.name for p in (tmp_path / "cache").rglob("*"))


# --- 5. a damaged result pickle is recomputed, the other results untouched --------------------------------
def test_damaged_result_is_recomputed_others_untouched(tiny_cfg):
    from circuitnb.core import results
    from circuitnb.modeling.train import noise_mse_by_timestep
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


# --- 7. every user-caused error: one line, exit 2, the parameter or file named, the cache untouched ------
@pytest.fixture
def filled_cache(cache):
    write_entry(cache / "results" / "kept-1", {"value.pkl": b"\x80\x04K\x01."})
    return cache


def one_line_error(capsys, argv, *names):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for name in names:
        assert name in err, (name, err)
    return err


def test_devices_torch_cannot_see(capsys, filled_cache, monkeypatch):
    before = snapshot(filled_cache)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    one_line_error(capsys, ["train", "--profile", "smoke", "-p", "device", "cuda"], "'device'", "'cpu'")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    one_line_error(capsys, ["train", "--profile", "smoke", "-p", "device", "mps"], "'device'", "MPS")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    one_line_error(capsys, ["train", "--profile", "smoke", "-p", "device", "cuda:3"], "'cuda:0'")
    with pytest.raises(C.ConfigError, match="'device'"):          # --debug shows the traceback instead
        main(["--debug", "train", "--profile", "smoke", "-p", "device", "cuda:3"])
    assert snapshot(filled_cache) == before


def test_bad_command_lines_and_paths(capsys, filled_cache, tmp_path):
    before = snapshot(filled_cache)
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    (tmp_path / "not.ipynb").write_text("not json")
    (tmp_path / "empty.ipynb").write_text("")
    (tmp_path / "dir.ipynb").mkdir()
    nb = str(ROOT / "book" / "01_data_and_model.ipynb")
    one_line_error(capsys, ["train", "--profile", "smoke", "-p", "profile", "quick"], "-p profile", "--profile")
    for bad in ("not.ipynb", "empty.ipynb", "dir.ipynb"):
        one_line_error(capsys, ["run", str(tmp_path / bad)], bad)
    one_line_error(capsys, ["run", nb, "-o", str(blocker / "out.ipynb")], "-o", str(blocker))
    one_line_error(capsys, ["book", "--profile", "smoke", "--root", str(tmp_path / "nowhere")], "--root")
    one_line_error(capsys, ["book", "--profile", "smoke", "--root", str(tmp_path)], "--root", "_config.yml")
    one_line_error(capsys, ["data", "--profile", "smoke", "--preview", str(blocker / "p.png")], "--preview")
    one_line_error(capsys, ["data", "--profile", "smoke", "--preview", str(tmp_path / "p.xyz")], "--preview", "'png'")
    one_line_error(capsys, ["train", "--profile", "smoke", "-p", "cache_dir", str(blocker)], "'cache_dir'", "is a file")
    assert snapshot(filled_cache) == before and not (tmp_path / "p.xyz").exists()


def test_read_only_cache_is_found_before_training(capsys, filled_cache, monkeypatch):
    before = snapshot(filled_cache)
    if os.geteuid() == 0:       # root writes through chmod; make the write probe meet what a read-only folder gives
        real = machine.tempfile.mkstemp

        def refuse(*args, dir=None, **kw):
            if Path(dir) == filled_cache or filled_cache in Path(dir).parents:
                raise PermissionError(13, "Permission denied")
            return real(*args, dir=dir, **kw)
        monkeypatch.setattr(machine.tempfile, "mkstemp", refuse)
    else:
        for folder in (filled_cache, filled_cache / "results"):
            folder.chmod(0o555)
    try:
        one_line_error(capsys, ["train", "--profile", "smoke", "--dataset", "synthetic"], "$CIRCUITNB_CACHE",
                       "cannot write")
    finally:
        for folder in (filled_cache, filled_cache / "results"):
            folder.chmod(0o755)
    assert snapshot(filled_cache) == before and not (filled_cache / "models").exists()   # nothing trained


def test_sizes_beyond_the_machine(capsys, filled_cache, monkeypatch):
    before = snapshot(filled_cache)
    monkeypatch.setattr(machine, "machine_memory", lambda device="cpu": 8 * 2 ** 30)   # an 8 GiB machine
    one_line_error(capsys, ["train", "--profile", "smoke", "-p", "n_images", "250000", "-p", "image_size", "128"],
                   "'n_images'", "8.0 GiB")
    one_line_error(capsys, ["train", "--profile", "smoke", "-p", "batch_size", "4096", "-p", "image_size", "128"],
                   "'batch_size'")
    assert C.load("paper")                                      # the paper's sizes fit such a machine
    assert snapshot(filled_cache) == before


def test_celeba_env_is_checked_before_any_training(capsys, filled_cache, monkeypatch, tmp_path):
    before = snapshot(filled_cache)
    monkeypatch.setenv("CIRCUITNB_CELEBA", str(tmp_path / "no_celeba"))
    data._natural.cache_clear()
    one_line_error(capsys, ["train", "--profile", "smoke", "-p", "train_steps", "2"], "CIRCUITNB_CELEBA")
    assert snapshot(filled_cache) == before and not (filled_cache / "models").exists()   # synthetic not trained


ATTRIBUTE_DAMAGE = {
    "non-integer": (lambda text: text.replace(" 1", " x", 1), "allowed: 1 or -1"),
    "not 1 or -1": (lambda text: text.replace(" -1", " 2", 1), "allowed: 1 or -1"),
    "duplicate row": (lambda text: text + text.splitlines()[2] + "\n", "a second row"),
    "non-UTF-8": (lambda text: text.encode()[:60] + b"\xff\xfe" + text.encode()[60:], "not UTF-8"),
    "a folder": (None, "is a folder"),
}


@pytest.mark.parametrize("kind", list(ATTRIBUTE_DAMAGE))
def test_malformed_attribute_file(capsys, filled_cache, small_celeba, kind):
    before = snapshot(filled_cache)
    path = small_celeba / "list_attr_celeba.txt"
    change, message = ATTRIBUTE_DAMAGE[kind]
    if change is None:
        path.unlink()
        path.mkdir()
    else:
        new = change(path.read_text())
        path.write_bytes(new if isinstance(new, bytes) else new.encode())
    one_line_error(capsys, ["data", "--profile", "smoke", "--dataset", "celeba", "-p", "celeba_root",
                            str(small_celeba)], str(path), message)
    assert snapshot(filled_cache) == before


def test_bomb_and_tiny_images_are_skipped_and_named(small_celeba, monkeypatch):
    folder = small_celeba / "img_align_celeba"
    (folder / "999999.jpg").unlink()                               # only the planted files below are bad
    Image.new("1", (2000, 2000)).save(folder / "bomb.png")         # 4 Mpx, a few kB on disk
    Image.new("1", (1200, 1200)).save(folder / "nearbomb.png")     # between Pillow's warning and error limits
    Image.new("RGB", (1, 1)).save(folder / "dot.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000_000)      # CelebA photos (178x218) stay far below
    with pytest.warns(UserWarning, match="skipped 3 unreadable") as record:
        nat = load_celeba(small_celeba, n=100, image_size=16, match_attributes=False)
    message = str(record[0].message)
    for name in ("bomb.png (DecompressionBombError)", "nearbomb.png (DecompressionBombWarning)", "dot.png (1x1 pixels"):
        assert name in message
    assert len(nat) == 10 and not {"bomb.png", "nearbomb.png", "dot.png"} & set(nat.names)


# --- notebooks: the failing cell counted in the source notebook, quiet kernel, no injected cell on pages ---
def _notebook(path: Path, cells: list[str]) -> Path:
    import nbformat
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    nb.cells = [nbformat.v4.new_markdown_cell("# A chapter")]
    for k, source in enumerate(cells):
        cell = nbformat.v4.new_code_cell(source)
        if k == 0:
            cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nbformat.write(nb, str(path))
    return path


def test_failing_cell_index_and_quiet_kernel(tmp_path, capfd):
    import nbformat
    from circuitnb.publish.book import NotebookError, run_notebook
    bad = _notebook(tmp_path / "bad.ipynb", ['seed = 0', 'x = 1', 'raise RuntimeError("planted")'])
    with pytest.raises(NotebookError, match=r"cell 3 \(counting from 0 in the notebook; In \[\d\]\) failed: "
                                            r"RuntimeError: planted") as err:
        run_notebook(bad, {"seed": 1}, output=tmp_path / "out" / "bad.ipynb")
    source_cells = nbformat.read(str(bad), as_version=4).cells
    assert 'planted' in source_cells[3].source and "\n" not in str(err.value)
    good = _notebook(tmp_path / "good.ipynb", ['seed = 0', 'print(seed)'])
    out = run_notebook(good, {"seed": 1}, output=tmp_path / "out" / "good.ipynb")
    cells = nbformat.read(str(out), as_version=4).cells
    injected = [c for c in cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "remove-cell" in injected[0].metadata["tags"]
    assert "without encryption" not in capfd.readouterr().err      # the kernel talks over IPC, not TCP


# --- 8. the book trains or loads its models in the terminal, after reading every dataset -----------------
def test_book_prepares_models_first(tiny_cfg, celeba_root, capsys, monkeypatch, tmp_path):
    from circuitnb.publish.book import prepare_models, required_models
    cfg = C.with_overrides(tiny_cfg, celeba_root="")
    assert [(m.label, m.dataset) for m in required_models(cfg)] == [(d, d) for d in data.DATASETS]
    monkeypatch.setenv("CIRCUITNB_CELEBA", str(tmp_path / "no_celeba"))
    data._natural.cache_clear()
    with pytest.raises(data.DataError, match="CIRCUITNB_CELEBA"):
        prepare_models(cfg, progress=False)
    assert not (cfg.cache_path / "models").exists()                     # no model was trained first
    monkeypatch.setenv("CIRCUITNB_CELEBA", str(celeba_root))
    models = prepare_models(cfg, progress=False)
    assert set(models) == set(data.DATASETS) and not any(m.from_cache for m in models.values())
    err = capsys.readouterr().err
    assert re.search(r"model synthetic: trained in [\d.]+ s", err) and "model celeba: trained" in err
    prepare_models(cfg, progress=False)
    assert "model celeba: loaded from the cache" in capsys.readouterr().err
