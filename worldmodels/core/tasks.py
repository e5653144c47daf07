"""What the two backends (``worldmodels.core.workers``, ``worldmodels.core.ray_backend``) share:
running a task in a worker, the errors a run reports, the environment of a worker process, and how a
command stopped by a signal ends its workers.

Stopping: while a backend is open, SIGTERM, SIGINT (Ctrl-C) and SIGHUP end its workers at
once (local worker processes are killed, Ray tasks cancelled) and raise ``Stopped`` where the
command is. The run is left exactly as a ``kill -9`` leaves it (finished episodes and
checkpoints kept, files written under temporary names until complete), so the same command
continues it; the CLI prints ``Stopped`` as its one-line error and exits with status 1."""

from __future__ import annotations

import os
import signal
import threading

from worldmodels.errors import WorldModelsError

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class WorkerCrashes(WorldModelsError):
    """Workers crashed ``crashes`` times in a row."""

    def __init__(self, crashes: int):
        super().__init__(f"workers crashed {crashes} times in a row")
        self.crashes = crashes


class TaskFailed(WorldModelsError):
    """A task raised a user error (WorldModelsError) in its worker (not a crash: re-running
    would fail again)."""


class WorkerBug(Exception):
    """A task raised any other exception in its worker: a bug, not a user error. Its message
    is the worker's traceback, so the user sees where in the worker it failed."""

    def __init__(self, worker_traceback: str):
        super().__init__("a task failed in its worker (a bug, not a user error); the "
                         f"worker's traceback:\n{worker_traceback.rstrip()}")
        self.worker_traceback = worker_traceback


def task_error(result) -> Exception:
    """The exception a backend raises for a failed task's answer: ``TaskFailed`` for a user
    error (its message, a str), the ``WorkerBug`` itself for anything else."""
    return result if isinstance(result, WorkerBug) else TaskFailed(result)


class Stopped(WorldModelsError):
    """The command was stopped by signal ``signum``; its workers are ended."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by {signal.Signals(signum).name}; its workers are ended and "
                         "finished work is saved: re-run the same command to continue")
        self.signum = signum


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


def worker_environment() -> dict[str, str]:
    """The environment variables of a worker process, set before it imports TensorFlow: no
    GPU (a worker steps envs and runs small batches; the CPU is right for it, and a worker per
    core must not each take the card's memory) and no TensorFlow log lines below errors,
    unless the user asked for TensorFlow's logs (TF_CPP_MIN_LOG_LEVEL 0 or 1)."""
    level = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    return {"CUDA_VISIBLE_DEVICES": "",
            "TF_CPP_MIN_LOG_LEVEL": level if level in ("0", "1") else "3"}


class StopOnSignals:
    """While installed, SIGTERM, SIGINT and SIGHUP call ``stop()`` at once (a backend ends its
    workers there) and then raise ``Stopped`` in the main thread, so the command unwinds as an
    error. A second signal while it unwinds only calls ``stop()`` again. When the handler
    found installed is another ``StopOnSignals`` (a backend opened inside another), it is
    called too, so every open backend ends its workers. ``previous`` (default: the handlers
    installed now) is what ``restore()`` puts back. Signals reach only the main thread, so
    from another thread nothing is installed."""

    def __init__(self, stop, previous: dict | None = None):
        self._stop = stop
        self._stopped = False
        self._previous: dict = {}
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in STOP_SIGNALS:
            found = signal.signal(signum, self._handle)
            self._previous[signum] = found if previous is None else previous[signum]

    def _handle(self, signum, frame) -> None:
        self._stop()
        first, self._stopped = not self._stopped, True
        outer = self._previous.get(signum)
        if isinstance(getattr(outer, "__self__", None), StopOnSignals):
            outer(signum, frame)
        if first:
            raise Stopped(signum)

    def restore(self) -> None:
        """Put back the handlers found (or given) when installed."""
        for signum, previous in self._previous.items():
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)
        self._previous = {}


def current_handlers() -> dict:
    """The handlers of the stop signals now (for ``StopOnSignals(previous=...)``)."""
    return {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
