"""show's dream GIF is the dream C was trained in: dream.py's dream with C's burn-in, dropout
and action noise, read from the controller's manifest through evaluation.load_trained."""

from __future__ import annotations

import numpy as np

from worldmodels.core.artifacts import Layout


def test_the_dream_shown_is_the_dream_scored(smoke_run):
    from worldmodels.scoring.scorers import SHOW_STAGE_KEY, DreamScorer
    from worldmodels.views.show import dream_episodes, load_for_show

    root, _ = smoke_run
    layout = Layout(root / "data", root / "results", "smoke")
    world, (spec, flat, config) = load_for_show(layout, "dream", "zh", "best")
    world = dict(world, dropout=0.1, action_noise=0.2)  # as a controller trained with them
    latents, returns, lengths = dream_episodes(world, spec, flat, 1.0, 30, seed=3, count=4)
    scorer = DreamScorer(world, 1.0, 30, 3, spec, 0.1, 0.2, world["pay_as_track"],
                         world["dropout_mask"])
    scored, scored_lengths = scorer.run(np.repeat(flat[None], 4, axis=0), SHOW_STAGE_KEY)
    np.testing.assert_array_equal(lengths, scored_lengths)
    np.testing.assert_allclose(returns[np.arange(4), lengths], scored, rtol=1e-5, atol=1e-5)
    assert latents.shape[:2] == (4, lengths.max() + 1) or latents.shape[0] == 4
