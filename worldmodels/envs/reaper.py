"""A watchdog for ViZDoom's game processes, run as a script (it imports nothing of the suite).

Each ViZDoom env starts the game as a child process that talks to it through files in
/dev/shm. If the process that made the env is killed (SIGKILL included), the game would run on
and its files stay. ``python reaper.py PID FOLDER`` watches the children of process PID; when PID is
gone, it kills the game processes it saw, removes their shared-memory files and the games'
working FOLDER, then exits.
``takecover.start_reaper`` starts one per process that makes Doom envs."""

import os
import shutil
import signal
import sys
import time

SHM = "/dev/shm"
POLL_SECONDS = 0.2


def game_children(parent: int | None) -> dict[int, str]:
    """{pid: ViZDoom instance id} of the game processes whose parent is ``parent`` (None: of
    every game process on the machine)."""
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as file:
                stat = file.read()
            if parent is not None and int(stat[stat.rindex(")") + 2:].split()[1]) != parent:
                continue
            with open(f"/proc/{name}/cmdline", "rb") as file:
                args = file.read().decode(errors="replace").split("\0")
        except (OSError, ValueError, IndexError):
            continue
        if "+viz_instance_id" in args:
            found[int(name)] = args[args.index("+viz_instance_id") + 1]
    return found


def reap(games: dict[int, str]) -> None:
    """Kill each game still running with its instance id, then remove its files."""
    for pid, instance in games.items():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as file:
                if instance.encode() in file.read():
                    os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    for pid, instance in games.items():
        for _ in range(50):  # the killed game may still hold its files for a moment
            try:
                os.kill(pid, 0)
            except OSError:
                break
            time.sleep(0.01)
        for name in os.listdir(SHM):
            if name.startswith("ViZDoom") and name.endswith(instance):
                try:
                    os.unlink(os.path.join(SHM, name))
                except OSError:
                    pass


def main(parent: int, folder: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C to the group is the parent's
    games: dict[int, str] = {}
    while os.getppid() == parent:
        games.update(game_children(parent))
        time.sleep(POLL_SECONDS)
    games.update(game_children(parent))
    reap(games)
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
