"""Where the book's jobs run: a process pool on this machine, or Ray tasks on a cluster, behind one interface.

    executor = make_executor("local")                 # or make_executor("ray", "auto")
    for label, seconds in executor.map(train_one, {"synthetic r0": (model, ...)}, Resources(cpus=1, gpus=1)):
        print(label, seconds)

Training (one job per replicate model) and notebook execution (one job per notebook) both go through
:meth:`Executor.map`, which runs ``fn(*args)`` for each labelled job and yields ``(label, result)`` as each
ends. A job that raises stops the run: the jobs not yet started are cancelled and its error is raised (a
:class:`~circuitnb.core.errors.UserError` as itself, one line). Jobs share nothing but the cache folder,
whose entry locks and manifests (:mod:`circuitnb.core.cache`) make two jobs wanting one entry compute it
once, and whose checkpoints let a model resume where a dead worker left it.

``LocalPoolExecutor`` is the book's pool of spawned processes, one per core. ``RayExecutor`` runs each job
as a Ray task with the resources it states; a task whose worker dies (killed, out of memory, node lost) is
run again up to :data:`RETRIES` times, and a model resumes from its last checkpoint. Only that job is lost
when the retries run out: the others finish, then :class:`WorkerLost` names it.
"""
from __future__ import annotations

import multiprocessing
import os
import socket
from abc import ABC, abstractmethod
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from circuitnb.core.errors import UserError

RETRIES = 3                  # runs of a Ray task after its worker died; a model resumes from its checkpoint
NOTEBOOK_GPU_SHARE = 0.25    # a notebook's kernel only runs forward passes: four share one GPU
ENV_PREFIX = "CIRCUITNB_"    # the driver's settings by environment ($CIRCUITNB_CACHE, ...) that workers need


@dataclass(frozen=True)
class Resources:
    """What one job holds while it runs: CPU cores (its torch threads) and GPUs (Ray only; a share < 1 is
    a fraction of one GPU)."""
    cpus: int = 1
    gpus: float = 0.0


class WorkerLost(UserError, RuntimeError):
    """A job's worker died more often than it was retried; the other jobs ran to their end."""


def cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def chain(*callbacks: Callable | None) -> Callable | None:
    """One callback calling each given one in turn (None when none is given)."""
    given = [c for c in callbacks if c is not None]
    if not given:
        return None

    def call(*args):
        for c in given:
            c(*args)
    return call


class Executor(ABC):
    """Runs labelled jobs side by side: ``map(fn, {label: args}, resources)`` yields (label, fn(*args))."""
    name = ""
    # How a job shows its progress: "tqdm" (the job's own bars, on the terminal it inherits) or "ray"
    # (a bar the Ray driver draws, fed from the job: tqdm's redraws do not survive Ray's log forwarding).
    bars = "tqdm"
    gpus = 0.0               # GPUs the executor can hand to jobs (0: jobs use whatever device they name)

    @abstractmethod
    def plan(self, n_jobs: int, resources: Resources) -> tuple[int, int]:
        """(jobs that run at once, threads each job should use)."""

    @abstractmethod
    def map(self, fn: Callable, jobs: dict[str, tuple], resources: Resources = Resources(),
            retries: int = RETRIES) -> Iterator[tuple[str, Any]]:
        """Run ``fn(*args)`` for each ``label: args`` of ``jobs``; yield ``(label, result)`` as each ends."""


class LocalPoolExecutor(Executor):
    """Spawned worker processes on this machine, one per core, the cores split evenly between them.

    One single-thread process per model beats one two-thread process (the quick UNet's step: 0.73 s
    against 0.98 s on 2 cores), so there are as many workers as cores, or jobs when fewer. ``resources``
    and ``retries`` are not used: a worker that dies breaks the pool, and the command fails.
    """
    name = "local"

    def __init__(self, workers: int | None = None):
        self.cores = workers or cores()

    def plan(self, n_jobs: int, resources: Resources = Resources()) -> tuple[int, int]:
        workers = max(1, min(self.cores, n_jobs))
        return workers, max(1, self.cores // workers)

    def map(self, fn, jobs, resources=Resources(), retries=0):
        workers, _ = self.plan(len(jobs), resources)
        ctx = multiprocessing.get_context("spawn")      # no fork of a process that has torch threads running
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures = {pool.submit(fn, *args): label for label, args in jobs.items()}
            try:
                for done in as_completed(futures):
                    yield futures[done], done.result()
            except BaseException:
                for future in futures:          # running ones finish; the waiting ones never start
                    future.cancel()
                raise


def _import_ray():
    try:
        import ray
    except ImportError:
        raise UserError("parameter 'executor' = 'ray' needs Ray, which is not installed here: "
                        "pip install circuitnb[cluster]") from None
    return ray


def _unreachable(address: str) -> str | None:
    """Why nothing answers at 'HOST:PORT' or 'ray://HOST:PORT' (None when something does): Ray itself retries a
    dead address for minutes before it gives up."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except OSError as err:
        return f"nothing answers at {host}:{port} ({err.strerror or err})"
    return None


def _run_job(env: dict, cwd: str, fn: Callable, args: tuple) -> Any:
    """A Ray task: the driver's CIRCUITNB_* settings and working folder, then the job.

    A worker started by another machine's raylet does not inherit the driver's environment, and a relative
    ``cache_dir`` or ``celeba_root`` must mean the same folder there (a shared filesystem mounted at the
    same path; else the working folder is left as Ray set it).
    """
    os.environ.update(env)
    if os.path.isdir(cwd):
        os.chdir(cwd)
    return fn(*args)


class RayExecutor(Executor):
    """Each job a Ray task holding the resources it states, on the cluster at ``address``.

    ``address`` '' starts a Ray on this machine (its cores, no dashboard); 'auto' joins the cluster
    started here with ``ray start``; 'HOST:PORT' or 'ray://HOST:PORT' joins that one. A Ray already
    initialised in this process (by the caller) is used as it is. Ray stays up until this process ends,
    so training and the notebooks share one start.
    """
    name = "ray"
    bars = "ray"

    def __init__(self, address: str = ""):
        self.ray = _import_ray()
        if not self.ray.is_initialized():
            problem = _unreachable(address) if address not in ("", "auto") else None
            if problem:
                raise UserError(f"parameter 'ray_address' = {address!r}: {problem}; give the head node's address "
                                "(`ray start --head` prints it), 'auto' on a cluster node, or '' to start Ray here")
            try:
                if address:
                    self.ray.init(address=address, logging_level="warning")
                else:                           # "local": a new instance even where another one runs
                    self.ray.init(address="local", num_cpus=cores(), include_dashboard=False,
                                  logging_level="warning")
            except (ConnectionError, ValueError, RuntimeError) as err:
                raise UserError(f"parameter 'ray_address' = {address!r}: Ray could not start or join a cluster "
                                f"({str(err).splitlines()[0] if str(err) else type(err).__name__}); start one with "
                                "`ray start --head`, or give '' to start Ray on this machine") from None
        self.gpus = float(self.ray.cluster_resources().get("GPU", 0))
        self._context = ({k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}, os.getcwd())

    def plan(self, n_jobs: int, resources: Resources = Resources()) -> tuple[int, int]:
        total = self.ray.cluster_resources()
        slots = total.get("CPU", 1) // max(1, resources.cpus)
        if resources.gpus:
            slots = min(slots, total.get("GPU", 0) // resources.gpus)
        return max(1, min(n_jobs, int(slots))), resources.cpus

    def map(self, fn, jobs, resources=Resources(), retries=RETRIES):
        ray = self.ray
        # Only a dead worker is retried (max_retries); an exception the job raised is its answer.
        task = ray.remote(_run_job)
        options = dict(num_cpus=resources.cpus, num_gpus=resources.gpus, max_retries=retries, retry_exceptions=False)
        refs = {task.options(name=f"{fn.__name__} {label}", **options).remote(*self._context, fn, args): label
                for label, args in jobs.items()}
        pending, lost = list(refs), []
        try:
            while pending:
                (done,), pending = ray.wait(pending, num_returns=1)
                try:
                    value = ray.get(done)
                except ray.exceptions.RayTaskError as err:     # the job raised: its own error, as itself
                    raise (err.cause if isinstance(err.cause, UserError) else err) from None
                except ray.exceptions.RayError as err:          # its worker or node died, retries spent
                    lost.append(f"{refs[done]} ({type(err).__name__})")
                    continue
                yield refs[done], value
        except BaseException:
            for ref in pending:
                ray.cancel(ref)
            raise
        if lost:
            raise WorkerLost(f"lost {len(lost)} job(s) whose Ray worker died {retries + 1} time(s): {', '.join(lost)}; "
                             "the others finished. Run the same command again: a model resumes from its last "
                             "checkpoint in the cache")


def make_executor(name: str, ray_address: str = "") -> Executor:
    """The executor the config names: 'local' (``LocalPoolExecutor``) or 'ray' (``RayExecutor``)."""
    if name == "ray":
        return RayExecutor(ray_address)
    if name != "local":
        raise UserError(f"parameter 'executor' = {name!r}; allowed: 'local' or 'ray'")
    return LocalPoolExecutor()


def model_resources(executor: Executor, device: str, resolved: str) -> Resources:
    """One core per model, and on a cluster with GPUs one GPU each unless ``device`` (the setting) is 'cpu'.

    ``resolved`` is the device this process resolves 'auto' to: the driver loads every trained model
    and keys it by the precision its device trains in, so a GPU cluster needs a driver with a GPU.
    """
    if not executor.gpus or device in ("cpu", "mps"):
        return Resources(cpus=1)
    if device.startswith("cuda:"):
        raise UserError(f"parameter 'device' = {device!r}: with executor 'ray', Ray gives each model its own GPU; "
                        "give 'cuda' or 'auto'")
    if not resolved.startswith("cuda"):
        raise UserError("executor 'ray': the cluster has GPUs but this machine has none; run circuitnb book on a "
                        "machine with a GPU (it loads the models the workers train, keyed by the precision of "
                        "their device), or give -p device cpu")
    return Resources(cpus=1, gpus=1)


def notebook_resources(executor: Executor, device: str) -> Resources:
    """One core per notebook kernel, and on a cluster with GPUs a share of one unless ``device`` is 'cpu'."""
    return Resources(cpus=1, gpus=NOTEBOOK_GPU_SHARE if executor.gpus and device not in ("cpu", "mps") else 0.0)


class StepBar:
    """A progress bar the Ray driver draws for a job on a worker: ``callback(step, loss)`` of the trainer."""

    def __init__(self, desc: str, total: int):
        from ray.experimental import tqdm_ray
        self.bar = tqdm_ray.tqdm(total=total, desc=desc, unit="step")

    def __call__(self, step: int, loss: float) -> None:
        self.bar.update(step - self.bar.n)          # a resumed training starts at its checkpoint's step

    def close(self) -> None:
        self.bar.close()
