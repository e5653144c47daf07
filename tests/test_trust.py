"""Trust no file and no option (issue 17, the library's half): no file the suite reads can run
code, no path leaves its root, a stage directory has one process at a time, and every damaged
file or failed write is one line naming the file and how to recover, with nothing touched."""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.conftest import invoke
from worldmodels.config import ControllerConfig, override
from worldmodels.core.artifacts import (
    Layout,
    begin_stage,
    lock_stage,
    options_differ,
    read_json,
    release_stage,
)
from worldmodels.data.store import check_episode
from worldmodels.errors import WorldModelsError
from worldmodels.model.evolution import (
    LEGACY_STATE,
    STATE,
    Evolution,
    clear_state,
    evolve,
    load_state,
    restore,
)

CLI = [sys.executable, "-c", "from commands.cli import main; main()"]


def _sphere(candidates, generation):
    return -np.sum((np.asarray(candidates) - 0.3) ** 2, axis=1)


def test_a_resumed_cma_es_is_rebuilt_bit_for_bit_from_its_fitness_values(tmp_path):
    config = ControllerConfig(population=6, generations=9, sigma=0.4, real_every=0)
    evolve(_sphere, 12, config, 5, tmp_path / "whole", progress=False)
    for generations in (2, 5, 9):  # killed twice, then run to the end
        evolve(_sphere, 12, override(config, generations=generations), 5,
               tmp_path / "resumed", progress=False)
    for name in ("history.csv", "best.npy", "mean.npy"):
        assert (tmp_path / "whole" / name).read_bytes() == \
            (tmp_path / "resumed" / name).read_bytes()
    uninterrupted = Evolution(12, 6, 0.4, 5)  # in memory, never saved
    for generation in range(9):
        candidates = uninterrupted.ask()
        uninterrupted.tell(candidates, _sphere(candidates, generation))
    replayed = restore(load_state(tmp_path / "resumed"), tmp_path / "resumed", 12, 6, 0.4, 5)
    assert np.array_equal(replayed.mean, uninterrupted.mean)
    assert replayed.es.sigma == uninterrupted.es.sigma
    assert np.array_equal(replayed.es.sm.C, uninterrupted.es.sm.C)
    assert np.array_equal(replayed.ask(), uninterrupted.ask())  # the next generation too
    with np.load(tmp_path / "whole" / STATE, allow_pickle=False) as saved:
        assert all(saved[key].dtype != object for key in saved.files)


def test_a_state_made_for_other_settings_or_replaying_elsewhere_is_refused(tmp_path):
    config = ControllerConfig(population=6, generations=3, sigma=0.4, real_every=0)
    evolve(_sphere, 12, config, 5, tmp_path, progress=False)
    with pytest.raises(WorldModelsError, match="was made with"):
        evolve(_sphere, 12, override(config, generations=4, population=7), 5, tmp_path, False)
    with np.load(tmp_path / STATE) as saved:
        arrays = {key: saved[key] for key in saved.files}
    arrays["fitness"] = -arrays["fitness"]  # other ranks than those the mean came from
    with open(tmp_path / STATE, "wb") as file:
        np.savez(file, **arrays)
    with pytest.raises(WorldModelsError, match="damaged .*does not give its CMA-ES mean"):
        evolve(_sphere, 12, override(config, generations=4), 5, tmp_path, False)
    clear_state(tmp_path)
    assert not (tmp_path / STATE).exists()


class _Exploit:
    """A pickle that would create a marker file when unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_crafted_state_cannot_run_code(tmp_path):
    marker = tmp_path / "pwned"
    directory = tmp_path / "c"
    directory.mkdir()
    (directory / LEGACY_STATE).write_bytes(pickle.dumps(_Exploit(marker)))
    with pytest.raises(WorldModelsError, match="state.pkl is a CMA-ES state of an older"):
        load_state(directory)
    with open(directory / STATE, "wb") as file:  # an object array: a pickle inside the npz
        np.savez(file, fitness=np.array([_Exploit(marker)], dtype=object))
    with pytest.raises(WorldModelsError, match=f"{STATE} is damaged.*--force"):
        load_state(directory)
    assert not marker.exists()


def test_options_that_differ_from_a_complete_stage_are_named(tmp_path):
    manifest, state = begin_stage(tmp_path, "encode", {"episodes": 4, "workers": 2}, 0, {})
    from worldmodels.core.artifacts import finish_manifest

    finish_manifest(tmp_path, manifest)
    manifest, state = begin_stage(tmp_path, "encode", {"episodes": 4, "workers": 1}, 0, {})
    assert state == "complete" and options_differ(manifest, {"episodes": 4}, 0, {}) == []
    assert options_differ(manifest, {"episodes": 5}, 1, {"x": 1}) == \
        ["config.episodes", "seed", "inputs"]


# --- The CLI on damaged files and names that leave their roots: a table of cases ------------

R, D = "results/smoke", "data/smoke"  # the experiment's folders, relative to the case's box


def _garble(relative, keep=None):
    """Replace a file with random bytes (or its first ``keep`` bytes: truncated)."""
    def damage(box):
        path = box / relative
        content = path.read_bytes()
        path.write_bytes(content[:keep] if keep is not None
                         else np.random.default_rng(1).bytes(max(len(content), 4096)))
    return damage


def _write(relative, content):
    def damage(box):
        (box / relative).write_bytes(content if isinstance(content, bytes) else content.encode())
    return damage


def _edit_json(relative, change):
    def damage(box):
        import json

        path = box / relative
        payload = json.loads(path.read_text())
        change(payload)
        path.write_text(json.dumps(payload))
    return damage


def _running(relative):
    """Mark a stage unfinished, so the same command resumes it (and reads its state)."""
    return _edit_json(f"{relative}/manifest.json", lambda m: m.update(status="running"))


def _both(*damages):
    def damage(box):
        for one in damages:
            one(box)
    return damage


def _remove(relative):
    def damage(box):
        path = box / relative
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return damage


def _h5(relative, build):
    def damage(box):
        path = box / relative
        path.unlink()
        with h5py.File(path, "w") as file:
            build(file)
    return damage


def _short_rewards(file):
    file["frames"] = np.zeros((11, 64, 64, 3), np.uint8)
    file["actions"] = np.zeros((10, 3), np.float32)
    file["rewards"] = np.zeros(7, np.float32)  # 7 rewards for 10 steps
    file["terminations"] = np.zeros(10, np.uint8)


def _series_edit(change):
    def damage(box):
        with h5py.File(box / D / "series" / "series.h5", "r+") as file:
            change(file)
    return damage


def _exploit_state(box):
    (box / R / "controller-dream" / STATE).unlink()
    (box / R / "controller-dream" / LEGACY_STATE).write_bytes(
        pickle.dumps(_Exploit(box.parent / "pwned")))


def _object_array(relative):
    def damage(box):
        np.save(box / relative, np.array([_Exploit(box.parent / "pwned")], dtype=object),
                allow_pickle=True)
    return damage


def _other_shape_weights(box):
    from worldmodels.model.vae import ConvVAE

    model = ConvVAE(16)
    model(np.zeros((1, 64, 64, 3), np.float32))
    path = box / R / "vae" / "vae.weights.h5"
    path.unlink()
    model.save_weights(path)


def _name(value):
    return lambda box: value.replace("BOX", str(box.parent))


NAMES = ["../x", "BOX/abs", "..", "", ".", "a/b"]
CASES = [  # (id, command and its options, damage, what the one line must say)
    *[(f"collect-name-{i}", ["collect", "--episodes", 1], _name(name), "not a plain name")
      for i, name in enumerate(NAMES)],
    ("train-controller-name", ["train-controller", "--force"], _name("../x"), "not a plain name"),
    ("train-vae-name", ["train-vae", "--force"], _name(".."), "not a plain name"),
    ("evaluate-name", ["evaluate", "--force"], _name("BOX/abs"), "not a plain name"),
    ("encode-name", ["encode", "--force"], _name("a/b"), "not a plain name"),
    ("report-name", ["report"], _name("../smoke"), "not a plain name"),
    ("iterate-name", ["iterate"], _name("../x"), "not a plain name"),
    ("pickled-state", ["train-controller"],
     _both(_exploit_state, _running(f"{R}/controller-dream")), "older version"),
    ("state-random-bytes", ["train-controller"],
     _both(_garble(f"{R}/controller-dream/{STATE}"), _running(f"{R}/controller-dream")),
     "state.npz is damaged"),
    ("state-truncated", ["train-controller"],
     _both(_garble(f"{R}/controller-dream/{STATE}", keep=300),
           _running(f"{R}/controller-dream")), "state.npz is damaged"),
    ("episode-truncated", ["train-vae", "--force"], _garble(f"{D}/rollouts/episode_00001.h5",
                                                            keep=5000), "episode_00001.h5"),
    ("episode-random-bytes", ["encode", "--force"], _garble(f"{D}/rollouts/episode_00000.h5"),
     "episode_00000.h5 is corrupt"),
    ("episode-short-actions", ["train-vae", "--force"],
     _h5(f"{D}/rollouts/episode_00002.h5", _short_rewards), "rewards of shape (7,)"),
    ("rollouts-manifest-not-json", ["train-vae", "--force"],
     _write(f"{D}/rollouts/manifest.json", "{not json"), "not readable JSON"),
    ("vae-manifest-lacks-run-id", ["encode", "--force"],
     _edit_json(f"{R}/vae/manifest.json", lambda m: m.pop("run_id")), "'run_id'"),
    ("vae-manifest-a-list", ["encode", "--force"], _write(f"{R}/vae/manifest.json", "[1, 2]"),
     "not an object"),
    ("rnn-manifest-lacks-z", ["train-controller", "--force"],
     _edit_json(f"{R}/rnn/manifest.json", lambda m: m["inputs"].pop("z_size")),
     "inputs.z_size"),
    ("vae-weights-random-bytes", ["encode", "--force"], _garble(f"{R}/vae/vae.weights.h5"),
     "vae.weights.h5"),
    ("vae-weights-other-shape", ["encode", "--force"], _other_shape_weights, "vae.weights.h5"),
    ("rnn-weights-truncated", ["evaluate", "--where", "dream", "--force"],
     _garble(f"{R}/rnn/rnn.weights.h5", keep=2000), "rnn.weights.h5"),
    ("controller-random-bytes", ["evaluate", "--where", "dream", "--force"],
     _garble(f"{R}/controller-dream/best.npy"), "best.npy is damaged"),
    ("controller-object-array", ["evaluate", "--where", "dream", "--force"],
     _object_array(f"{R}/controller-dream/best.npy"), "best.npy is damaged"),
    ("series-random-bytes", ["evaluate", "--where", "dream", "--force"],
     _garble(f"{D}/series/series.h5"), "series.h5"),
    ("series-of-another-v", ["evaluate", "--where", "dream", "--force"],
     _series_edit(lambda f: f.attrs.__setitem__("vae_run_id", "someone-else")),
     "not by the trained V"),
    ("series-lacks-lengths", ["evaluate", "--where", "dream", "--force"],
     _series_edit(lambda f: f.__delitem__("lengths")), "lacks lengths"),
    ("vae-checkpoint-damaged", ["train-vae"],
     _both(_garble(f"{R}/vae/checkpoint/model.weights.h5"), _running(f"{R}/vae")),
     "checkpoint"),
    ("evaluation-json-corrupt", ["evaluate", "--where", "dream"],
     _write(f"{R}/evaluate/dream-dream-best.json", b"\x00\xff garbage"), "dream-dream-best.json"),
    ("evaluation-json-corrupt-report", ["report"],
     _write(f"{R}/evaluate/real-dream-best.json", "{\"mean\": "), "real-dream-best.json"),
]


def _hashes(directory: Path) -> dict:
    return {path.relative_to(directory): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(directory.rglob("*")) if path.is_file()}


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_bad_files_and_names_are_one_line_and_touch_nothing(smoke_run, tmp_path, case):
    _, args, damage, expected = case
    root, _ = smoke_run
    box = tmp_path / "box"
    skip = None if "checkpoint" in case[0] else shutil.ignore_patterns("checkpoint")
    for part in ("data", "results"):
        shutil.copytree(root / part / "smoke", box / part / "smoke", ignore=skip)
    name = damage(box)  # the --name of the case, or None: the damaged experiment's
    name = "smoke" if name is None else name
    roots = {part: _hashes(box / part) for part in ("data", "results")}
    outside = sorted(p for p in tmp_path.rglob("*") if box not in p.parents and p != box)
    cwd = sorted(os.listdir("."))
    options = ["--preset", "smoke", "--name", name, "--data-dir", box / "data",
               "--results-dir", box / "results", "--seed", 0]
    result = invoke(args[0], *options, *args[1:], expect_ok=False)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    resumed = ": resuming the unfinished run in" in lines[0]
    if resumed:
        # A resumed stage reads its state after the command said so and described the run,
        # and counts the resume in its manifest.
        lines = lines[2:]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert expected in lines[-1], lines[-1]
    for part, before in roots.items():
        after = _hashes(box / part)
        changed = {path for path in before if after.get(path) != before[path]}
        if resumed:
            changed = {path for path in changed if path.name != "manifest.json"
                       or read_json(box / part / path).get("resumes") != 1}
        assert not changed, changed
        assert all(path.name.endswith(".lock") for path in set(after) - set(before)), \
            set(after) - set(before)
    assert sorted(p for p in tmp_path.rglob("*") if box not in p.parents and p != box) == \
        outside
    assert sorted(os.listdir(".")) == cwd
    assert not (tmp_path / "pwned").exists()


def test_a_second_process_on_a_stage_is_refused_with_the_holders_pid(tmp_path):
    """A real collect holds the rollouts' lock: this process is refused, naming its pid, and
    cleans none of its temporary files; once it is killed (-9), the lock is free."""
    import signal
    import subprocess
    import time

    rollouts = tmp_path / "k" / "rollouts"
    env = dict(os.environ, WORLDMODELS_NO_PROGRESS="1", TF_CPP_MIN_LOG_LEVEL="2")
    args = ["collect", "--preset", "smoke", "--name", "k", "--data-dir", tmp_path,
            "--episodes", 40, "--max-steps", 400, "--workers", 1]
    process = subprocess.Popen(CLI + [str(a) for a in args], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=env,
                               start_new_session=True)
    try:
        deadline = time.time() + 120
        # Its first episode's file means it holds the lock and has swept its stale files.
        while not any(rollouts.glob("episode_*")):
            assert process.poll() is None and time.time() < deadline, process.stdout.read()
            time.sleep(0.05)
        other = rollouts / "episode_00009.h5.tmp999999"  # as if its worker were writing it
        other.write_bytes(b"partial")
        # The holder's own episodes change as it runs; what the refused process might touch
        # is the lock, the manifest and the other process's temporary file.
        watched = [rollouts / name for name in (".lock", "manifest.json", other.name)]
        before = [path.read_bytes() for path in watched]
        result = invoke(*args, expect_ok=False)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert result.exit_code != 0 and len(lines) == 1, result.output
        assert f"in use by process {process.pid}" in lines[0]
        assert [path.read_bytes() for path in watched] == before
        with pytest.raises(WorldModelsError, match=f"process {process.pid}"):
            lock_stage(rollouts, "collect")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    lock_stage(rollouts, "collect")  # released by the kernel when its holder died
    release_stage(rollouts)


def test_a_second_evaluation_of_the_same_result_is_refused_while_one_runs(smoke_run,
                                                                          tmp_path):
    """Two `evaluate` runs that would write the same file: the second is refused, naming the
    first's pid; an evaluation into another file of the same folder is not held up."""
    import subprocess
    import time

    from tests.conftest import copy_smoke

    args = copy_smoke(smoke_run, tmp_path)
    evaluations = tmp_path / "results" / "smoke" / "evaluate"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; "
         "from worldmodels.core.artifacts import lock_stage; "
         "lock_stage(sys.argv[1], 'evaluate', '.real-dream-best.lock'); print('held', "
         "flush=True); time.sleep(120)", str(evaluations)],
        stdout=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent)))
    try:
        assert holder.stdout.readline().strip() == "held"
        before = _hashes(evaluations)
        started = time.time()
        result = invoke("evaluate", *args, "--force", expect_ok=False)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert result.exit_code != 0 and len(lines) == 1, result.output
        assert f"in use by process {holder.pid}" in lines[0]
        assert _hashes(evaluations) == before
        assert time.time() - started < 30  # refused at once, not after the episodes
        invoke("evaluate", *args, "--where", "dream", "--force")  # another file: not held up
    finally:
        holder.kill()
        holder.wait()


def test_iterate_reads_no_pickle_either(smoke_run, tmp_path):
    from worldmodels.config import get_preset
    from worldmodels.stages.iterate import controller_round

    root, _ = smoke_run
    shutil.copytree(root / "results" / "smoke", tmp_path / "results" / "smoke",
                    ignore=shutil.ignore_patterns("checkpoint"))
    layout = Layout(root / "data", tmp_path / "results", "smoke")
    directory = layout.controller("dream")
    (directory / STATE).unlink()
    (directory / LEGACY_STATE).write_bytes(pickle.dumps(_Exploit(tmp_path / "pwned")))
    before = _hashes(tmp_path / "results")
    with pytest.raises(WorldModelsError, match="state.pkl is a CMA-ES state of an older"):
        controller_round(layout, get_preset("smoke").iterate, True, None, False)
    assert not (tmp_path / "pwned").exists()
    after = _hashes(tmp_path / "results")
    assert {path: after.get(path) for path in before} == before


def test_the_advice_for_a_corrupt_episode_works_when_followed(smoke_run, tmp_path):
    root, _ = smoke_run
    shutil.copytree(root / "data" / "smoke", tmp_path / "data" / "smoke")
    args = ["--preset", "smoke", "--name", "smoke", "--data-dir", tmp_path / "data",
            "--results-dir", root / "results", "--seed", 0]
    rollouts = tmp_path / "data" / "smoke" / "rollouts"
    episode = rollouts / "episode_00001.h5"
    whole = episode.read_bytes()
    episode.write_bytes(whole[:3000])
    message = invoke("encode", *args, "--force", expect_ok=False).output.splitlines()[-1]
    assert "delete it and re-run `worldmodels collect --name smoke --results-dir" in message
    assert "` with the same options" in message
    assert "--skip-corrupt" in message
    episode.unlink()  # as the line says
    output = invoke("collect", *args).output
    assert "resuming" in output
    assert episode.read_bytes() != b"" and check_episode(episode) is None
    from worldmodels.data.store import read_episode

    collected = read_episode(episode)
    with h5py.File(root / "data" / "smoke" / "rollouts" / "episode_00001.h5") as original:
        np.testing.assert_array_equal(collected["frames"], original["frames"][()])
    assert read_json(rollouts / "manifest.json")["status"] == "complete"
    assert "complete" in invoke("collect", *args).output  # and whole again


def test_a_write_that_fails_mid_run_is_one_line_and_the_run_resumes(smoke_run, tmp_path,
                                                                     monkeypatch):
    import errno

    import worldmodels.model.evolution as evolution

    root, _ = smoke_run
    shutil.copytree(root / "results" / "smoke", tmp_path / "results" / "smoke",
                    ignore=shutil.ignore_patterns("checkpoint", "controller-*", "evaluate"))
    args = ["train-controller", "--preset", "smoke", "--name", "smoke", "--data-dir",
            root / "data", "--results-dir", tmp_path / "results", "--seed", 0]
    saves = []

    def full_disk(file, array):
        saves.append(file)
        if len(saves) > 2:  # the second generation's
            raise OSError(errno.ENOSPC, "No space left on device")
        return np.save(file, array)

    monkeypatch.setattr(evolution.np, "save", full_disk)
    result = invoke(*args, expect_ok=False)
    message = result.output.splitlines()[-1]
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "No space left on device" in message and "re-run the same command" in message
    monkeypatch.undo()
    directory = tmp_path / "results" / "smoke" / "controller-dream"
    assert not list(directory.glob("*.tmp*"))
    assert "resuming" in invoke(*args).output
    assert read_json(directory / "manifest.json")["status"] == "complete"


def test_layout_paths_stay_in_their_roots(tmp_path):
    layout = Layout(tmp_path / "d", tmp_path / "r", "a-b_c.1")
    assert layout.evaluation("real", "dream", "z", "best", 0.1).name == \
        "real-dream-z-best-noise0.1.json"
    for bad in ({"round": -1}, {"round": "1/../.."}, {"round": True}):
        with pytest.raises(WorldModelsError):
            Layout(tmp_path, tmp_path, "x", **bad)
    with pytest.raises(WorldModelsError, match="not a plain name"):
        layout.evaluation("real", "../../x", "zh", "best")
    with pytest.raises(WorldModelsError, match="not a plain name"):
        layout.controller("dream/../../..")
    with pytest.raises(WorldModelsError, match="letters, digits"):
        Layout(tmp_path, tmp_path, "x" * 65)
