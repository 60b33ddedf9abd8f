"""The book's models trained as Ray tasks on a real local Ray cluster of 2 CPUs.

Ray's workers are separate processes like the local pool's, each training on one thread, so the weights
must equal the local pool's byte for byte; a worker killed mid-training must leave a checkpoint that the
retried task (or the next run) resumes, to the same bytes as an uninterrupted training.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import circuitnb.core.config as C
from circuitnb import data
from circuitnb.modeling.checkpoints import CacheEntry
from circuitnb.modeling.train import load_or_train
from circuitnb.publish import book, executors

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def ray_cluster():
    try:
        import ray
    except ImportError:
        pytest.skip("Ray is not installed, so no cluster can start: pip install circuitnb[cluster]")
    # Workers unpickle this module's DieOnce: they import it from the tests folder.
    path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p)
    try:
        ray.init(num_cpus=2, include_dashboard=False, logging_level="warning",
                 runtime_env={"env_vars": {"PYTHONPATH": path}})
    except Exception as err:  # noqa: BLE001 - whatever keeps Ray from starting here is the reason to skip
        pytest.skip(f"a local Ray cluster cannot start here: {type(err).__name__}: {err}")
    yield ray
    ray.shutdown()


class DieOnce:
    """A training callback that SIGKILLs its worker at ``step`` the first time only (``marker`` remembers),
    as a preempted or out-of-memory node would; every step it sees goes to ``log`` as 'pid step'."""

    def __init__(self, marker: Path, log: Path, step: int):
        self.marker, self.log, self.step = marker, log, step

    def __call__(self, step: int, loss: float) -> None:
        with open(self.log, "a") as f:
            f.write(f"{os.getpid()} {step}\n")
        if step == self.step and not self.marker.exists():
            self.marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)


def _safetensors(cache: Path) -> dict[str, bytes]:
    """Every weights file of every model in ``cache`` (final and snapshots), by path inside the cache."""
    files = sorted((cache / "models").glob("*/**/*.safetensors"))
    return {str(p.relative_to(cache)): p.read_bytes() for p in files if "checkpoint" not in p.parts}


def _unets(cfg) -> list[book.RequiredModel]:
    return [m for m in book.required_models(cfg) if m.part == "unet"]


def test_ray_trains_the_smoke_unets_byte_for_byte_as_the_local_pool(ray_cluster, tmp_path, celeba_root):
    # The smoke profile's UNets, one replicate per dataset (the fewest models that still run side by side),
    # trained 10 steps instead of 30: what is compared is the weights, not how far they got.
    smoke = dict(replicates=1, train_steps=10, checkpoint_every=5, n_snapshots=2, device="cpu",
                 celeba_root=str(celeba_root))
    local = C.load("smoke", cache_dir=str(tmp_path / "local"), **smoke)
    on_ray = C.load("smoke", cache_dir=str(tmp_path / "ray"), **smoke)
    for cfg in (local, on_ray):                       # the data draws, as prepare_models reads them first
        for m in _unets(cfg):
            data.images(cfg, m.dataset, "train", m.replicate)
    start = time.perf_counter()
    book._train_in_parallel(_unets(local), progress=False)
    local_s = time.perf_counter() - start
    start = time.perf_counter()
    executor = executors.RayExecutor()                # joins the cluster the fixture started
    book._train_in_parallel(_unets(on_ray), progress=True, executor=executor)   # progress: tqdm_ray bars
    ray_s = time.perf_counter() - start
    print(f"\nsmoke UNets x{len(_unets(local))}: local pool {local_s:.1f} s, Ray {ray_s:.1f} s")
    a, b = _safetensors(tmp_path / "local"), _safetensors(tmp_path / "ray")
    assert len(a) == 2 * local.train.n_snapshots and a.keys() == b.keys()   # final + snapshots, same keys
    assert [name for name in a if a[name] != b[name]] == []
    for m in _unets(on_ray):
        assert m.cached and load_or_train(on_ray, m.dataset, progress=False).from_cache


def test_a_killed_worker_loses_only_its_model_and_resumes_from_its_checkpoint(ray_cluster, tmp_path):
    tiny = dict(n_images=16, n_analysis=8, batch_size=4, train_steps=6, checkpoint_every=2, warmup_steps=1,
                n_snapshots=2, block_out_channels=(8, 16, 16), replicates=1, device="cpu")
    cfgs = {name: C.load("smoke", cache_dir=str(tmp_path / name), **tiny) for name in ("whole", "killed", "retried")}
    model = {name: book.RequiredModel("synthetic r0", cfg, "synthetic", 0) for name, cfg in cfgs.items()}
    executor = executors.RayExecutor()
    book._train_in_parallel([model["whole"]], progress=False, executor=executor)        # never interrupted
    whole = _safetensors(tmp_path / "whole")

    # 1. No retries: the kill loses that model only (its neighbour finishes), names it, and leaves the
    # checkpoint of step 2 behind.
    die = DieOnce(tmp_path / "killed.marker", tmp_path / "killed.log", step=3)
    neighbour = book.RequiredModel("synthetic r1", cfgs["killed"], "synthetic", 1)
    jobs = {"synthetic r0": (model["killed"], 1, None, False, die, "tqdm"),
            "synthetic r1": (neighbour, 1, None, False, None, "tqdm")}
    finished = []
    with pytest.raises(executors.WorkerLost, match=r"lost 1 job\(s\).*: synthetic r0 \(.*\).*resumes from its last"):
        finished.extend(label for label, _ in executor.map(book._train_one, jobs, retries=0))
    assert finished == ["synthetic r1"] and neighbour.cached
    entry = CacheEntry(cfgs["killed"].cache_path, model["killed"].key)
    assert (tmp_path / "killed.marker").exists() and not entry.final_dir.exists()
    assert entry.read_checkpoint()[2]["step"] == 2
    # ... and the next run resumes there, to the uninterrupted run's bytes.
    book._train_in_parallel([model["killed"]], progress=False, executor=executor)
    resumed = load_or_train(cfgs["killed"], "synthetic", progress=False)
    assert resumed.from_cache and resumed.meta["resumed"]
    assert {k: v for k, v in _safetensors(tmp_path / "killed").items() if model["killed"].key in k} == whole

    # 2. With Ray's retries, one run: the task dies at step 3, runs again on a new worker from step 2's checkpoint.
    die = DieOnce(tmp_path / "retried.marker", tmp_path / "retried.log", step=3)
    job = {"synthetic r0": (model["retried"], 1, None, False, die, "tqdm")}
    assert [label for label, _ in executor.map(book._train_one, job)] == ["synthetic r0"]
    runs: dict[str, list[int]] = {}
    for pid, step in (line.split() for line in (tmp_path / "retried.log").read_text().splitlines()):
        runs.setdefault(pid, []).append(int(step))
    assert list(runs.values()) == [[1, 2, 3], [3, 4, 5, 6]]       # the retry redid step 3 only
    assert load_or_train(cfgs["retried"], "synthetic", progress=False).meta["resumed"]
    assert _safetensors(tmp_path / "retried") == whole


def test_notebooks_run_as_ray_tasks_and_a_failure_names_its_notebook(ray_cluster, tmp_path):
    from test_bad_inputs import _notebook
    probe = 'import os\nopen("ran_" + name, "w").write(os.environ["OMP_NUM_THREADS"])'
    jobs = [(_notebook(tmp_path / f"{n}.ipynb", ['name = ""', probe]), tmp_path / "out" / f"{n}.ipynb")
            for n in ("a", "b")]
    executor = executors.RayExecutor()
    book.execute_notebooks(jobs, {"name": "x"}, executor=executor)
    assert all(out.exists() for _, out in jobs) and (tmp_path / "ran_x").read_text() == "1"
    bad = _notebook(tmp_path / "bad.ipynb", ['name = ""', 'raise RuntimeError("planted")'])
    with pytest.raises(book.NotebookError, match=r"bad\.ipynb: cell 2 .*RuntimeError: planted"):
        book.execute_notebooks([(bad, tmp_path / "out" / "bad.ipynb")], {"name": "y"}, executor=executor)


def test_resources_follow_the_cluster_and_the_device(ray_cluster):
    cfg = C.load("smoke", executor="ray")
    ray_executor = executors.make_executor(cfg.run.executor, cfg.run.ray_address)     # joins the fixture's Ray
    assert isinstance(ray_executor, executors.RayExecutor) and ray_executor.gpus == 0
    assert executors.model_resources(ray_executor, "auto", "cpu") == executors.Resources(cpus=1, gpus=0)
    assert ray_executor.plan(5, executors.Resources(cpus=1)) == (2, 1)                # 2 CPUs: two at a time
    gpu_cluster = executors.LocalPoolExecutor()
    gpu_cluster.gpus = 4.0                                                           # as a 4-GPU Ray reports
    assert executors.model_resources(gpu_cluster, "auto", "cuda") == executors.Resources(cpus=1, gpus=1)
    assert executors.model_resources(gpu_cluster, "cpu", "cpu").gpus == 0
    assert executors.notebook_resources(gpu_cluster, "auto").gpus == executors.NOTEBOOK_GPU_SHARE
    with pytest.raises(executors.UserError, match="'cuda:1'.*give 'cuda' or 'auto'"):
        executors.model_resources(gpu_cluster, "cuda:1", "cuda:1")
    with pytest.raises(executors.UserError, match="the cluster has GPUs but this machine has none"):
        executors.model_resources(gpu_cluster, "auto", "cpu")


def test_ray_missing_is_one_line(monkeypatch):
    import builtins
    real = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(executors.UserError, match=r"^parameter 'executor' = 'ray' needs Ray.*pip install "
                                                  r"circuitnb\[cluster\]$"):
        executors.make_executor("ray")


def test_an_address_where_no_cluster_answers_is_one_line():
    # In a fresh process: a Ray already running in this one would be used whatever the address.
    pytest.importorskip("ray", reason="Ray is not installed, so no cluster can start: pip install circuitnb[cluster]")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]                  # free once closed: nothing listens there
    code = ("from circuitnb.publish import executors\n"
            f"try: executors.make_executor('ray', '127.0.0.1:{port}')\n"
            "except executors.UserError as err: print(err)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    assert out.startswith(f"parameter 'ray_address' = '127.0.0.1:{port}': nothing answers at 127.0.0.1:{port}")
    assert out.count("\n") == 1
