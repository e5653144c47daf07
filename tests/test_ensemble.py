"""An ensemble of Ms (`--set rnn.members=K`): trained from their own seeds, kept beside M, and
dreams dealt out among them."""

import dataclasses
import json

import numpy as np

from tests.conftest import copy_smoke, invoke
from worldmodels import load_agent
from worldmodels.config import DreamSpec, member_seed
from worldmodels.core.artifacts import Layout
from worldmodels.model.controller import Controller
from worldmodels.model.world import load_world
from worldmodels.scoring.scorers import DreamScorer


def test_an_ensemble_trains_its_members_and_deals_the_dreams_among_them(smoke_run, tmp_path):
    args = copy_smoke(smoke_run, tmp_path)
    layout = Layout(args[5], args[7], "smoke")
    output = invoke("train-rnn", *args, "--set", "rnn.members=2", "--force").output
    assert f"ensemble member 1 of 1 (seed {member_seed(0, 1)})" in output
    manifest = json.loads((layout.rnn / "manifest.json").read_text())
    assert manifest["config"]["members"] == 2
    assert len(manifest["summary"]["member_losses"]) == 2
    assert (layout.rnn_member(1) / "rnn.weights.h5").is_file()

    world = load_world(layout, need_vae=False)
    first, second = world.rnns
    weights = [np.concatenate([w.numpy().ravel() for w in m.weights]) for m in world.rnns]
    assert not np.allclose(*weights)  # two seeds, two Ms

    spec = Controller("zh", world.z_size, world.hidden_size, world.env_id)
    params = np.random.default_rng(0).normal(0, 0.5, (8, spec.param_count)).astype(np.float32)
    dreamt = DreamSpec(temperature=1.0, max_steps=30)

    def dream_in(*rnns):
        pair = dataclasses.replace(world, rnn=rnns[0], members=rnns[1:])
        return DreamScorer(pair, dreamt, seed=3, controller=spec).run(params, call_seed=5)

    returns, lengths = dream_in(first, second)
    assert returns.shape == lengths.shape == (8,)
    # Row i dreams in member i mod 2: swapping the other member changes only its rows.
    firsts, _ = dream_in(first, first)
    seconds, _ = dream_in(second, second)
    np.testing.assert_array_equal(returns[0::2], firsts[0::2])
    np.testing.assert_array_equal(returns[1::2], seconds[1::2])
    assert not np.array_equal(firsts, seconds)

    # "worst": a candidate's fitness is the least of its mean in each member.
    candidates = params[:2]
    pair = DreamScorer(world, dreamt, seed=3, controller=spec)
    rows, _ = pair.run(np.repeat(candidates, 4, axis=0), call_seed=9)
    by_member = rows.reshape(2, 2, 2)  # candidate, trial pair, member (row i: member i mod 2)
    worst = DreamScorer(world, dataclasses.replace(dreamt, ensemble="worst"), seed=3,
                        controller=spec).fitness(candidates, 9, 4)
    np.testing.assert_allclose(worst, by_member.mean(axis=1).min(axis=1), rtol=1e-6)
    np.testing.assert_allclose(pair.fitness(candidates, 9, 4), rows.reshape(2, 4).mean(1),
                               rtol=1e-6)
    # "median": the median of its means in the members (three here: the first M twice).
    three = dataclasses.replace(world, members=(second, first))
    rows, _ = DreamScorer(three, dreamt, seed=3, controller=spec).run(
        np.repeat(candidates, 6, axis=0), call_seed=9)
    by_member = rows.reshape(2, 2, 3).mean(axis=1)  # candidate, member
    median = DreamScorer(three, dataclasses.replace(dreamt, ensemble="median"), seed=3,
                         controller=spec).fitness(candidates, 9, 6)
    np.testing.assert_allclose(median, np.median(by_member, axis=1), rtol=1e-6)
    assert not np.allclose(median, by_member.mean(axis=1))

    # C evolves on the ensemble; its bundle carries every member.
    invoke("train-controller", *args, "--force")
    bundle = tmp_path / "agent.tar"
    invoke("export", *args, "-o", bundle)
    agent = load_agent(str(bundle))
    assert len(agent.world.rnns) == 2
    np.testing.assert_array_equal(agent.world.members[0].weights[0].numpy(),
                                  second.weights[0].numpy())

    # A damaged count is one line; --force without members removes them.
    path = layout.rnn / "manifest.json"
    path.write_text(json.dumps(dict(manifest, config=dict(manifest["config"], members="3"))))
    refused = invoke("evaluate", *args, "--where", "dream", "--force", expect_ok=False)
    assert refused.exit_code != 0 and "config.members" in refused.output
    invoke("train-rnn", *args, "--force")
    assert not layout.rnn_member(1).exists()
