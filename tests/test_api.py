"""The Python API: the whole smoke method through worldmodels.stages gives what the CLI gives,
and load_agent acts as the real evaluation does."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from tests.conftest import ROOT
from worldmodels.core.artifacts import Layout, read_json
from worldmodels.data.store import list_episodes, read_episode

STAGE_DIRS = ("rollouts", "series_dir", "vae", "rnn")
VARY = ("scores", "mean", "std", "lengths", "controller", "controller_run_id", "wall_seconds",
        "code", "inputs")


def test_importing_load_agent_does_not_import_tensorflow():
    code = ("import sys; from worldmodels import load_agent; "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_the_smoke_method_through_python_gives_the_cli_files_and_scores(smoke_run, tmp_path):
    from worldmodels import stages
    from worldmodels.config import get_preset

    root, _ = smoke_run
    cli = Layout(root / "data", root / "results", "smoke")
    api = Layout(tmp_path / "data", tmp_path / "results", "smoke")
    preset, quiet = get_preset("smoke"), {"progress": False, "log": lambda line: None}
    stages.collect(api, preset.collect, 0, **quiet)
    stages.train_vae(api, preset.vae, 0, **quiet)
    stages.encode(api, 0, **quiet)
    stages.train_rnn(api, preset.rnn, 0, **quiet)
    result = stages.train_controller(api, preset.controller, 0, **quiet)
    assert result.status == "done" and api.controller("dream") / "best.npy" in result.written
    real = stages.evaluate(api, preset.evaluate, 0, **quiet)
    dream = stages.evaluate(api, preset.evaluate, 0, where="dream", **quiet)
    assert stages.evaluate(api, preset.evaluate, 0, **quiet).complete

    for part in STAGE_DIRS + ("controller",):
        ours = getattr(api, part) if part != "controller" else api.controller("dream")
        theirs = getattr(cli, part) if part != "controller" else cli.controller("dream")
        names = {p.name for p in ours.iterdir()}
        assert names <= {p.name for p in theirs.iterdir()}, part
        assert read_json(ours / "manifest.json")["config"] == \
            read_json(theirs / "manifest.json")["config"]
    for ours, theirs in zip(list_episodes(api.rollouts), list_episodes(cli.rollouts)):
        np.testing.assert_array_equal(read_episode(ours)["frames"], read_episode(theirs)["frames"])
    np.testing.assert_allclose(np.load(api.controller("dream") / "best.npy"),
                               np.load(cli.controller("dream") / "best.npy"), rtol=1e-5)
    for result, name in ((real, "real-dream-best.json"), (dream, "dream-dream-best.json")):
        ours, theirs = read_json(api.evaluations / name), read_json(cli.evaluations / name)
        assert result.data["mean"] == ours["mean"]
        assert {k: v for k, v in ours.items() if k not in VARY} == \
            {k: v for k, v in theirs.items() if k not in VARY}
    # Real returns are robust to the last bits of V's and M's weights, which TensorFlow's
    # multi-threaded CPU kernels do not fix from run to run; the dream's sampled dones are not.
    np.testing.assert_allclose(real.data["scores"],
                               read_json(cli.evaluations / "real-dream-best.json")["scores"],
                               rtol=1e-3)


def test_load_agent_acts_as_the_real_evaluation(smoke_run):
    from worldmodels import load_agent
    from worldmodels.model.agent import AgentSetup, AgentWorker, run_agent_episodes

    root, _ = smoke_run
    agent = load_agent("smoke", root / "results", root / "data")
    setup = AgentSetup.from_world(agent.world, agent.controller, 30, 0)
    (total, steps, actions), = run_agent_episodes(AgentWorker(setup),
                                                  [(7, agent.params[0], "actions", 0.0)])
    episode = agent.episode(7, max_steps=30)
    assert episode["steps"] == steps == 30
    np.testing.assert_allclose(episode["actions"], actions, atol=1e-5)
    assert np.isclose(episode["return"], total, atol=1e-3)

    evaluated = read_json(root / "results" / "smoke" / "evaluate" / "dream-dream-best.json")
    dreams = agent.dream(count=evaluated["episodes"], temperature=evaluated["temperature"],
                         max_steps=evaluated["config"]["max_steps"], seed=evaluated["seeds"][0])
    np.testing.assert_allclose(dreams["returns"], evaluated["scores"], rtol=1e-5)
    assert dreams["z"].shape[0] == evaluated["episodes"]
