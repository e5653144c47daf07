"""Pictures of what the agent sees, remembers and dreams, written to RESULTS/NAME/figures/:

- V: real frames and their reconstructions; decoded frames along single latent dimensions.
- M: an open-loop prediction strip from a fresh real episode (real frames, V's reconstructions,
  and frames decoded from M's predicted z given the real actions).
- C: a GIF of a whole dream episode driven by the trained controller, decoded through V.
- Training curves of V, M (each loss term) and C (dream fitness and real checks).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from worldmodels.config import DreamSpec
from worldmodels.core.artifacts import Layout, read_json, require_manifest, write_json
from worldmodels.core.figures import (
    image_grid,
    plot_controller_history,
    plot_metrics,
    read_rows,
    step_caption,
    write_gif,
)

if TYPE_CHECKING:
    from worldmodels.model.world import World

RECONSTRUCTED = 10  # frames in the reconstruction grid
TRAVERSED_DIMS = 5  # latent dimensions swept
TRAVERSAL = np.linspace(-3.0, 3.0, 7)  # values of a swept dimension (prior units)
PREDICTED = 40  # open-loop steps of M
SHOWN_EVERY = 4  # open-loop steps between shown frames
ZOOM_STEPS = 60  # CarRacing's zoom-in at the start of an episode, skipped
DREAMS = 16  # dreams run for the GIF; the longest is drawn
REAL_STEPS = 300  # length of the fresh real episode behind V's and M's pictures


def real_episode(env_id: str, policy: str, max_steps: int, seed: int) -> dict:
    """One fresh episode of the exploration policy on a track of its own (not collected)."""
    from worldmodels.data.collect import episode_seeds, run_episode
    from worldmodels.scoring.scorers import SHOW_STAGE_KEY

    return run_episode(env_id, max_steps, policy, episode_seeds(seed, 1, SHOW_STAGE_KEY)[0])


def _unit(frames: np.ndarray) -> np.ndarray:
    return frames.astype(np.float32) / 255.0


def draw_vae(vae, frames: np.ndarray, directory: Path) -> list[Path]:
    """vae-reconstructions.png and vae-traversal.png from the frames of a real episode."""
    from worldmodels.model.vae import encode_frames

    start = min(ZOOM_STEPS, len(frames) // 2)
    picks = np.linspace(start, len(frames) - 1, RECONSTRUCTED).astype(int)
    mu, _ = encode_frames(vae, frames)
    reconstructions = vae.decode(mu[picks]).numpy()
    written = [image_grid([("real", _unit(frames[picks])), ("V(real)", reconstructions)],
                          directory / "vae-reconstructions.png",
                          "V: real frames of an unseen track and their reconstructions "
                          "(decoded from mu)", [f"t={t}" for t in picks])]
    # The dimensions that vary most along the episode are the ones V uses.
    dims = np.argsort(-mu[start:].std(axis=0))[:TRAVERSED_DIMS]
    base = mu[picks[len(picks) // 2]]
    rows = []
    for d in dims:
        z = np.repeat(base[None], len(TRAVERSAL), axis=0)
        z[:, d] = TRAVERSAL
        rows.append((f"z[{d}]", vae.decode(z.astype(np.float32)).numpy()))
    written.append(image_grid(rows, directory / "vae-traversal.png",
                              "V: one latent dimension swept, the others fixed at a real "
                              "frame's mu", [f"{v:+.1f}" for v in TRAVERSAL]))
    return written


def draw_open_loop(vae, rnn, episode: dict, directory: Path) -> Path:
    """rnn-open-loop.png: M reads the real z and actions up to step t0, then predicts the next
    PREDICTED steps from its own predictions (mixture means) and the real actions."""
    import tensorflow as tf

    from worldmodels.model.rnn import mixture_mean, open_loop
    from worldmodels.model.vae import encode_frames

    frames, actions = episode["frames"], episode["actions"]
    k = min(PREDICTED, len(actions) - 1)
    t0 = max(0, min(ZOOM_STEPS, len(actions) - 1 - k))
    mu, _ = encode_frames(vae, frames)
    inputs = np.concatenate([mu[: t0 + 1], actions[: t0 + 1]], -1)[None].astype(np.float32)
    predictions, state = rnn(tf.constant(inputs))
    z = mixture_mean({key: value[:, -1] for key, value in predictions.items()})
    later = open_loop(rnn, z, list(state), actions[None, t0 + 1: t0 + k].astype(np.float32))
    predicted = [z[0], *later[0]]  # z_{t0+1}, then M's own
    every = SHOWN_EVERY if k >= 2 * SHOWN_EVERY else 1
    shown = np.arange(every - 1, k, every)[:10]  # offsets into the predicted steps
    steps = t0 + 1 + shown
    rows = [("real", _unit(frames[steps])),
            ("V(real)", vae.decode(mu[steps]).numpy()),
            ("M open loop", vae.decode(np.asarray(predicted, np.float32)[shown]).numpy())]
    return image_grid(rows, directory / "rnn-open-loop.png",
                      f"M: real z and actions up to step {t0}, then its own predictions "
                      "(mixture means) given the real actions",
                      [f"+{s + 1}" for s in shown])


def dream_episodes(world: World, dreamt: DreamSpec, spec, flat: np.ndarray, seed: int,
                   count: int = DREAMS, temperature: float | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``count`` dreams driven by the controller ``flat`` in the dream ``dreamt`` (the one C
    was trained in, from ``evaluation.load_trained``), at ``temperature`` (default: its
    own). Returns z (count, T+1, Z), cumulative returns (count, T+1) and lengths (count,)."""
    from worldmodels.scoring.scorers import SHOW_STAGE_KEY, DreamScorer

    scorer = DreamScorer(world, dreamt, seed, spec, temperature)
    params = np.repeat(flat[None], count, axis=0).astype(np.float32)
    _, lengths, z, rewards, z0 = scorer.run(params, SHOW_STAGE_KEY, record=True)
    latents = np.concatenate([z0[:, None], z], axis=1)
    returns = np.concatenate([np.zeros((count, 1)), np.cumsum(rewards, axis=1)], axis=1)
    return latents.astype(np.float32), returns, lengths.astype(int)


def load_for_show(layout: Layout, trained_in: str, variant: str, params: str, log=print):
    """The world behind the pictures of M and C, and (spec, params, dream spec) of the
    controller that drives the dream GIF, from ``evaluation.load_trained`` (the dream it was
    trained in);
    each None, with a line saying why, when its stage has not run."""
    from worldmodels.errors import WorldModelsError
    from worldmodels.model.world import check_world, load_world
    from worldmodels.scoring.evaluation import load_trained

    try:
        check_world(layout)
    except WorldModelsError as error:
        log(f"skipped M's and C's pictures: {error}")
        return None, None
    directory = layout.controller(trained_in, variant)
    manifest = directory / "manifest.json"
    if not manifest.exists() or read_json(manifest).get("status") != "complete":
        log(f"skipped the dream GIF: no trained controller in {directory} (run "
            f"`worldmodels train-controller --where {trained_in} --variant {variant}`)")
        return load_world(layout, need_vae=True), None
    controller = read_json(manifest)
    try:
        world, spec, flat, dreamt = load_trained(layout, controller, directory, params,
                                                 variant, need_vae=True, dreams=True)
    except WorldModelsError as error:
        log(f"skipped the dream GIF: {error}")
        return load_world(layout, need_vae=True), None
    return world, (spec, flat, dreamt)


def draw_dream(world: World, dreamt: DreamSpec, spec, flat: np.ndarray, seed: int, path: Path,
               temperature: float | None = None) -> tuple[Path, dict]:
    """A GIF of a dream episode decoded through V: the longest of DREAMS dreams (many of M's
    dreams end within a few steps, which makes a GIF of a few frames), with the lengths of all
    of them written beside it (PATH.json) so that the choice is on record."""
    latents, returns, lengths = dream_episodes(world, dreamt, spec, flat, seed,
                                               temperature=temperature)
    pick = int(np.argmax(lengths))
    length = int(lengths[pick])
    latents, returns = latents[pick, : length + 1], returns[pick, : length + 1]
    vae = world.vae
    frames = np.concatenate([vae.decode(latents[i:i + 200]).numpy()
                             for i in range(0, len(latents), 200)])
    every = 2 if len(frames) > 200 else 1
    picks = list(range(0, len(frames), every))
    if picks[-1] != len(frames) - 1:
        picks.append(len(frames) - 1)
    captions = [step_caption(t, returns[t]) for t in picks]
    write_gif(frames[picks], path, captions, fps=50 // every)
    record = {"dreams": len(lengths), "rule": "longest",
              "temperature": dreamt.temperature if temperature is None else temperature,
              "burn_in": world.burn_in, **dreamt.options(),
              "lengths": lengths.tolist(), "median_length": float(np.median(lengths)),
              "chosen": pick, "chosen_length": length, "chosen_return": float(returns[-1]),
              "frames_shown_every": every, "seed": seed}
    write_json(path.with_suffix(".json"), record)
    return path, record


def describe_dream(record: dict) -> str:
    """One line on the dream a GIF shows and the dreams it was chosen from."""
    return (f"the longest of {record['dreams']} dreams at τ = {record['temperature']:g}: "
            f"{record['chosen_length']} steps, dream return {record['chosen_return']:.1f} "
            f"(median length of the {record['dreams']}: {record['median_length']:g} steps)")


def draw_curves(layout: Layout, directory: Path) -> list[Path]:
    """Training curves of every stage that wrote them."""
    written = []
    for source, terms, name, title in (
        (layout.vae, ["loss", "reconstruction", "kl"], "vae-training.png", "V: training"),
        (layout.rnn, ["loss", "mdn", "reward", "done"], "rnn-training.png",
         "M: training (each loss term)"),
    ):
        if (source / "metrics.csv").exists():
            written.append(plot_metrics(read_rows(source / "metrics.csv"), terms,
                                        directory / name, title))
    for history in sorted(layout.experiment.glob("controller-*/history.csv")):
        name = history.parent.name
        written.append(plot_controller_history(
            read_rows(history), directory / f"{name}-training.png",
            f"C ({name}): fitness per generation and real-env checks",
            "real" if name.startswith("controller-real") else "dream"))
    return written


def require_vae(layout: Layout) -> dict:
    return require_manifest(layout.vae, "trained V", "train-vae")
