"""Click commands, one per stage; they parse options, call one function of worldmodels.stages,
and print what it wrote. Installed as ``worldmodels_cli`` (setup.cfg), not as ``commands``."""

import os
import signal
import sys
import threading

_STOP = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
PROGRAM = ("pytest" not in sys.modules and "__mp_main__" not in sys.modules
           and threading.current_thread() is threading.main_thread())
"""True when this is the `worldmodels` program itself (not the commands run inside a test
process, nor a worker it spawned, which imports them again): only then are its signal
handlers set for the whole life of the process."""


def _stopped_early(signum, frame):
    """A stop signal before the command's own handlers are set (while Python, click and the
    stage modules load): one line, nothing written, exit 1 as any stopped command."""
    os.write(2, f"Error: stopped by {signal.Signals(signum).name} before it started; nothing "
                "was written: re-run the same command\n".encode())
    os._exit(1)


def ignore_stop_signals() -> None:
    """After the command has ended (its last line printed): a stop signal no longer changes
    the exit status (it would be 143 after a line that said the work was done)."""
    for signum in _STOP:
        signal.signal(signum, signal.SIG_IGN)


if PROGRAM:
    for _signum in _STOP:
        signal.signal(_signum, _stopped_early)
