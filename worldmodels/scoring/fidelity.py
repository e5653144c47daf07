"""Dream fidelity: M measured against reality along the trained controller's own real episodes.

On real tracks disjoint from collection, training and evaluation (``FIDELITY_STAGE_KEY``), the
controller drives as it was scored in the dream (with its action noise). V encodes every frame;
M then reads the real [z, a] sequence (teacher forcing) and its reward and done heads are set
against what the env paid and when it ended:

- return predicted along the real path vs the real return (raw, and paid as a track pays when
  the controller's dream does so);
- per-step reward error (mean absolute, root mean square);
- done calibration: M's mean p(done) on steps that did not end the episode, and the chance the
  dream would have ended the real episode before it did (1 - prod(1 - p_done));
- k-step open-loop z error: from real states, M predicts k steps ahead with its own z (the
  mixture's mean) and the real actions; the squared error against V's z, divided by the
  variance of z (1.0 is as bad as always guessing the mean frame), beside the error of
  "nothing changes" (z_t for z_{t+k});
- the dream's return distribution for the same controller beside the real one;
- fixed actions: each of the env's constant behaviours (``EnvSpec.fixed_actions``) in the
  dream and on the first ``fixed_episodes`` real tracks: a dream that pays a trivial behaviour
  far more than the env does holds an exploit C can find.
- endings on the data: M read along collected episodes and `iterate`'s: how many of their
  endings (deaths) the dream would end at, i.e. whether M knows what ends the controller's
  episodes as well as the exploration policy's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from worldmodels.config import DreamSpec, FidelityConfig
from worldmodels.core.artifacts import VERSION, code_commit
from worldmodels.data.collect import episode_seeds
from worldmodels.envs.carracing import pay_as_track
from worldmodels.model.world import World
from worldmodels.scoring.scorers import FIDELITY_STAGE_KEY

IMPOSSIBLE_RETURN = 930.0  # CarRacing-v3's most (EnvSpec.max_return): results that predate it
RANKING_CALL_SEED = 10**6  # the ranking's dreams: apart from every training generation's
FIXED_CALL_SEED = 10**6 + 1  # the fixed actions' dreams
DATA_GROUPS = {"collected": "the collected data", "iterate": "iterate's episodes"}
"""The episodes `endings_on_data` reads M along."""


def measure_fidelity(world: World, dreamt: DreamSpec, spec, params: np.ndarray,
                     config: FidelityConfig, seed: int, progress: bool = True,
                     ray_address: str | None = None, candidates: np.ndarray | None = None,
                     trials: int = 1) -> dict:
    """The fidelity figures of M for the controller ``params`` (see the module docstring),
    in the dream ``dreamt`` (the one it was trained in) and with its action noise in the real
    env. ``world`` comes from ``evaluation.load_trained(..., need_vae=True, dreams=True)``.
    With ``candidates`` (and ``config.candidate_episodes``), also how the dream ranks them
    (``_ranking``)."""
    from worldmodels.core.workers import make_backend
    from worldmodels.model.agent import episode_tasks

    seeds = episode_seeds(seed, config.episodes, FIDELITY_STAGE_KEY)
    ranked = candidates is not None and config.candidate_episodes > 0
    tasks = max(len(seeds), len(candidates) * config.candidate_episodes if ranked else 0,
                len(spec.env.fixed_actions) * config.fixed_episodes)
    with make_backend(config.workers, ray_address, len(episode_tasks(tasks))) as backend:
        episodes = _real_episodes(backend, world, spec, params, seeds, config, seed, progress,
                                  dreamt.action_noise)
        ranking = _ranking(backend, world, dreamt, spec, candidates, config, seed, trials,
                           progress) if ranked else None
        fixed = _fixed_actions(backend, world, dreamt, spec, config, seed, progress)
    tile_value = world.tile_value if dreamt.pay_as_track else 0.0
    per_episode = [_along_real_path(world, episode, tile_value) for episode in episodes]
    dream_returns, dream_lengths = _dreams(world, dreamt, spec, params, config, seed)
    real_returns = np.array([e["rewards"].sum() for e in episodes])
    result = {
        "version": VERSION, "code": code_commit(), "seeds": seeds,
        "temperature": dreamt.temperature,
        "dream_options": {"burn_in": world.burn_in, **dreamt.options()},
        "tile_value": world.tile_value, "max_return": world.env.max_return,
        "max_steps": config.max_steps,
        "real": {"returns": real_returns.tolist(),
                 "lengths": [len(e["rewards"]) for e in episodes],
                 "action_mean": _action_means(world.env, episodes)},
        "along_real_path": per_episode,
        "open_loop": _open_loop(world, episodes, config.horizons, config.open_loop_stride),
        "dream": {"returns": dream_returns.tolist(), "lengths": dream_lengths.tolist()},
        "ranking": ranking,
        "fixed_actions": fixed,
    }
    result["summary"] = summarise(result)
    return result


def _real_episodes(backend, world, spec, params, seeds, config, seed, progress,
                   noise: float) -> list:
    from worldmodels.model.agent import AgentSetup, run_real_episodes

    recorded = {}
    setup = AgentSetup.from_world(world, spec, config.max_steps, seed)
    flat = np.repeat(params[None], len(seeds), axis=0).astype(np.float32)
    run_real_episodes(backend, setup, flat, seeds, progress=progress, desc="fidelity",
                      record="episode", on_recorded=recorded.__setitem__, noise=noise)
    return [recorded[i] for i in range(len(seeds))]


def _ranking(backend, world, dreamt, spec, candidates, config, seed, trials,
             progress) -> dict:
    """The candidates scored in the dream C was trained in (``trials`` dreams each, as a
    generation of training is) and on the first ``candidate_episodes`` fidelity tracks each
    (with C's action noise): Spearman's rank correlation of the two, and the real score of
    the candidate the dream ranks first beside the best and the mean real score."""
    from worldmodels.scoring.scorers import DreamScorer, RealScorer

    dream = DreamScorer(world, dreamt, seed, spec, max_steps=config.max_steps).fitness(
        candidates, RANKING_CALL_SEED, trials)
    tracks = episode_seeds(seed, config.candidate_episodes, FIDELITY_STAGE_KEY)
    params = np.repeat(candidates, len(tracks), axis=0)
    scorer = RealScorer(world, backend, seed, config.max_steps, progress,
                        controller=spec, noise=dreamt.action_noise)
    returns = scorer.run(params, tracks * len(candidates), desc="fidelity: candidates")
    real = returns.reshape(len(candidates), len(tracks)).mean(axis=1)
    return {"candidates": len(candidates), "trials": trials, "tracks": tracks,
            "dream": dream.tolist(), "real": real.tolist(),
            "rank_correlation": spearman(dream, real),
            "real_of_dream_choice": float(real[int(np.argmax(dream))]),
            "real_best": float(real.max()), "real_mean": float(real.mean())}


def _action_means(env, episodes: list) -> dict:
    """Each action component's mean over every step of the real episodes, by its label (what
    the controller does: TakeCover's move near +1 is "always right")."""
    actions = np.concatenate([np.asarray(e["actions"]).reshape(-1, env.action_size)
                              for e in episodes])
    return {label: float(mean) for label, mean in zip(env.action_labels, actions.mean(axis=0))}


def describe_moves(moves: dict) -> str:
    """A controller's mean actions (``_action_means``) as text: "steer +0.95, gas +0.16"."""
    return ", ".join(f"{label} {mean:+.2f}" for label, mean in moves.items())


def _fixed_actions(backend, world, dreamt, spec, config, seed, progress) -> dict | None:
    """Each of the env's constant behaviours as a controller (``Controller.constant``), in
    ``dream_episodes`` dreams of the dream C was trained in and on the first
    ``fixed_episodes`` fidelity tracks (with C's action noise): {name: {dream, real, ...}}.
    None when the env has none or ``fixed_episodes`` is 0."""
    from worldmodels.scoring.scorers import DreamScorer, RealScorer

    names = list(spec.env.fixed_actions)
    if not names or config.fixed_episodes <= 0:
        return None
    params = np.stack([spec.constant(spec.env.fixed_actions[name]) for name in names])
    dream = DreamScorer(world, dreamt, seed, spec, max_steps=config.max_steps).run(
        np.repeat(params, config.dream_episodes, axis=0), FIXED_CALL_SEED)[0]
    dream = dream.reshape(len(names), config.dream_episodes)
    tracks = episode_seeds(seed, config.fixed_episodes, FIDELITY_STAGE_KEY)
    scorer = RealScorer(world, backend, seed, config.max_steps, progress,
                        controller=spec, noise=dreamt.action_noise)
    real = scorer.run(np.repeat(params, len(tracks), axis=0), tracks * len(names),
                      desc="fidelity: fixed actions").reshape(len(names), len(tracks))
    return {name: {"raw": list(spec.env.fixed_actions[name]),
                   "dream": float(d.mean()), "dream_std": float(d.std()),
                   "real": float(r.mean()), "real_std": float(r.std()), "tracks": len(tracks)}
            for name, d, r in zip(names, dream, real)}


def spearman(x, y) -> float:
    """Spearman's rank correlation (tied values share their mean rank; 0 when either side is
    all ties)."""
    rx, ry = _ranks(x), _ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return 0.0
    return float(np.corrcoef(rx, ry)[0, 1])


def _ranks(values) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    ranks = np.empty(len(values))
    ranks[np.argsort(values, kind="stable")] = np.arange(len(values))
    for value in np.unique(values):
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def _encode(vae, frames: np.ndarray, batch: int = 256) -> np.ndarray:
    from worldmodels.model.vae import to_unit

    mus = [vae.encode(to_unit(frames[i : i + batch]))[0].numpy()
           for i in range(0, len(frames), batch)]
    return np.concatenate(mus).astype(np.float32)


def _along_real_path(world: World, episode: dict, tile_value: float) -> dict:
    """M read along one real episode: its reward and done heads against the env's, and its
    MDN's negative log-likelihood of V's next z (per dimension, as M's training loss reads it)
    and its done head's cross-entropy (unweighted), both per step."""
    import tensorflow as tf

    from worldmodels.model.rnn import mdn_log_prob

    z = _encode(world.vae, episode["frames"])
    episode["z"] = z
    inputs = np.concatenate([z[:-1], episode["actions"]], -1)[None]
    predictions, _ = world.rnn(tf.constant(inputs, tf.float32))
    log_prob = mdn_log_prob(predictions["logits"], predictions["mu"], predictions["logstd"],
                            tf.constant(z[1:][None]))
    reward = predictions["reward"].numpy()[0].astype(np.float64)
    p_done = tf.sigmoid(predictions["done_logit"]).numpy()[0].astype(np.float64)
    real = episode["rewards"].astype(np.float64)
    ended = episode["terminations"].astype(bool)
    done_entropy = -np.where(ended, np.log(p_done + 1e-7), np.log(1.0 - p_done + 1e-7))
    env = world.env
    if env is not None and env.step_reward is not None:
        reward = np.full_like(reward, env.step_reward)  # the dream pays this, not the head
    if env is not None:
        p_done = as_dream_reads(p_done, env.done_threshold)
    paid_total, paid = 0.0, 0.0
    if tile_value:
        for r in reward:
            r, paid = pay_as_track(r, paid, tile_value)
            paid_total += r
    return {
        "steps": len(real),
        "mdn_nll": float(-log_prob.numpy().mean()),
        "done_cross_entropy": float(done_entropy.mean()),
        "real_return": float(real.sum()),
        "predicted_return": float(reward.sum()),
        "predicted_return_paid_as_track": float(paid_total) if tile_value else None,
        "reward_mae": float(np.abs(reward - real).mean()),
        "reward_rmse": float(np.sqrt(np.square(reward - real).mean())),
        "p_done_running": float(p_done[~ended].mean()) if (~ended).any() else None,
        "p_done_at_end": float(p_done[ended].mean()) if ended.any() else None,
        "dream_ends_early": float(1.0 - np.prod(1.0 - p_done[~ended])),
    }


def endings_on_data(world: World, layout, count: int) -> dict | None:
    """M read along up to ``count`` episodes (evenly spread) of the collected data and as many
    of `iterate`'s rounds (``read_endings``); None when off."""
    if count == 0:
        return None
    from worldmodels.core.artifacts import require_manifest
    from worldmodels.data.store import require_series

    collected = int(require_manifest(layout.rollouts, "rollouts", "collect")["config"]
                    ["episodes"])
    weight = float(world.rnn_manifest["config"].get("done_pos_weight", 10.0))
    result = {}
    with require_series(layout.series) as series:
        total = len(series["lengths"])
        spans = {"collected": (0, min(collected, total)), "iterate": (collected, total)}
        for group, (start, stop) in spans.items():
            picks = np.unique(np.linspace(start, stop - 1, min(count, stop - start)).astype(int))
            found = read_endings(world.rnn, series, picks, world.env.done_threshold, weight)
            if found is not None:
                result[group] = found
    return result


def as_dream_reads(p_done: np.ndarray, threshold: float | None) -> np.ndarray:
    """M's done probabilities as the dream reads them: with a ``threshold`` (TakeCover), 1
    where it is passed and 0 elsewhere; without, the probability the draw ends there."""
    return p_done if threshold is None else (p_done > threshold).astype(np.float64)


ENDINGS_BATCH = 32  # episodes M reads at once along the data


def read_endings(rnn, series, indices, threshold: float | None, weight: float) -> dict | None:
    """Of the series episodes ``indices`` that ended (a death, leaving the playfield), read by
    M along their real z and actions: the share whose ending the dream would read as one
    (with a ``threshold``, as TakeCover's dream reads done; without, the chance the draw ends
    it there), the chance it would end them earlier, and the endings M expects along each with
    its done probability calibrated back from the done head's class ``weight`` (1.0 per
    ended episode is right; less, and the dream outlives the env). None if none ended."""
    import tensorflow as tf

    from worldmodels.data.store import read_windows

    lengths = series["lengths"][()]
    cases = []  # (where the episode ended, its index), read in batches of like lengths
    for index in indices:
        ended = series["terminations"][index, :int(lengths[index])].astype(bool)
        if ended.any():
            cases.append((int(np.flatnonzero(ended)[0]), index))
    cases.sort()
    rows = []
    for first in range(0, len(cases), ENDINGS_BATCH):
        batch = cases[first:first + ENDINGS_BATCH]
        # padded past each end (M reads forwards, so a step never sees what follows it)
        window = read_windows(series, [index for _, index in batch], [0] * len(batch),
                              batch[-1][0] + 1)
        inputs = np.concatenate([window["mu"][:, :-1], window["actions"]], -1)
        logits = rnn(tf.constant(inputs))[0]["done_logit"].numpy().astype(np.float64)
        for row, (end, _) in enumerate(batch):
            logit = logits[row, :end + 1]
            p = as_dream_reads(1.0 / (1.0 + np.exp(-logit)), threshold)
            calibrated = 1.0 / (1.0 + np.exp(-(logit - np.log(weight))))
            rows.append((p[end], 1.0 - np.prod(1.0 - p[:end]), calibrated.sum()))
    if not rows:
        return None
    foreseen, earlier, expected = np.mean(rows, axis=0)
    return {"episodes": len(indices), "endings": len(rows), "foreseen": float(foreseen),
            "earlier": float(earlier), "expected_endings": float(expected)}


def _open_loop(world: World, episodes: list, horizons: tuple, stride: int) -> dict:
    """k-step open-loop z error from every ``stride``-th real step, normalised by z's
    variance over the episodes; beside it the error of predicting no change."""
    import tensorflow as tf

    from worldmodels.model.rnn import open_loop

    rnn, K = world.rnn, max(horizons)
    all_z = np.concatenate([e["z"] for e in episodes])
    variance = float(all_z.var(axis=0).mean())
    starts, states = [], []
    for index, e in enumerate(episodes):
        inputs = tf.constant(np.concatenate([e["z"][:-1], e["actions"]], -1)[None], tf.float32)
        h, c = _states_along(rnn, inputs)
        for t in range(0, len(e["actions"]) - K, stride):
            starts.append((index, t))
            states.append((h[t], c[t]))
    if not starts:
        return {"horizons": list(horizons), "model": None, "no_change": None,
                "z_variance": variance}
    h = tf.constant(np.stack([s[0] for s in states]))
    c = tf.constant(np.stack([s[1] for s in states]))
    before = np.stack([episodes[i]["z"][t] for i, t in starts])
    actions = np.stack([episodes[i]["actions"][t: t + K] for i, t in starts])
    predicted = open_loop(rnn, before, [h, c], actions)
    model_error, still_error = {}, {}
    for k in horizons:
        target = np.stack([episodes[i]["z"][t + k] for i, t in starts])
        model_error[k] = float(np.square(predicted[:, k - 1] - target).mean() / variance)
        still_error[k] = float(np.square(before - target).mean() / variance)
    return {"horizons": list(horizons), "model": [model_error[k] for k in horizons],
            "no_change": [still_error[k] for k in horizons], "z_variance": variance,
            "starts": len(starts)}


def _states_along(rnn, inputs):
    """M's (h, c) after each step of a real sequence: index t holds the state that has read
    steps 0..t-1 (index 0 is the blank memory)."""

    h, c = rnn.initial_state(1)
    hs, cs = [h.numpy()[0]], [c.numpy()[0]]
    for t in range(inputs.shape[1]):
        _, (h, c) = rnn.step(inputs[:, t], [h, c])
        hs.append(h.numpy()[0])
        cs.append(c.numpy()[0])
    return np.stack(hs).astype(np.float32), np.stack(cs).astype(np.float32)


def _dreams(world, dreamt, spec, params, config, seed):
    from worldmodels.scoring.scorers import DreamScorer

    scorer = DreamScorer(world, dreamt, seed, spec, max_steps=config.max_steps)
    flat = np.repeat(params[None], config.dream_episodes, axis=0).astype(np.float32)
    return scorer.run(flat, call_seed=FIDELITY_STAGE_KEY)


def _most(result: dict) -> float:
    """The most one episode of the result's env can return."""
    return float(result.get("max_return", IMPOSSIBLE_RETURN))


def summarise(result: dict) -> dict:
    """The headline figures: real and dream means, M's predicted return along the real path,
    and how often the dream pays more than any track can."""
    paths = result["along_real_path"]
    real = np.asarray(result["real"]["returns"])
    dream = np.asarray(result["dream"]["returns"])
    predicted = np.array([p["predicted_return"] for p in paths])
    summary = {
        "real_mean": float(real.mean()), "real_std": float(real.std()),
        "real_action_mean": result["real"].get("action_mean"),
        "dream_mean": float(dream.mean()), "dream_std": float(dream.std()),
        "dream_minus_real": float(dream.mean() - real.mean()),
        "dreams_above_possible": float((dream > _most(result)).mean()),
        "dreams_to_the_limit": float((np.asarray(result["dream"]["lengths"])
                                      >= result.get("max_steps", np.inf)).mean()),
        "predicted_return_on_real_path": float(predicted.mean()),
        "predicted_minus_real_on_real_path": float((predicted - real).mean()),
        "reward_mae": float(np.mean([p["reward_mae"] for p in paths])),
        "dream_ends_early": float(np.mean([p["dream_ends_early"] for p in paths])),
    }
    paid = [p["predicted_return_paid_as_track"] for p in paths]
    if paid[0] is not None:
        summary["predicted_return_paid_as_track"] = float(np.mean(paid))
    running = [p["p_done_running"] for p in paths if p["p_done_running"] is not None]
    summary["p_done_running"] = float(np.mean(running)) if running else None
    open_loop = result["open_loop"]
    if open_loop["model"]:
        summary["open_loop_error"] = dict(zip(map(str, open_loop["horizons"]),
                                              open_loop["model"]))
    endings = [p["p_done_at_end"] for p in paths if p.get("p_done_at_end") is not None]
    summary["endings_foreseen"] = float(np.mean(endings)) if endings else None
    if result.get("endings_on_data"):
        summary["endings_on_data"] = {group: e["foreseen"]
                                      for group, e in result["endings_on_data"].items()}
    fixed = result.get("fixed_actions")
    if fixed:
        summary["fixed_actions"] = {name: {"dream": f["dream"], "real": f["real"]}
                                    for name, f in fixed.items()}
    ranking = result.get("ranking")
    if ranking:
        summary["rank_correlation"] = ranking["rank_correlation"]
        for key in ("real_of_dream_choice", "real_best", "real_mean"):
            summary[f"candidates_{key}"] = ranking[key]
    return summary


def plot_fidelity(result: dict, path: Path) -> Path:
    """Three panels: predicted vs real return per real episode, M's error k steps ahead, and
    the dream's returns beside the real ones; a fourth with the candidates' dream and real
    scores when they were ranked."""
    from worldmodels.core.figures import _pyplot, _save

    plt = _pyplot()
    ranking = result.get("ranking")
    figure, axes = plt.subplots(1, 4 if ranking else 3, figsize=(20 if ranking else 15, 4.2))
    paths = result["along_real_path"]
    real = [p["real_return"] for p in paths]
    axes[0].scatter(real, [p["predicted_return"] for p in paths], label="M's reward head")
    if paths[0]["predicted_return_paid_as_track"] is not None:
        axes[0].scatter(real, [p["predicted_return_paid_as_track"] for p in paths], marker="x",
                        label="paid as a track pays")
    most = _most(result)
    low, high = min(real + [0.0]), max(real + [most])
    axes[0].plot([low, high], [low, high], "k--", lw=1, label="predicted = real")
    axes[0].set(xlabel="real return", ylabel="return M predicts along the real path",
                title="M's reward along real episodes")
    axes[0].legend(fontsize=8)
    open_loop = result["open_loop"]
    if open_loop["model"]:
        axes[1].plot(open_loop["horizons"], open_loop["model"], "o-", label="M, open loop")
        axes[1].plot(open_loop["horizons"], open_loop["no_change"], "s--", label="no change")
        axes[1].legend(fontsize=8)
    axes[1].set(xlabel="steps ahead k", ylabel="z error / variance of z",
                title="M's prediction k steps ahead")
    bins = np.linspace(min(min(real), min(result["dream"]["returns"]), -100),
                       max(max(real), max(result["dream"]["returns"]), most), 30)
    axes[2].hist(result["dream"]["returns"], bins=bins, alpha=0.6, density=True, label="dream")
    axes[2].hist(real, bins=bins, alpha=0.6, density=True, label="real")
    axes[2].axvline(most, color="k", ls=":", label="most an episode pays")
    axes[2].set(xlabel="return", ylabel="share of episodes (density)",
                title="the same controller in the dream and the real env")
    axes[2].legend(fontsize=8)
    if ranking:
        axes[3].scatter(ranking["dream"], ranking["real"])
        choice = int(np.argmax(ranking["dream"]))
        axes[3].scatter([ranking["dream"][choice]], [ranking["real"][choice]], marker="*",
                        s=200, label="the dream's choice")
        axes[3].set(xlabel=f"dream score ({ranking['trials']} dreams)",
                    ylabel=f"real score ({len(ranking['tracks'])} tracks)",
                    title=f"{ranking['candidates']} candidates: rank correlation "
                          f"{ranking['rank_correlation']:.2f}")
        axes[3].legend(fontsize=8)
    return _save(figure, path)


def fidelity_path(layout, variant: str = "zh", params_name: str = "best") -> Path:
    """Where the fidelity of the controller trained in the dream is written (and its .png)."""
    from worldmodels.core.artifacts import variant_suffix

    return layout.runs / "fidelity" / f"dream{variant_suffix(variant)}-{params_name}.json"


def fidelity_key(config: FidelityConfig, seed: int, controller: dict) -> dict:
    """What makes two measurements the same: the options, the seed and the controller's run."""
    from worldmodels.config import to_dict
    from worldmodels.core.artifacts import _normalise

    return {"config": _normalise(to_dict(config)), "seed": seed,
            "controller_run_id": controller.get("run_id")}


def next_candidates(directory: Path, controller: dict) -> np.ndarray | None:
    """The population CMA-ES would score next, from the controller's saved state (None for a
    controller without one of its own, e.g. a round `iterate` kept)."""
    from worldmodels.model.evolution import load_state, restore

    state = load_state(directory)
    if state is None or state.run_id != controller.get("run_id") or not state.settings:
        return None
    return restore(state, directory, **state.settings).ask().astype(np.float32)


def run_fidelity(layout, controller: dict, config: FidelityConfig, seed: int,
                 params_name: str = "best", variant: str = "zh", progress: bool = True,
                 ray_address: str | None = None) -> tuple[Path, dict]:
    """Measure the fidelity of the controller trained in the dream (``controller``: its
    manifest) and write it to ``fidelity_path`` (JSON and PNG); returns (json path, result).
    Whether an earlier measurement is kept, and that the folder is writable, is the stage's
    call (`stages.fidelity`)."""
    from worldmodels.core.artifacts import WORLD_INPUTS, input_run_ids, write_json
    from worldmodels.scoring.evaluation import load_trained

    directory = layout.controller("dream", variant)
    path = fidelity_path(layout, variant, params_name)
    world, spec, flat, dreamt = load_trained(layout, controller, directory, params_name,
                                             variant, need_vae=True, dreams=True)
    result = measure_fidelity(world, dreamt, spec, flat, config, seed, progress,
                              ray_address, next_candidates(directory, controller),
                              int(controller["config"].get("trials", 1)))
    result["endings_on_data"] = endings_on_data(world, layout, config.data_episodes)
    result["summary"] = summarise(result)
    result.update(fidelity_key(config, seed, controller), controller=str(directory),
                  params=params_name, variant=variant,
                  inputs=input_run_ids(layout, WORLD_INPUTS))
    plot_fidelity(result, path.with_suffix(".png"))
    write_json(path, result)
    return path, result
