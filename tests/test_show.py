"""show's dream GIF is the dream C was trained in: dream.py's dream with C's burn-in, dropout
and action noise, read from the controller's manifest through evaluation.load_trained."""

from __future__ import annotations

import dataclasses

import numpy as np

from worldmodels.core.artifacts import Layout


def test_the_dream_shown_is_the_dream_scored(smoke_run):
    from worldmodels.scoring.scorers import SHOW_STAGE_KEY, DreamScorer
    from worldmodels.views.show import dream_episodes, load_for_show

    root, _ = smoke_run
    layout = Layout(root / "data", root / "results", "smoke")
    world, (spec, flat, dreamt) = load_for_show(layout, "dream", "zh", "best")
    # as a controller trained with them
    dreamt = dataclasses.replace(dreamt, dropout=0.1, action_noise=0.2, max_steps=30)
    latents, returns, lengths = dream_episodes(world, dreamt, spec, flat, seed=3, count=4,
                                               temperature=1.0)
    scorer = DreamScorer(world, dreamt, 3, spec, 1.0, 30)
    scored, scored_lengths = scorer.run(np.repeat(flat[None], 4, axis=0), SHOW_STAGE_KEY)
    np.testing.assert_array_equal(lengths, scored_lengths)
    np.testing.assert_allclose(returns[np.arange(4), lengths], scored, rtol=1e-5, atol=1e-5)
    assert latents.shape[:2] == (4, lengths.max() + 1) or latents.shape[0] == 4
