"""TakeCover on the real ViZDoom game: the env, its reaper, its dream, and the doom-smoke
pipeline and temperature table through the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pytest

from tests.conftest import invoke
from worldmodels.core.artifacts import Layout
from worldmodels.envs import get_env
from worldmodels.envs.reaper import game_children

TAKECOVER = "VizdoomTakeCover-v1"


def doom(root, name="doom", seed=0):
    return ["--preset", "doom-smoke", "--name", name, "--data-dir", root / "data",
            "--results-dir", root / "results", "--seed", seed]


def test_the_game_is_reproducible_and_pays_one_a_step():
    spec = get_env(TAKECOVER)
    env = spec.make(2100)
    try:
        runs = []
        for _ in range(2):
            screen, _ = env.reset(seed=11)
            frames, total = [spec.preprocess(screen)], 0.0
            policy = spec.make_policy("repeat", np.random.default_rng(3))
            while True:
                screen, reward, terminated, truncated, _ = env.step(policy.act(screen))
                frames.append(spec.preprocess(screen))
                total += reward
                if terminated or truncated:
                    break
            runs.append((np.stack(frames), total))
    finally:
        env.close()
    (first, total), (second, again) = runs
    assert first.shape[1:] == (64, 64, 3) and first.dtype == np.uint8
    np.testing.assert_array_equal(first, second)
    assert total == again == len(first) - 1  # +1 for every step, the death step included
    assert terminated and not truncated and 20 < total < 2100


def test_collection_keeps_one_game_per_worker_and_writes_what_fresh_games_play(tmp_path):
    from worldmodels.config import CollectConfig
    from worldmodels.data.collect import collect, episode_seeds, run_episode
    from worldmodels.data.store import list_episodes, read_episode

    config = CollectConfig(env_id=TAKECOVER, episodes=3, max_steps=2100, policy="repeat",
                           workers=1)
    before = set(game_children(None))
    collect(tmp_path / "rollouts", config, seed=4, progress=False)
    deadline = time.time() + 10
    while time.time() < deadline and set(game_children(None)) - before:
        time.sleep(0.1)
    assert not set(game_children(None)) - before  # the worker's game ended with the worker
    paths = list_episodes(tmp_path / "rollouts")
    # One worker played the three episodes on one game; each is what a new game plays.
    for path, seed in zip(paths, episode_seeds(4, 3), strict=True):
        stored, fresh = read_episode(path), run_episode(TAKECOVER, 2100, "repeat", seed)
        for name in ("frames", "actions", "rewards", "terminations"):
            np.testing.assert_array_equal(stored[name], fresh[name])
    with h5py.File(paths[0]) as file:  # the level that writes a fast game's frames fast
        assert file["frames"].compression_opts == get_env(TAKECOVER).gzip_level == 1


def test_the_controllers_move_is_left_stay_or_right():
    spec = get_env(TAKECOVER)
    raw = np.array([[-2.0], [-0.2], [0.0], [0.3], [5.0]], np.float32)
    np.testing.assert_array_equal(spec.squash_numpy(raw)[:, 0], [-1, 0, 0, 0, 1])
    np.testing.assert_array_equal(spec.squash_tf(raw).numpy(), spec.squash_numpy(raw))


def test_wander_holds_its_moves_and_leans_per_episode():
    spec = get_env(TAKECOVER)
    leanings = []
    for seed in range(40):
        policy = spec.make_policy("wander", np.random.default_rng(seed))
        moves = np.array([policy.act(None)[0] for _ in range(400)])
        assert set(np.unique(moves)) <= {-1.0, 0.0, 1.0}
        assert np.mean(moves[1:] == moves[:-1]) > 0.7  # moves are held, not redrawn a step
        leanings.append(moves.mean())
    leanings = np.abs(leanings)
    # some episodes keep to one side, others roam as the paper's repeat does
    assert (leanings > 0.6).sum() >= 4 and (leanings < 0.2).sum() >= 4


def test_a_killed_process_leaves_no_game_and_no_shared_memory(tmp_path):
    script = textwrap.dedent("""
        import sys, time
        from worldmodels.envs import get_env
        env = get_env("VizdoomTakeCover-v1").make(100)
        env.reset(seed=1)
        print("ready", flush=True)
        time.sleep(60)
    """)
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                               cwd=tmp_path, text=True)
    assert process.stdout.readline().strip() == "ready"
    games = game_children(process.pid)
    assert len(games) == 1
    (pid, instance), = games.items()
    assert any(name.endswith(instance) for name in os.listdir("/dev/shm"))
    time.sleep(0.5)  # the reaper's first look at its parent's children
    process.send_signal(signal.SIGKILL)
    process.wait()
    deadline = time.time() + 10
    while time.time() < deadline and (os.path.exists(f"/proc/{pid}") or any(
            name.endswith(instance) for name in os.listdir("/dev/shm"))):
        time.sleep(0.1)
    assert not os.path.exists(f"/proc/{pid}") or "zombie" in open(f"/proc/{pid}/status").read()
    assert not [name for name in os.listdir("/dev/shm") if name.endswith(instance)]
    assert not list(tmp_path.iterdir())  # the game wrote nothing into the working folder


def test_the_doom_dream_pays_one_a_step_and_ends_where_done_passes_a_half():
    from worldmodels.model.controller import Controller
    from worldmodels.model.dream import make_dream, run_dream
    from worldmodels.model.rnn import MDNRNN

    rnn = MDNRNN(4, 8, 2, action_size=1)
    controller = Controller("zh", 4, 8, TAKECOVER)
    assert controller.param_count == 13
    weights = rnn.done_head.get_weights()
    rnn.done_head.set_weights([np.zeros_like(weights[0]), np.full_like(weights[1], 5.0)])
    params = np.zeros((3, controller.param_count), np.float32)
    z0 = np.zeros((3, 4), np.float32)
    returns, lengths = run_dream(make_dream(rnn, controller), params, z0, 1.15, 50, seed=1)
    np.testing.assert_array_equal(lengths, [1, 1, 1])  # p(done) = 0.99: every dream ends
    rnn.done_head.set_weights([np.zeros_like(weights[0]), np.full_like(weights[1], -5.0)])
    returns, lengths = run_dream(make_dream(rnn, controller), params, z0, 1.15, 50, seed=1)
    np.testing.assert_array_equal(lengths, [50, 50, 50])  # never drawn: p(done) = 0.007
    np.testing.assert_array_equal(returns, lengths)


@pytest.fixture(scope="module")
def doom_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("doom")
    output = invoke("pipeline", *doom(root)).output
    return root, output


def test_the_doom_pipeline_runs_end_to_end(doom_run):
    root, output = doom_run
    layout = Layout(root / "data", root / "results", "doom")
    manifest = json.loads((layout.rollouts / "manifest.json").read_text())
    assert manifest["config"]["env_id"] == TAKECOVER
    assert "4,446,915" not in output and "z=16" in output  # the smoke V
    evaluation = json.loads((layout.evaluations / "real-dream-best.json").read_text())
    assert evaluation["env"] == TAKECOVER and len(evaluation["scores"]) == 2
    assert all(score == 60.0 or score < 60 for score in evaluation["scores"])
    assert (layout.experiment / "REPORT.md").exists()
    # TakeCover pays per step survived: M trains no reward head and reports no reward loss.
    assert (layout.rnn / "metrics.csv").read_text().splitlines()[0] == "epoch,loss,mdn,done"


def test_a_controller_on_ms_whole_state_trains_and_plays(doom_run):
    root, _ = doom_run
    invoke("train-controller", *doom(root), "--variant", "zhc", "--generations", "2")
    layout = Layout(root / "data", root / "results", "doom")
    manifest = json.loads((layout.controller("dream", "zhc") / "manifest.json").read_text())
    z, h = manifest["inputs"]["z_size"], manifest["inputs"]["hidden_size"]
    assert manifest["summary"]["parameters"] == z + 2 * h + 1  # [z, h, c] -> one move, and a bias
    invoke("evaluate", *doom(root), "--variant", "zhc")
    evaluation = json.loads((layout.evaluations / "real-dream-zhc-best.json").read_text())
    assert evaluation["variant"] == "zhc" and len(evaluation["scores"]) == 2


def test_the_temperature_table_is_written_beside_the_papers(doom_run):
    root, _ = doom_run
    output = invoke("temperatures", *doom(root)).output
    table = json.loads((root / "results/doom/temperatures/table.json").read_text())
    assert [row["temperature"] for row in table["rows"]] == [0.5, 1.15]
    assert table["rows"][1]["paper"]["real_mean"] == 1092
    assert table["random"]["episodes"] == 2 and table["paper_random"]["mean"] == 210
    assert "| 1.15 |" in output and "random policy" in output
    assert (root / "results/doom/temperatures/tau-0.5/controller-dream/best.npy").exists()


def test_a_policy_of_another_env_is_one_line(tmp_path):
    result = invoke("collect", *doom(tmp_path), "--policy", "pilot", expect_ok=False)
    assert result.exit_code != 0
    assert "policy 'pilot' does not play VizdoomTakeCover-v1" in result.output
    assert len(result.output.strip().splitlines()) == 1
    result = invoke("collect", *doom(tmp_path), "--set", "collect.env_id=CartPole-v1",
                    expect_ok=False)
    assert result.exit_code != 0 and "CartPole-v1" in result.output
    assert not (tmp_path / "data").exists()


def test_an_m_of_another_env_is_refused(doom_run, tmp_path):
    import shutil

    root, _ = doom_run
    shutil.copytree(root, tmp_path / "copy")
    manifest_path = tmp_path / "copy/data/doom/rollouts/manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["config"]["env_id"] = "CarRacing-v3"
    manifest_path.write_text(json.dumps(manifest))
    result = invoke("evaluate", *doom(tmp_path / "copy"), "--force", expect_ok=False)
    assert result.exit_code != 0
    assert "reads actions of size 1" in result.output and "CarRacing-v3" in result.output
