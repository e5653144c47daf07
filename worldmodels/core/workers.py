"""Where the work of many episodes runs: local worker processes (the default) or a Ray cluster
(``worldmodels.core.ray_backend``). Both run the same task functions and return results keyed by
task, never by arrival order, so a run gives the same numbers on either.

A task is ``fn(state, args)``, a module-level function. ``state`` is what the run's ``shared``
object builds with ``shared.build()`` once per worker process (V and M, say) and keeps while
the worker serves tasks with the same ``shared.key``; with no ``shared``, ``state`` is None.

A worker that dies takes only its task with it: the task is given to a fresh worker (locally)
or retried by Ray. ``max_crashes`` crashes in a row, with no task finished in between, end the
run with ``WorkerCrashes``; the results already yielded are the caller's to keep.

No worker outlives its command: a stop signal (SIGTERM, SIGINT, SIGHUP) to the command kills
its workers at once and raises ``worldmodels.core.tasks.Stopped``, and a worker whose command died
(even by SIGKILL) exits by itself within ``PARENT_POLL_S``. Workers run on the CPU and keep
TensorFlow's start-up lines out of the terminal (``worldmodels.core.tasks.worker_environment``)."""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import re
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections import deque
from contextlib import contextmanager
from multiprocessing.connection import wait

from worldmodels.core.tasks import (
    StopOnSignals,
    TaskFailed,  # noqa: F401 - importable from here, beside the backend
    WorkerBug,
    WorkerCrashes,
    run_task,
    task_error,
    worker_environment,
)
from worldmodels.errors import WorldModelsError

PARENT_POLL_S = 0.5  # how often a worker checks that the command that started it is alive
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>

# TensorFlow's start-up lines: its C++ writes them to file descriptor 2 while it loads, before
# TF_CPP_MIN_LOG_LEVEL can filter them (absl logging is not initialised yet).
_STARTUP_NOISE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|[IW]\d{4} [\d:.]+ +\d+ \S+:\d+\] |E\d{4} .*failed call to cuInit")


def _serve(connection, parent: int) -> None:
    """A local worker: answer each (key, fn, shared key, shared or None, args) with (key, ok,
    result). It runs on the CPU, leaves Ctrl-C to the command (which ends its workers), and
    exits by itself when the command dies (even by SIGKILL)."""
    os.environ.update(worker_environment())  # before a task imports TensorFlow
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with(parent)
    quiet = os.environ["TF_CPP_MIN_LOG_LEVEL"] not in ("0", "1")
    cache: dict = {}
    while True:
        # A task's module imports TensorFlow when the task is unpickled (recv) or run.
        with quiet_startup(quiet and "tensorflow" not in sys.modules):
            message = connection.recv()
            if message is None:
                break
            key, fn, shared_key, shared, args = message
            try:
                reply = (key, True, run_task(cache, fn, shared, args, shared_key))
            except WorldModelsError as error:
                reply = (key, False, str(error))
            except Exception:  # noqa: BLE001 - shown to the user with its traceback
                reply = (key, False, WorkerBug(traceback.format_exc()))
        connection.send(reply)
    connection.close()


def _exit_with(parent: int) -> None:
    """End this worker when its parent (the command) is gone, so a command killed with SIGKILL
    leaves no worker running its task for nobody. On Linux the kernel kills it at once
    (prctl(PR_SET_PDEATHSIG), which fires when the parent *thread* that started the worker
    ends: backends start workers from the thread that runs them, the command's main thread);
    elsewhere, a thread notices that it was adopted (its parent pid changed) within
    ``PARENT_POLL_S``, as soon as the task lets it run."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass  # no prctl: the thread below still watches
    if os.getppid() != parent:  # the command died before the line above
        os._exit(1)
    threading.Thread(target=_watch, args=(parent,), daemon=True).start()


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(1)


@contextmanager
def quiet_startup(active: bool):
    """With ``active``, file descriptor 2 goes to a temporary file, and afterwards what it
    caught is written to stderr without TensorFlow's start-up lines."""
    if not active:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            lines = caught.read().decode(errors="replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if not _STARTUP_NOISE.match(line))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


class LocalBackend:
    """``workers`` processes on this machine (spawned, so each has its own TensorFlow), kept
    alive across runs: a stage that runs many batches of episodes (CMA-ES in the real env)
    builds its models in each worker once. From its first worker until ``close``, a stop
    signal kills every worker at once and raises ``Stopped`` (see ``worldmodels.core.tasks``)."""

    name = "local"

    def __init__(self, workers: int):
        if workers < 1:
            raise WorldModelsError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self._context = mp.get_context("spawn")
        self._connections: list = [None] * workers
        self._processes: list = [None] * workers
        self._holds: list = [None] * workers  # the shared key each worker has built
        self._guard = None  # the stop-signal handlers, while workers run

    def _start(self, worker: int) -> None:
        if self._guard is None:
            self._guard = StopOnSignals(self._kill_all)
        parent, child = self._context.Pipe()
        process = self._context.Process(target=_serve, args=(child, os.getpid()), daemon=True)
        process.start()
        child.close()
        self._connections[worker], self._processes[worker] = parent, process
        self._holds[worker] = None

    def _restart(self, worker: int) -> None:
        process = self._processes[worker]
        if process.is_alive():
            process.kill()
        process.join(timeout=5)
        self._connections[worker].close()
        self._start(worker)

    def _end(self, worker: int) -> None:
        """Kill a worker whose answer will never be read; the next run starts a fresh one."""
        process = self._processes[worker]
        process.kill()
        process.join(timeout=5)
        self._connections[worker].close()
        self._connections[worker] = self._processes[worker] = self._holds[worker] = None

    def _kill_all(self) -> None:
        for process in self._processes:
            if process is not None:
                process.kill()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._processes if p is not None]

    def run(self, fn, tasks: dict, shared=None, max_crashes: int = 3, on_crash=None):
        """Yield (key, result) for every task of ``tasks`` ({key: args}) as they finish,
        handing them out in the order of ``tasks``. ``on_crash(worker, key)`` is called when a
        worker dies running task ``key``, before the task is handed to a fresh worker."""
        pending = deque(tasks.items())
        busy: dict[int, tuple] = {}  # worker -> (key, args)
        crashes = 0
        try:
            while pending or busy:
                for worker in range(self.workers):
                    if pending and worker not in busy:
                        if self._processes[worker] is None:
                            self._start(worker)
                        key, args = pending.popleft()
                        send = shared if self._holds[worker] != _key_of(shared) else None
                        try:
                            self._connections[worker].send(
                                (key, fn, _key_of(shared), send, args))
                        except OSError:
                            pass  # found dead below, through its sentinel
                        self._holds[worker] = _key_of(shared)
                        busy[worker] = (key, args)
                ready = wait([self._connections[w] for w in busy]
                             + [self._processes[w].sentinel for w in busy])
                for worker in list(busy):
                    connection, process = self._connections[worker], self._processes[worker]
                    if connection not in ready and process.sentinel not in ready:
                        continue
                    key, args = busy.pop(worker)
                    try:
                        reply_key, ok, result = connection.recv()
                    except (EOFError, OSError):
                        crashes += 1
                        if crashes > max_crashes:
                            raise WorkerCrashes(crashes) from None
                        if on_crash is not None:
                            on_crash(worker, key)
                        self._restart(worker)
                        pending.appendleft((key, args))
                        continue
                    assert reply_key == key, f"worker {worker} answered {reply_key}, not {key}"
                    if not ok:
                        raise task_error(result)
                    crashes = 0
                    yield key, result
        finally:
            for worker in busy:  # a run left early (or stopped): answers never read
                self._end(worker)

    def close(self) -> None:
        """Let the workers finish and exit (those still alive after 5 s are terminated), and
        put back the signal handlers found when the first worker started."""
        try:
            for connection in self._connections:
                if connection is not None:
                    try:
                        connection.send(None)
                    except OSError:
                        pass  # a worker already ended
            for process in self._processes:
                if process is not None:
                    process.join(timeout=5)
                    if process.is_alive():
                        process.terminate()
                        process.join(timeout=5)
            for connection in self._connections:
                if connection is not None:
                    connection.close()
        finally:
            self._processes = [None] * self.workers
            self._connections = [None] * self.workers
            self._holds = [None] * self.workers
            if self._guard is not None:
                self._guard.restore()
                self._guard = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _key_of(shared):
    return None if shared is None else shared.key


def make_backend(workers: int | None = None, ray_address: str | None = None,
                 tasks: int | None = None):
    """The local backend with ``workers`` processes (default one per core, and no more than
    the run's ``tasks`` when given), or, with ``ray_address`` ("auto", "local" or a cluster
    address), the Ray backend (``workers`` tasks at once; default the cluster's CPUs)."""
    if ray_address:
        from worldmodels.core.ray_backend import RayBackend

        return RayBackend(ray_address, workers)
    from worldmodels.envs.shared import default_workers

    workers = default_workers(workers)
    return LocalBackend(workers if tasks is None else min(workers, max(1, tasks)))
