"""The dream's resolution (`worldmodels resolution`): does the dream C was trained in order
controllers as the real env does?

CMA-ES can only climb a fitness that ranks candidates as the real env would. Here the
candidates are the run's checkpoints (the CMA-ES mean every ``every`` generations, the last one
and the kept best, as `select` rebuilds them) and ``population`` fresh samples of CMA-ES's last
search distribution around its final mean (what its next generation would compare). Each drives
``episodes`` validation tracks of their own (``RESOLUTION_STAGE_KEY``: apart from collection,
training, checks, evaluation, fidelity and selection) and is dreamt ``dream_episodes`` times
under each of ``dream_seeds`` dream seeds. The figure: Spearman's rank correlation between the
dream's order and the real order, its mean and spread over the dream seeds, for the checkpoints,
the population and all candidates pooled; Kendall's tau beside it (pycma's surrogate-assisted
CMA-ES trusts a model only at tau >= 0.85). The real order is itself measured on a few tracks:
its split-half rank correlation (odd tracks against even ones) says how much of the order the
real side can resolve at all.

A judge: the candidates may instead be dreamt in an M that C was not evolved in (the M `iterate`
kept after an earlier round), to see whether the dream's order fails because C exploits its own
M. The real side is then read from the run's ``RESOLUTION`` when it holds the same candidates.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from worldmodels.config import ResolutionConfig, to_dict
from worldmodels.core.artifacts import (
    VERSION,
    WORLD_INPUTS,
    Layout,
    code_commit,
    input_run_ids,
    write_json,
)
from worldmodels.data.collect import episode_seeds
from worldmodels.errors import WorldModelsError
from worldmodels.scoring.evaluation import evaluate_real, judge_world, load_trained
from worldmodels.scoring.fidelity import spearman
from worldmodels.scoring.scorers import RESOLUTION_STAGE_KEY
from worldmodels.scoring.selection import candidates

RESOLUTION = "resolution.json"
RESOLUTION_CALL_SEED = 3 * 10**6  # + dream seed: apart from training's, select's, fidelity's
GROUPS = ("checkpoints", "population", "pooled")


def kendall(x, y) -> float:
    """Kendall's tau-b (ties counted on either side; 0 when either side is all ties)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    dx = np.sign(x[:, None] - x[None, :])
    dy = np.sign(y[:, None] - y[None, :])
    upper = np.triu_indices(len(x), 1)
    dx, dy = dx[upper], dy[upper]
    denominator = np.sqrt(np.count_nonzero(dx) * np.count_nonzero(dy))
    return float((dx * dy).sum() / denominator) if denominator else 0.0


def correlations(dream: np.ndarray, real: np.ndarray, groups: dict) -> dict:
    """Per group of candidate indices: Spearman's and Kendall's correlation between each dream
    seed's scores (rows of ``dream``) and ``real``, with their mean and std over the seeds."""
    result = {}
    for name, index in groups.items():
        if len(index) < 3:
            continue
        rho = [spearman(row[index], real[index]) for row in dream]
        tau = [kendall(row[index], real[index]) for row in dream]
        result[name] = {"candidates": len(index), "spearman": rho,
                        "spearman_mean": float(np.mean(rho)), "spearman_std": float(np.std(rho)),
                        "kendall_mean": float(np.mean(tau)), "kendall_std": float(np.std(tau))}
    return result


def as_trained(config: ResolutionConfig, controller_manifest: dict) -> ResolutionConfig:
    """``config`` with ``dream_episodes`` given: when None, the dreams one generation of the
    run's C scored a candidate on (its manifest's ``trials``), so the dream's order is the one
    CMA-ES saw."""
    if config.dream_episodes is not None:
        return config
    trials = (controller_manifest.get("config") or {}).get("trials")
    if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
        raise WorldModelsError("the controller's manifest records no number of dreams a "
                               "candidate (trials); give --dream-episodes")
    return dataclasses.replace(config, dream_episodes=trials)


def candidate_groups(rows: list[dict]) -> dict:
    """The indices of the checkpoints, of the population and of all candidates."""
    return {"checkpoints": [i for i, r in enumerate(rows) if r["kind"] != "population"],
            "population": [i for i, r in enumerate(rows) if r["kind"] == "population"],
            "pooled": list(range(len(rows)))}


def readable_shape(result: dict) -> bool:
    """Whether ``result`` holds what ``readable`` reads, in the shape `resolution` writes it:
    the split-halves by group (numbers or None) and every candidate's kind and dream seeds
    (the same count of numbers each)."""
    halves, rows = result.get("real_split_half"), result.get("candidates")
    if not isinstance(halves, dict) or not isinstance(rows, list):
        return False
    if not all(half is None or _number(half) for half in halves.values()):
        return False
    if not all(isinstance(row, dict) and isinstance(row.get("kind"), str)
               and isinstance(row.get("dream_seeds"), list)
               and all(_number(x) for x in row["dream_seeds"]) for row in rows):
        return False
    return len({len(row["dream_seeds"]) for row in rows}) <= 1


def reusable_real(result: dict, episodes: int) -> bool:
    """Whether ``result`` holds every candidate's return on each of ``episodes`` tracks (and
    its kind and generation), in the shape `resolution` writes it, for a new dream side or a
    judge to reuse instead of driving the candidates again."""
    rows = result.get("candidates")
    return isinstance(rows, list) and bool(rows) and isinstance(
        result.get("real_split_half"), dict) and all(
        isinstance(row, dict) and isinstance(row.get("kind"), str)
        and isinstance(row.get("generation"), int) and _number(row.get("real_std"))
        and isinstance(row.get("real_tracks"), list) and len(row["real_tracks"]) == episodes
        and all(_number(x) for x in row["real_tracks"]) for row in rows)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def readable(result: dict, name: str) -> float | None:
    """The highest rank correlation this measurement could read for the group ``name`` if the
    dream ordered the candidates exactly as the road does: the square root of the two sides'
    reliabilities (Spearman's correction for attenuation). The real side's is its split-half
    correlation stepped up to all its tracks (Spearman-Brown: 2h / (1 + h)); the dream side's,
    the mean rank correlation between its dream seeds. None without a split-half."""
    half = result["real_split_half"].get(name)
    if half is None:
        return None
    real = max(0.0, 2 * half / (1 + half)) if half > -1 else 0.0
    index = candidate_groups(result["candidates"])[name]
    seeds = np.array([result["candidates"][i]["dream_seeds"] for i in index], dtype=float).T
    pairs = [spearman(seeds[a], seeds[b]) for a in range(len(seeds))
             for b in range(a + 1, len(seeds))]
    dream = max(0.0, float(np.mean(pairs))) if pairs else 1.0
    return float(np.sqrt(real * dream))


def split_half(returns: np.ndarray, index) -> float | None:
    """Spearman between the candidates' mean real return on odd and on even tracks: how well
    the real side itself resolves their order (None with fewer than two tracks)."""
    if returns.shape[1] < 2 or len(index) < 3:
        return None
    return spearman(returns[index, 0::2].mean(axis=1), returns[index, 1::2].mean(axis=1))


def judge_path(judge_round: int) -> str:
    """The file name of the resolution judged by the M of ``judge_round``."""
    return f"resolution-judge-round-{judge_round}.json"


def measure(layout: Layout, controller_manifest: dict, directory: Path,
            config: ResolutionConfig, seed: int, variant: str = "zh", progress: bool = True,
            partial_path: Path | None = None, ray_address: str | None = None,
            judge: Layout | None = None, known: dict | None = None) -> dict:
    """Score every candidate on the validation tracks and in the dream; write ``RESOLUTION``
    (or, with a ``judge``, the candidates dreamt in the judge's M: ``judge_path``) and its plot
    into ``directory``; return the result. Finished real episodes are saved to
    ``partial_path`` and a re-run skips them; ``known``, an earlier result of the same
    candidates, gives their real scores instead. ``config.dream_episodes`` is given
    (``as_trained``)."""
    from worldmodels.core.figures import plot_resolution
    from worldmodels.scoring.scorers import DreamScorer

    started = time.time()
    world, spec, best, dreamt = load_trained(layout, controller_manifest, directory, "best",
                                             variant, need_vae=True, dreams=True)
    rows, params = candidates(directory, best, config.every, config.population)
    tracks = episode_seeds(seed, config.episodes, RESOLUTION_STAGE_KEY)
    if known is not None and [(r["kind"], r["generation"]) for r in known["candidates"]] != [
            (r["kind"], r["generation"]) for r in rows]:
        known = None  # other candidates than those rebuilt here: play them
    if known is not None:
        # Each track's return where the earlier result kept them; else its mean alone (the
        # split-half cannot then be measured).
        returns = np.array([row.get("real_tracks", [row["real"]]) for row in known["candidates"]],
                           dtype=float)
    else:
        flat = np.repeat(params, len(tracks), axis=0).astype(np.float32)
        returns, _ = evaluate_real(world, flat, tracks * len(rows), config, seed, progress,
                                   partial_path, spec, ray_address, desc="resolution: real")
        returns = np.asarray(returns, dtype=float).reshape(len(rows), len(tracks))
    judged = world if judge is None else judge_world(judge, world, dreamt)
    scorer = DreamScorer(judged, dreamt, seed, spec, max_steps=config.max_steps)
    dream = np.stack([scorer.fitness(params, RESOLUTION_CALL_SEED + k, config.dream_episodes)
                      for k in range(config.dream_seeds)])
    real = returns.mean(axis=1)
    for i, row in enumerate(rows):
        row.update(real=float(real[i]), real_std=float(
                       known["candidates"][i]["real_std"] if known and returns.shape[1] == 1
                       else returns[i].std()),
                   real_tracks=returns[i].tolist(),
                   dream=float(dream[:, i].mean()), dream_seeds=dream[:, i].tolist())
    groups = candidate_groups(rows)
    chosen = int(np.argmax(dream.mean(axis=0)))
    result = {"controller_run_id": controller_manifest.get("run_id"), "variant": variant,
              "inputs": input_run_ids(layout, WORLD_INPUTS), "env_id": world.env_id,
              "temperature": scorer.temperature,
              "config": to_dict(config), "seed": seed, "tracks": tracks, "candidates": rows,
              "correlations": correlations(dream, real, groups),
              "real_split_half": ({name: split_half(returns, index)
                                   for name, index in groups.items()}
                                  if returns.shape[1] > 1 or known is None
                                  else known["real_split_half"]),
              "real_of_dream_choice": float(real[chosen]), "real_best": float(real.max()),
              "version": VERSION, "code": code_commit(), "wall_seconds": time.time() - started}
    name = RESOLUTION
    if judge is not None:
        result["judge"] = {"round": judge.round, "rnn_run_id": judged.rnn_manifest["run_id"]}
        name = judge_path(judge.round)
    write_json(Path(directory) / name, result)
    plot_resolution(result, (Path(directory) / name).with_suffix(".png"))
    return result


UNREADABLE = 0.3  # below this ceiling ("at most ... readable"), the measurement reads nothing


def headline(result: dict) -> str:
    """The figure in one line: "rank correlation 0.23 ± 0.05 (pooled, 24 candidates) ..."."""
    parts = []
    for name in GROUPS:
        c = result["correlations"].get(name)
        if c is not None:
            most = readable(result, name)
            parts.append(f"{name} {c['spearman_mean']:.2f} ± {c['spearman_std']:.2f} "
                         f"(n={c['candidates']}" + ("" if most is None else
                                                    f", at most {most:.2f} readable") + ")")
    half = result["real_split_half"].get("pooled")
    most = readable(result, "pooled") if "pooled" in result["correlations"] else None
    blind = "" if most is None or most >= UNREADABLE else (
        f"; on {len(result.get('tracks', []))} tracks the road itself hardly orders these "
        "candidates (they drive alike), so this figure says little about the dream: more "
        "tracks (--episodes) or candidates that differ more")
    return ("dream vs real rank correlation (Spearman, ± over dream seeds): " + ", ".join(parts)
            + (f"; the real order's own split-half: {half:.2f}" if half is not None else "")
            + f"; the dream's choice drove {result['real_of_dream_choice']:.1f} "
            f"(best candidate {result['real_best']:.1f})" + blind)
