"""Issue 28: no write follows a planted link, --force waits for the stage's lock and readers
hold theirs, every input is checked before anything is touched. Each case asserts a non-zero
exit (or a WorldModelsError), one line naming the file or key, no traceback, and every file
that was there before byte for byte unchanged, the linked one included."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.conftest import ROOT, invoke
from worldmodels.config import ControllerConfig, RnnConfig, apply_sections, get_preset, validate
from worldmodels.core.artifacts import (
    atomic_path,
    copy_file,
    ensure_writable,
    lock_stage,
    reading,
    release_stage,
    write_csv,
    write_json,
    write_text,
)
from worldmodels.data.store import check_episode, read_episode, write_episode
from worldmodels.errors import WorldModelsError

R, D = "results/smoke", "data/smoke"
VICTIM = b"precious: must never be overwritten\n"


def _hashes(directory: Path) -> dict:
    return {path.relative_to(directory): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(directory.rglob("*")) if path.is_file()}


def _one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


# --- 1. Links: every writer refuses one, at the final name and at a lock's ----------------


def _save_npy(path):
    from worldmodels.model.evolution import save_array

    save_array(path, np.zeros(3))


def _save_episode(path):
    T = 3
    write_episode(path, np.zeros((T + 1, 64, 64, 3), np.uint8), np.zeros((T, 3), np.float32),
                  np.zeros(T, np.float32), np.zeros(T, np.uint8), env_id="CarRacing-v3",
                  seed=0, policy="pilot", length=T, **{"return": 0.0})


def _save_figure(path):
    from worldmodels.core.figures import _pyplot, _save

    figure = _pyplot().figure()
    _save(figure, path)


def _save_gif(path):
    from worldmodels.core.figures import write_gif

    write_gif(np.zeros((2, 8, 8, 3)), path)


def _save_state(path):
    from worldmodels.model.evolution import State, save_state

    save_state(path.parent, State([], [], -np.inf, None), np.zeros(3),
               {"dimensions": 3, "population": 4, "sigma": 0.1, "seed": 1})


def _save_weights(path):
    import keras

    from worldmodels.core.checkpoint import save_weights

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    save_weights(model, path)


WRITERS = [  # (id, file name, writer)
    ("json", "manifest.json", lambda p: write_json(p, {"a": 1})),
    ("csv", "history.csv", lambda p: write_csv(p, [{"a": 1}])),
    ("markdown", "dream-best.md", lambda p: write_text(p, "| a |\n")),
    ("copy", "best.npy", lambda p: copy_file(p.parent.parent / "source", p)),
    ("npy", "best.npy", _save_npy),
    ("episode-h5", "episode_00000.h5", _save_episode),
    ("png", "history.png", _save_figure),
    ("gif", "dream-best.gif", _save_gif),
    ("cma-state", "state.npz", _save_state),
    ("weights", "vae.weights.h5", _save_weights),
    ("lock", ".lock", lambda p: lock_stage(p.parent, "collect")),
    ("named-lock", ".real-dream-best.lock",
     lambda p: lock_stage(p.parent, "evaluate", ".real-dream-best.lock")),
    ("read-lock", ".lock", lambda p: reading("train-vae", p.parent).__enter__()),
]


@pytest.mark.parametrize("case", WRITERS, ids=[case[0] for case in WRITERS])
def test_a_link_at_a_written_name_is_refused_and_its_target_untouched(tmp_path, case):
    _, name, write = case
    folder, victim = tmp_path / "out", tmp_path / "victim"
    folder.mkdir()
    victim.write_bytes(VICTIM)
    (tmp_path / "source").write_bytes(b"source")
    (folder / name).symlink_to(victim)
    with pytest.raises(WorldModelsError) as raised:
        write(folder / name)
    message = str(raised.value)
    assert "\n" not in message and f"{folder / name} is a symbolic link" in message
    assert victim.read_bytes() == VICTIM
    assert sorted(os.listdir(folder)) == [name]  # no temporary file left behind
    release_stage(folder), release_stage(folder, name)


def test_temporary_names_are_unique_never_links_and_leave_nothing_on_failure(tmp_path):
    target = tmp_path / "a.json"
    with atomic_path(target) as first, atomic_path(target.with_name("b.json")) as second:
        assert first != second and first.parent == tmp_path
        assert not first.is_symlink() and first.name.startswith(".a.json.tmp")
        first.write_text("{}")
        second.write_text("{}")
    assert sorted(os.listdir(tmp_path)) == ["a.json", "b.json"]
    assert oct(target.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    with pytest.raises(ZeroDivisionError), atomic_path(tmp_path / "c.json") as tmp:
        tmp.write_text("half")
        raise ZeroDivisionError("a failed write")
    assert sorted(os.listdir(tmp_path)) == ["a.json", "b.json"]
    ensure_writable(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["a.json", "b.json"]  # no stray .write-test


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _link(relative):
    def plant(box):
        path = box / relative
        path.unlink(missing_ok=True)
        path.symlink_to(box.parent / "victim")
    return plant


# --- The CLI: a table of cases on a copy of the smoke experiment ------------------------------


def _config_file(name, content):
    def plant(box):
        path = box.parent / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return ["--config", path]
    return plant


def _fifo(box):
    path = box.parent / "settings.json"
    os.mkfifo(path)
    return ["--config", path]


def _edit_json(relative, change):
    def edit(box):
        path = box / relative
        payload = json.loads(path.read_text())
        change(payload)
        path.write_text(json.dumps(payload))
    return edit


def _nan_weights(relative):
    def damage(box):
        with h5py.File(box / relative, "r+") as file:
            def spoil(name, item):
                if isinstance(item, h5py.Dataset) and item.dtype.kind == "f" and item.size:
                    values = item[()]
                    values.flat[0] = np.nan
                    item[...] = values
            file.visititems(spoil)
    return damage


def _long_episode(box, damage_middle=True, name="episode_00001.h5"):
    """Replace an episode with a 250-frame one (3 chunks of frames), its middle chunk's bytes
    garbled on disk."""
    path = box / D / "rollouts" / name
    episode = read_episode(path)
    T = 249
    frames = np.resize(episode["frames"], (T + 1, 64, 64, 3))
    rng = np.random.default_rng(0)
    frames = (frames.astype(np.int16) + rng.integers(0, 3, frames.shape)).clip(0, 255)
    path.unlink()
    write_episode(path, frames.astype(np.uint8), np.zeros((T, 3), np.float32),
                  np.zeros(T, np.float32), np.zeros(T, np.uint8), env_id="CarRacing-v3",
                  seed=1, policy="pilot", length=T, **{"return": 0.0})
    if damage_middle:
        with h5py.File(path, "r") as file:
            info = file["frames"].id.get_chunk_info(1)
        with open(path, "r+b") as file:
            file.seek(info.byte_offset + info.size // 2)
            file.write(b"\x00" * 64)


def _running(relative):
    return _edit_json(f"{relative}/manifest.json", lambda m: m.update(status="running"))


def _both(*steps):
    def run(box):
        extra = []
        for step in steps:
            extra += step(box) or []
        return extra
    return run


CASES = [  # (id, command and options, what is done to the copy, what the line must name)
    # links planted where a command writes
    ("link-evaluation", ["evaluate", "--where", "dream", "--force"],
     _link(f"{R}/evaluate/dream-dream-best.json"), "dream-dream-best.json is a symbolic link"),
    ("link-evaluation-lock", ["evaluate", "--force"],
     _link(f"{R}/evaluate/.real-dream-best.lock"), ".real-dream-best.lock is a symbolic link"),
    ("link-report", ["report"], _link(f"{R}/REPORT.md"), "REPORT.md is a symbolic link"),
    ("link-rollouts-lock", ["collect", "--force"], _link(f"{D}/rollouts/.lock"),
     ".lock is a symbolic link"),
    ("link-vae-manifest", ["train-vae", "--force"], _link(f"{R}/vae/manifest.json"),
     "manifest.json is a symbolic link"),
    # settings files: shape and size
    ("config-dev-zero", ["collect", "--force"], lambda box: ["--config", "/dev/zero"],
     "not a regular file"),
    ("config-fifo", ["collect", "--force"], _fifo, "not a regular file"),
    ("config-too-large", ["collect", "--force"],
     _config_file("big.json", b" " * 1_000_001 + b"{}"), "more than the 1,000,000"),
    ("config-1e400", ["train-rnn", "--force"],
     _config_file("s.json", '{"rnn": {"learning_rate": 1e400}}'), "rnn.learning_rate"),
    ("config-nan", ["train-rnn", "--force"],
     _config_file("s.json", '{"rnn": {"grad_clip": NaN}}'), "rnn.grad_clip"),
    ("config-deep", ["collect", "--force"],
     _config_file("s.json", "[" * 100_000 + "]" * 100_000), "nested too deeply"),
    ("config-dict-for-a-number", ["train-rnn", "--force"],
     _config_file("s.json", '{"rnn": {"hidden_size": {"a": 1}}}'), "rnn.hidden_size"),
    ("config-list-for-a-section", ["collect", "--force"],
     _config_file("s.json", '{"collect": [1, 2]}'), "section collect must be a table"),
    ("config-unknown-policy-number", ["collect", "--force"],
     _config_file("s.json", '{"collect": {"policy": 3}}'), "collect.policy"),
    ("config-null-size", ["train-rnn", "--force"],
     _config_file("s.json", '{"rnn": {"hidden_size": null}}'), "rnn.hidden_size"),
    ("config-false-size", ["train-vae", "--force"],
     _config_file("s.json", '{"vae": {"z_size": false}}'), "vae.z_size"),
    ("config-toml-inf", ["train-rnn", "--force"],
     _config_file("s.toml", "[rnn]\ndropout = inf\n"), "rnn.dropout"),
    ("config-not-utf8", ["collect", "--force"], _config_file("s.json", b"\xff\xfe{"),
     "not UTF-8"),
    ("set-unknown-env", ["collect", "--force", "--set", "collect.env_id=CartPole-v1"],
     lambda box: None, "env_id must be one of"),
    ("set-huge-hidden", ["train-rnn", "--force", "--set", "rnn.hidden_size=99999"],
     lambda box: None, "hidden_size must be in [1, 8192]"),
    # manifests: sizes a later stage builds from
    ("manifest-huge-hidden", ["train-controller", "--force"],
     _edit_json(f"{R}/rnn/manifest.json", lambda m: m["config"].update(hidden_size=99999)),
     "config.hidden_size must be in [1, 8192]"),
    ("manifest-null-z", ["encode", "--force"],
     _edit_json(f"{R}/vae/manifest.json", lambda m: m["config"].update(z_size=None)),
     "config.z_size expects int, got null"),
    ("manifest-false-z-input", ["train-controller", "--force"],
     _edit_json(f"{R}/rnn/manifest.json", lambda m: m["inputs"].update(z_size=False)),
     "inputs.z_size"),
    ("manifest-string-episodes", ["train-vae", "--force"],
     _edit_json(f"{D}/rollouts/manifest.json", lambda m: m["config"].update(episodes="4")),
     "config.episodes"),
    # numbers that are not numbers
    ("nan-vae-weights", ["encode", "--force"], _nan_weights(f"{R}/vae/vae.weights.h5"),
     "vae.weights.h5"),
    ("nan-rnn-weights", ["evaluate", "--where", "dream", "--force"],
     _nan_weights(f"{R}/rnn/rnn.weights.h5"), "rnn.weights.h5"),
    # damaged chunks
    ("episode-middle-chunk", ["train-vae", "--force"], _long_episode, "episode_00001.h5"),
    ("episode-middle-chunk-collect", ["collect"],
     _both(_long_episode, _running(f"{D}/rollouts")), "episode_00001.h5"),
]


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_bad_input_is_one_line_and_touches_nothing(smoke_run, tmp_path, case):
    _, args, damage, expected = case
    root, _ = smoke_run
    box = tmp_path / "box"
    for part in ("data", "results"):
        shutil.copytree(root / part / "smoke", box / part / "smoke",
                        ignore=shutil.ignore_patterns("checkpoint"))
    (tmp_path / "victim").write_bytes(VICTIM)
    extra = damage(box) or []
    before = {part: _hashes(box / part) for part in ("data", "results")}
    options = ["--preset", "smoke", "--name", "smoke", "--data-dir", box / "data",
               "--results-dir", box / "results", "--seed", 0]
    result = invoke(args[0], *options, *args[1:], *extra, expect_ok=False)
    assert result.exit_code != 0, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    if lines and ": resuming the unfinished run in" in lines[0]:
        lines = lines[1:]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output and expected in lines[0], lines[0]
    assert (tmp_path / "victim").read_bytes() == VICTIM
    for part, hashes in before.items():
        after = _hashes(box / part)
        changed = {path for path in hashes if after.get(path) != hashes[path]
                   and path.name != "manifest.json"}  # (a resumed run counts its resume)
        assert not changed, changed
        assert all(path.name.endswith(".lock") for path in set(after) - set(hashes)), \
            set(after) - set(hashes)


# --- 2. Neighbours: two real processes ----------------------------------------------------


def _hold(kind: str, directory: Path) -> subprocess.Popen:
    """Another process holding ``directory``'s lock: "write" (a running stage) or "read" (a
    later stage reading it)."""
    take = ("lock_stage(sys.argv[1], 'collect')" if kind == "write"
            else "held = reading('train-vae', sys.argv[1]); held.__enter__()")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; "
         "from worldmodels.core.artifacts import lock_stage, "
         f"reading; {take}; print('held', flush=True); time.sleep(120)", str(directory)],
        stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert holder.stdout.readline().strip() == "held"
    return holder


NEIGHBOURS = [  # (id, who holds what, the command refused, what its line says)
    ("collect-force-while-v-reads", "read", f"{D}/rollouts", ["collect", "--force"],
     "is being read by process"),
    ("train-vae-force-while-it-runs", "write", f"{R}/vae", ["train-vae", "--force"],
     "in use by process"),
    ("train-vae-while-collect-writes", "write", f"{D}/rollouts", ["train-vae", "--force"],
     "is being written by process"),
    ("train-rnn-force-while-c-reads", "read", f"{R}/rnn", ["train-rnn", "--force"],
     "is being read by process"),
    ("train-controller-force-while-c-is-scored", "read", f"{R}/controller-dream",
     ["train-controller", "--force"], "is being read by process"),
]


@pytest.mark.parametrize("case", NEIGHBOURS, ids=[case[0] for case in NEIGHBOURS])
def test_force_waits_for_the_lock_and_readers_hold_theirs(smoke_run, tmp_path, case):
    from tests.conftest import copy_smoke

    _, kind, relative, args, expected = case
    options = copy_smoke(smoke_run, tmp_path, parts=("data", "results"))
    (tmp_path / R / "vae" / "checkpoint").mkdir(exist_ok=True)
    (tmp_path / R / "vae" / "checkpoint" / "progress.json").write_text("{}")  # as if running
    holder = _hold(kind, tmp_path / relative)
    before = {part: _hashes(tmp_path / part) for part in ("data", "results")}
    try:
        result = invoke(*args[:1], *options, *args[1:], expect_ok=False)
        line = _one_line(result.output)
        assert result.exit_code != 0 and expected in line and str(holder.pid) in line, line
        for part, hashes in before.items():
            after = _hashes(tmp_path / part)
            assert {p for p in hashes if after.get(p) != hashes[p]} == set()
    finally:
        holder.kill()
        holder.wait()


def test_read_locks_are_reentrant_and_become_a_write_lock_in_one_process(tmp_path):
    with reading("train-vae", tmp_path), reading("encode", tmp_path):
        lock_stage(tmp_path, "collect")  # this process reads it: the lock is upgraded
    release_stage(tmp_path)
    with reading("train-vae", tmp_path / "missing"):
        assert not (tmp_path / "missing").exists()  # nothing made for a missing input


# --- 3-5. Schema, numbers, chunks: the library's own checks -----------------------------


@pytest.mark.parametrize("sections", [
    {"rnn": {"hidden_size": True}}, {"rnn": {"dropout": None}}, {"controller": {"trials": 2.5}},
    {"evaluate": {"temperature": [1.0]}}, {"compare": {"temperatures": [1.0, "x"]}},
    {"compare": {"temperatures": {"a": 1}}}, {"collect": {"workers": "many"}},
], ids=str)
def test_wrong_types_are_refused_not_skipped(sections):
    with pytest.raises(WorldModelsError) as raised:
        apply_sections(get_preset("smoke"), sections, "s.json")
    assert str(raised.value).startswith("s.json: ") and "\n" not in str(raised.value)


def test_validate_refuses_null_and_bools_in_numbers():
    for config in (RnnConfig(hidden_size=None), RnnConfig(hidden_size=False),
                   ControllerConfig(sigma=float("nan"))):
        with pytest.raises(WorldModelsError):
            validate(config)
    validate(get_preset("smoke").collect)  # good input unchanged (workers may be None)


def test_a_non_finite_fitness_never_writes_best(tmp_path):
    from worldmodels.model.evolution import evolve

    config = ControllerConfig(population=4, generations=3, real_every=0)

    def fitness(candidates, generation):
        return [np.inf if generation == 1 else 1.0] * len(candidates)

    with pytest.raises(WorldModelsError, match="generation 2 scored a candidate inf"):
        evolve(fitness, 3, config, 1, tmp_path, progress=False)
    saved = np.load(tmp_path / "best.npy")
    assert np.all(np.isfinite(saved))  # generation 1's best, not generation 2's
    assert (tmp_path / "history.csv").read_text().count("\n") == 2


def test_a_cma_state_holding_nan_is_damaged(tmp_path):
    from worldmodels.model.evolution import State, load_state, save_state

    settings = {"dimensions": 3, "population": 4, "sigma": 0.1, "seed": 1}
    save_state(tmp_path, State([np.full(4, np.nan)], [{}], 1.0, None), np.zeros(3), settings)
    with pytest.raises(WorldModelsError, match="NaN or infinite"):
        load_state(tmp_path)


def test_a_damaged_middle_chunk_is_found_and_a_whole_file_passes(smoke_run, tmp_path):
    root, _ = smoke_run
    box = tmp_path / "box"
    shutil.copytree(root / D / "rollouts", box / D / "rollouts")
    _long_episode(box, damage_middle=False, name="episode_00000.h5")
    assert check_episode(box / D / "rollouts" / "episode_00000.h5") is None
    _long_episode(box)
    assert "unreadable" in check_episode(box / D / "rollouts" / "episode_00001.h5")


def test_a_bug_in_loading_keeps_its_traceback(tmp_path):
    """Only damage becomes "damaged ... --force": any other exception is ours to fix."""
    from worldmodels.core import checkpoint

    class Broken:
        def load_weights(self, path):
            raise RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        checkpoint.load_weights(Broken(), tmp_path / "x.weights.h5", "train-vae")
    (tmp_path / "checkpoint").mkdir()
    (tmp_path / "checkpoint" / "progress.json").write_text("{}")
    with pytest.raises(RuntimeError, match="a bug"):
        checkpoint.load(tmp_path, Broken(), None)


# --- small items -------------------------------------------------------------------------


def test_evaluate_does_not_count_workers_as_an_option(smoke_run, tmp_path):
    from tests.conftest import copy_smoke

    args = copy_smoke(smoke_run, tmp_path)
    result = invoke("evaluate", *args, "--where", "dream", "--workers", 1)
    assert "complete in" in result.output and "other" not in result.output, result.output


def test_a_signal_while_the_command_loads_is_one_line(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-c", "from commands.cli import main; main()", "report", "--name", "x",
         "--results-dir", tmp_path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    time.sleep(0.15)
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 1, output
    assert "stopped by SIGTERM" in _one_line(output)
    assert not any(tmp_path.iterdir())


def test_a_signal_after_the_command_ended_does_not_change_its_exit_status(smoke_run, tmp_path):
    """Once the last line is printed, a stop signal during the teardown (here, a sleep after
    the command) is no exit 143: the status stays the command's."""
    from tests.conftest import copy_smoke

    args = copy_smoke(smoke_run, tmp_path)
    script = ("import sys, time; from commands.cli import main; "
              "main(sys.argv[1:], standalone_mode=False); print('ended', flush=True); "
              "time.sleep(2)")
    process = subprocess.Popen(
        [sys.executable, "-c", script, "report", *map(str, args)], stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    lines = []
    while not lines or lines[-1].strip() != "ended":
        lines.append(process.stdout.readline())
        assert lines[-1], "".join(lines)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0, "".join(lines)
    assert "REPORT.md" in "".join(lines)
