"""Where the work of many episodes runs: local worker processes (the default) or a Ray cluster
(``worldmodels.ray_backend``). Both run the same task functions and return results keyed by
task, never by arrival order, so a run gives the same numbers on either.

A task is ``fn(state, args)``, a module-level function. ``state`` is what the run's ``shared``
object builds with ``shared.build()`` once per worker process (V and M, say) and keeps while
the worker serves tasks with the same ``shared.key``; with no ``shared``, ``state`` is None.

A worker that dies takes only its task with it: the task is given to a fresh worker (locally)
or retried by Ray. ``max_crashes`` crashes in a row, with no task finished in between, end the
run with ``WorkerCrashes``; the results already yielded are the caller's to keep."""

from __future__ import annotations

import multiprocessing as mp
import os
import traceback
from collections import deque
from multiprocessing.connection import wait

from worldmodels.errors import WorldModelsError


class WorkerCrashes(WorldModelsError):
    """Workers crashed ``crashes`` times in a row."""

    def __init__(self, crashes: int):
        super().__init__(f"workers crashed {crashes} times in a row")
        self.crashes = crashes


class TaskFailed(WorldModelsError):
    """A task raised an exception in its worker (not a crash: re-running would fail again)."""


def run_task(cache: dict, fn, shared, args, shared_key=None):
    """Run one task in a worker, building ``shared``'s state when the worker lacks it; the
    cache holds one state at a time (a new run's models replace the old). ``shared`` may be
    left out (None) when the worker already holds the state of ``shared_key``."""
    if shared is not None:
        shared_key = shared.key
    state = None
    if shared_key is not None:
        if shared_key not in cache:
            cache.clear()
            cache[shared_key] = shared.build()
        state = cache[shared_key]
    return fn(state, args)


def _serve(connection) -> None:
    """A local worker: answer each (key, fn, shared key, shared or None, args) with (key, ok,
    result)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before a task imports TensorFlow
    cache: dict = {}
    while True:
        message = connection.recv()
        if message is None:
            break
        key, fn, shared_key, shared, args = message
        try:
            reply = (key, True, run_task(cache, fn, shared, args, shared_key))
        except WorldModelsError as error:
            reply = (key, False, str(error))
        except Exception:  # noqa: BLE001 - shown to the user with its traceback
            reply = (key, False, traceback.format_exc())
        connection.send(reply)
    connection.close()


class LocalBackend:
    """``workers`` processes on this machine (spawned, so each has its own TensorFlow), kept
    alive across runs: a stage that runs many batches of episodes (CMA-ES in the real env)
    builds its models in each worker once."""

    name = "local"

    def __init__(self, workers: int):
        if workers < 1:
            raise WorldModelsError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self._context = mp.get_context("spawn")
        self._connections: list = [None] * workers
        self._processes: list = [None] * workers
        self._holds: list = [None] * workers  # the shared key each worker has built

    def _start(self, worker: int) -> None:
        parent, child = self._context.Pipe()
        process = self._context.Process(target=_serve, args=(child,), daemon=True)
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
                        raise TaskFailed(result)
                    crashes = 0
                    yield key, result
        finally:
            for worker in busy:  # a run left early: its workers' answers are never read
                self._restart(worker)

    def close(self) -> None:
        for connection in self._connections:
            if connection is not None:
                try:
                    connection.send(None)
                except OSError:
                    pass
        for process in self._processes:
            if process is not None:
                process.join(timeout=5)
                if process.is_alive():
                    process.terminate()
        self._processes = [None] * self.workers

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
        from worldmodels.ray_backend import RayBackend

        return RayBackend(ray_address, workers)
    from worldmodels.env import default_workers

    workers = default_workers(workers)
    return LocalBackend(workers if tasks is None else min(workers, max(1, tasks)))
