"""M on held-out episodes: how well M predicts real episodes it never trained on, before any C.

The episodes of another collection of the same env in the same data folder (e.g. `worldmodels
collect --name hold --seed 99`, another seed than the experiment's own data) are encoded by the
experiment's V and read by its M along their real z and actions (teacher forcing), one episode
at a time:

- the MDN's negative log-likelihood of V's next z per dimension (M's training loss, on data
  it has not seen: above the training figure, M has learned its own data rather than the env);
- the done head's cross-entropy per step, the share of the episodes' endings (deaths) at which
  the dream would end them (``endings_foreseen``, as the dream reads done), and the chance the
  dream would have ended them before they ended (``dream_ends_early``);
- the reward head's mean absolute error, for an env whose reward M predicts;
- the k-step open-loop z error (``fidelity._open_loop``) beside the error of "nothing changes".

Whether any of these tells a good M before C is evolved in it was row T26 of
results/EXPERIMENTS.md (on TakeCover: no).
"""

from __future__ import annotations

import numpy as np

from worldmodels.core.artifacts import Layout
from worldmodels.errors import WorldModelsError
from worldmodels.model.world import World


def held_out_layout(layout: Layout, name: str) -> Layout:
    """The collection ``name`` in the experiment's data folder (its rollouts only are read)."""
    if name == layout.name:
        raise WorldModelsError(f"--held-out {name} is the experiment's own data: collect "
                               "episodes M has not seen under another --name and --seed")
    return Layout(layout.data_dir, layout.results_dir, name)


def check_held_out(layout: Layout, held_out: Layout) -> dict:
    """The held-out collection's manifest, refused (one line) when it is missing or
    unfinished, of another env than the experiment's, or collected with the experiment's own
    seed (then its episodes are M's training data)."""
    from worldmodels.config import ENV_ID
    from worldmodels.core.artifacts import require_manifest

    own = require_manifest(layout.rollouts, "rollouts", "collect")
    other = require_manifest(held_out.rollouts, "held-out rollouts",
                             f"collect --name {held_out.name} --seed S")
    env_id = own.get("config", {}).get("env_id", ENV_ID)
    other_env = other.get("config", {}).get("env_id", ENV_ID)
    if other_env != env_id:
        raise WorldModelsError(f"the held-out episodes in {held_out.rollouts} are {other_env}'s, "
                               f"M was trained on {env_id}'s")
    if other.get("seed") == own.get("seed"):
        raise WorldModelsError(
            f"the held-out episodes in {held_out.rollouts} were collected with seed "
            f"{own.get('seed')}, as M's own data: collect them with another --seed")
    return other


def measure_held_out(world: World, held_out: Layout, horizons: tuple, stride: int,
                     progress: bool = True) -> dict:
    """M (with its V, ``world`` from ``load_world(need_vae=True)``) read along every episode
    of the held-out collection (see the module docstring)."""
    from tqdm import tqdm

    from worldmodels.data.store import list_episodes, read_episode
    from worldmodels.scoring.fidelity import _along_real_path, _open_loop

    paths = list_episodes(held_out.rollouts)
    if not paths:
        raise WorldModelsError(f"no episodes in {held_out.rollouts}")
    rows, kept = [], []
    for path in tqdm(paths, desc="held-out", unit="ep", disable=not progress):
        episode = read_episode(path)
        rows.append(_along_real_path(world, episode, 0.0))
        kept.append({"z": episode["z"], "actions": episode["actions"]})  # frames let go
    return summarise_held_out(rows, _open_loop(world, kept, horizons, stride),
                              world.env.step_reward is None)


def summarise_held_out(rows: list, open_loop: dict, reward_predicted: bool) -> dict:
    """The per-episode readings of ``_along_real_path`` pooled over steps (NLL, cross-entropy,
    reward error) and over episodes (endings), with the open-loop errors."""
    steps = np.array([row["steps"] for row in rows], dtype=np.float64)

    def per_step(key):
        return float(np.dot(steps, [row[key] for row in rows]) / steps.sum())

    endings = [row["p_done_at_end"] for row in rows if row["p_done_at_end"] is not None]
    running = [row["p_done_running"] for row in rows if row["p_done_running"] is not None]
    return {
        "episodes": len(rows), "steps": int(steps.sum()), "endings": len(endings),
        "mdn_nll": per_step("mdn_nll"),
        "done_cross_entropy": per_step("done_cross_entropy"),
        "endings_foreseen": float(np.mean(endings)) if endings else None,
        "dream_ends_early": float(np.mean([row["dream_ends_early"] for row in rows])),
        "p_done_running": float(np.mean(running)) if running else None,
        "reward_mae": per_step("reward_mae") if reward_predicted else None,
        "open_loop": open_loop,
    }


def describe(result: dict) -> str:
    """One line of the headline figures."""
    parts = [f"MDN NLL {result['mdn_nll']:.3f} per dimension",
             f"done cross-entropy {result['done_cross_entropy']:.3f}"]
    if result["endings_foreseen"] is not None:
        parts.append(f"endings foreseen {result['endings_foreseen']:.2f} "
                     f"(of {result['endings']})")
    if result["reward_mae"] is not None:
        parts.append(f"reward error {result['reward_mae']:.3f}")
    open_loop = result["open_loop"]
    if open_loop["model"]:
        k = open_loop["horizons"][-1]
        parts.append(f"open-loop error at {k} steps {open_loop['model'][-1]:.2f} "
                     f"(no change {open_loop['no_change'][-1]:.2f})")
    return f"{result['episodes']} held-out episodes: " + ", ".join(parts)
