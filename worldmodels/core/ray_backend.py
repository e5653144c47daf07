"""The Ray backend: the tasks of a run as Ray tasks on a cluster, or on a private Ray instance
on this machine, with the interface of ``worldmodels.core.workers.LocalBackend``. Imported only by
``make_backend`` when a Ray address is given, so the rest of the package never imports Ray.

Why Ray tasks rather than actors:

- Ray keeps a worker process and hands it task after task, so a module-level cache in the
  worker (``_STATE``) holds the models that ``shared.build()`` made, as a local worker does:
  they are built once per worker process and reused across tasks and runs.
- Ray retries a task whose worker process (or node) died, on any node with a free CPU, and
  places each task where a CPU is free. Actors would need our own restarts, our own load
  balancing across nodes, and an actor that dies takes the calls queued on it with it.

A task is submitted with ``num_cpus=1``, ``max_retries=max_crashes`` (retries of a dead
worker) and ``retry_exceptions=False``: an exception of the task itself is caught in the
worker and reported as the local backend reports it (``TaskFailed`` for a user error,
``WorkerBug`` with the worker's traceback for anything else), never re-run.
One difference from the local backend: ``max_crashes`` counts the crashes of one task (Ray
retries each task on its own), not crashes in a row across tasks.

The worker returns each result pickled, as the local backend's pipes carry it, so arrays
come back writable and do not pin Ray's object store while the caller keeps them.

A stop signal (SIGTERM, SIGINT, SIGHUP) while the backend is open raises
``worldmodels.core.tasks.Stopped``; the run's outstanding tasks are then cancelled (their worker
processes killed, ``ray.cancel(force=True)``) and a private instance is shut down. Ray workers
get the environment of local workers (no GPU, TensorFlow quiet) through their runtime env:
the task's arguments, which import TensorFlow, are unpickled before ``_execute`` runs."""

from __future__ import annotations

import itertools
import logging
import os
import pickle
import socket
import traceback

from worldmodels.core.tasks import (
    StopOnSignals,
    WorkerBug,
    WorkerCrashes,
    current_handlers,
    run_task,
    task_error,
    worker_environment,
)
from worldmodels.errors import WorldModelsError

INSTALL = "the Ray backend needs Ray: pip install 'worldmodels[ray]'"
CONNECT_TIMEOUT_S = 10  # ray.init retries an unreachable address for many minutes

# The shared state built in this Ray worker process (see workers.run_task). A Ray worker is
# a plain process serving task after task; a module global is its only place to keep state.
_STATE: dict = {}


def _execute(fn, shared, args) -> bytes:
    """Run one task in a Ray worker; answer (attempt, ok, result) pickled, where attempt
    counts the times Ray re-ran this task after its worker died."""
    try:
        reply = (True, run_task(_STATE, fn, shared, args))
    except WorldModelsError as error:
        reply = (False, str(error))
    except Exception:  # noqa: BLE001 - shown to the user with its traceback
        reply = (False, WorkerBug(traceback.format_exc()))
    return pickle.dumps((_attempt(), *reply), protocol=pickle.HIGHEST_PROTOCOL)


def _attempt() -> int:
    import ray

    try:  # not public API: without it, retries still happen but go unreported
        return int(ray._private.worker.global_worker.core_worker
                   .get_current_task_attempt_number())
    except AttributeError:
        return 0


class RayBackend:
    """Tasks run as Ray tasks, one CPU each. ``address`` is "local" (start a private Ray
    instance on this machine with ``workers`` CPUs, shut down by ``close``), "auto" (join the
    cluster started with ``ray start`` on this machine) or a cluster address ("host:port").
    A Ray session this process already has is used as it is and left running. ``workers`` is
    how many tasks run at once: the given number, or the cluster's CPU count."""

    name = "ray"

    def __init__(self, address: str, workers: int | None):
        if workers is not None and workers < 1:
            raise WorldModelsError(f"workers must be >= 1, got {workers}")
        try:
            import ray
        except ImportError:
            raise WorldModelsError(INSTALL) from None
        self._ray = ray
        self._started = False
        self._shared = (None, None)  # (key, object ref) of the last run's shared object
        self._outstanding: set = set()  # refs of tasks submitted and not yet read
        if address != "local":
            _check_reachable(address)
        handlers = current_handlers()  # ray.init installs a SIGTERM handler of its own
        if not ray.is_initialized():
            self._init(address, workers)
        cpus = int(ray.cluster_resources().get("CPU", 0))
        self.workers = workers or max(1, cpus)
        # Tasks in flight: two per worker keep Ray's queue fed where its CPUs cap how many run
        # at once; where the cluster has more CPUs than workers, the cap is ours.
        self._in_flight = self.workers if cpus > self.workers else 2 * self.workers
        # Options are given once, in run: a function with options set takes no more options.
        self._remote = ray.remote(_execute)
        # Stop signals raise Stopped; run's cleanup and close cancel the tasks (not here: a
        # handler can run inside a Ray call, which must not be re-entered).
        self._guard = StopOnSignals(lambda: None, previous=handlers)

    def _init(self, address: str, workers: int | None) -> None:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        self._auth_mode = os.environ.get("RAY_AUTH_MODE")  # ray.init may set it
        options = dict(logging_level=logging.ERROR, log_to_driver=False)
        try:
            if address == "local":
                self._ray.init(address="local", num_cpus=workers or os.cpu_count(),
                               include_dashboard=False, **options)
            else:
                self._ray.init(address=address, **options)
        except (ConnectionError, RuntimeError, ValueError,
                self._ray.exceptions.AuthenticationError) as error:
            if address == "local":
                raise WorldModelsError(f"cannot start Ray: {_first_line(error)}") from None
            refused = not isinstance(error, ValueError)  # a ValueError: a malformed address
            hint = "" if os.environ.get("RAY_AUTH_MODE") == "token" or not refused else (
                "; a cluster with token authentication (Ray's default) needs RAY_AUTH_MODE=token "
                "and its token here (~/.ray/auth_token or RAY_AUTH_TOKEN)")
            raise WorldModelsError(f"cannot join the Ray cluster at {address}: "
                                   f"{_first_line(error)}{hint}") from None
        self._started = True

    def run(self, fn, tasks: dict, shared=None, max_crashes: int = 3, on_crash=None):
        """Yield (key, result) for every task of ``tasks`` ({key: args}) as they finish,
        submitting them in the order of ``tasks``, ``workers`` running at once.
        ``on_crash(None, key)`` is called once for each time Ray re-ran task ``key`` because
        its worker died (after the fact: Ray retries on its own). A task whose worker died
        ``max_crashes + 1`` times ends the run with ``WorkerCrashes``."""
        ray = self._ray
        remote = self._remote.options(num_cpus=1, max_retries=max_crashes,
                                      retry_exceptions=False,
                                      runtime_env={"env_vars": worker_environment()})
        shared_ref = self._put(shared)
        pending = iter(tasks.items())
        running: dict = {}  # ObjectRef -> key
        try:
            while True:
                for key, args in itertools.islice(pending, self._in_flight - len(running)):
                    ref = remote.remote(fn, shared_ref, args)
                    running[ref] = key
                    self._outstanding.add(ref)
                if not running:
                    return
                [ready], _ = ray.wait(list(running), num_returns=1)
                key = running.pop(ready)
                self._outstanding.discard(ready)
                attempt, ok, result = self._reply(ready, max_crashes)
                if on_crash is not None:
                    for _ in range(attempt):
                        on_crash(None, key)
                if not ok:
                    raise task_error(result)
                yield key, result
        finally:
            self._cancel(running)  # a run left early (or stopped): nothing will read these

    def _cancel(self, refs) -> None:
        """Cancel tasks and kill the worker processes running them."""
        for ref in list(refs):
            self._outstanding.discard(ref)
            if self._ray.is_initialized():
                self._ray.cancel(ref, force=True)

    def _put(self, shared):
        """``shared`` in Ray's object store, put there once while runs share its key (the
        generations of a CMA-ES run in the real env share V and M)."""
        if shared is None:
            return None
        if self._shared[0] != shared.key:
            self._shared = (shared.key, self._ray.put(shared))
        return self._shared[1]

    def _reply(self, ref, max_crashes: int) -> tuple:
        exceptions = self._ray.exceptions
        try:
            return pickle.loads(self._ray.get(ref))
        except (exceptions.WorkerCrashedError, exceptions.NodeDiedError,
                exceptions.LocalRayletDiedError, exceptions.OutOfMemoryError) as error:
            raise WorkerCrashes(max_crashes + 1) from error
        except exceptions.RayTaskError as error:  # e.g. arguments the worker cannot unpickle
            raise WorkerBug(str(error)) from None

    def close(self) -> None:
        """Cancel tasks still running; shut Ray down if this object started it (a session it
        joined is left running); put back the signal handlers found before Ray started."""
        try:
            self._cancel(self._outstanding)
            if self._started and self._ray.is_initialized():
                self._shared = (None, None)
                self._ray.shutdown()
                if self._auth_mode is None:
                    os.environ.pop("RAY_AUTH_MODE", None)
        finally:
            self._started = False
            self._guard.restore()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _check_reachable(address: str) -> None:
    """Fail in seconds with one line where ray.init would wait for minutes."""
    if address == "auto":
        try:  # not public API: how ray.init itself resolves "auto"
            from ray._private.services import canonicalize_bootstrap_address
        except ImportError:
            return
        try:
            address = canonicalize_bootstrap_address("auto")
        except ConnectionError:
            address = None
        if address is None:
            raise WorldModelsError("no Ray cluster found on this machine for 'auto': start one "
                                   "with `ray start --head`, or give a cluster's address")
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not port.isdigit():
        return  # ray.init reports a malformed address itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), CONNECT_TIMEOUT_S).close()
    except OSError as error:
        raise WorldModelsError(f"cannot reach a Ray cluster at {address}: "
                               f"{error.strerror or error}") from None


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
