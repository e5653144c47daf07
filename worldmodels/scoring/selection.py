"""Real selection (`worldmodels select`): which of the controllers C passed through while it
evolved in the dream drives best on real validation tracks.

The candidates are the CMA-ES mean every ``every`` generations (and at the last), rebuilt by
replaying C's saved state (nothing extra is stored while C trains, so a controller trained
before this existed can be selected from too), and the best candidate the run kept. Each drives
the same validation tracks (``SELECT_STAGE_KEY``: apart from collection, training, the real
checks, evaluation and fidelity) with the action noise asked for. The highest mean becomes
``selected.npy`` beside ``best.npy``; `evaluate --params selected` scores it on the test tracks
and labels the result "dream-trained, real-selected": real episodes chose it, so it is never
the pure dream figure."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from worldmodels.config import SelectConfig, to_dict
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
from worldmodels.model.evolution import STATE, Evolution, load_state, replay, save_array
from worldmodels.scoring.evaluation import SELECTION, evaluate_real, load_trained
from worldmodels.scoring.scorers import SELECT_STAGE_KEY

SELECT_CALL_SEED = 10**6 + 1  # the candidates' dreams: apart from training's and fidelity's


def candidates(directory: Path, best: np.ndarray, every: int,
               population: int = 0) -> tuple[list[dict], np.ndarray]:
    """The candidates of the controller in ``directory``: one row (generation, kind) and one
    parameter vector each. ``best``: the kept best candidate (best.npy). With ``population``,
    also that many fresh samples of CMA-ES's last search distribution around its final mean
    (kind "population": the controllers its next generation would have tried)."""
    directory = Path(directory)
    state = load_state(directory)
    if state is None or not state.fitness:
        raise WorldModelsError(f"{directory} holds no CMA-ES state to select from: re-run "
                               "`worldmodels train-controller`")
    settings = state.settings
    evolution = Evolution(int(settings["dimensions"]), int(settings["population"]),
                          float(settings["sigma"]), int(settings["seed"]))
    last, rows, params = len(state.fitness), [], []
    for generation, _, _ in replay(state, evolution, directory / STATE):
        if generation % every == 0 or generation == last:
            rows.append({"generation": generation, "kind": "mean"})
            params.append(np.array(evolution.mean, dtype=np.float64))
    kept = [row["best_so_far"] for row in state.history]
    rows.append({"generation": kept.index(max(kept)) + 1, "kind": "best"})
    params.append(np.asarray(best, dtype=np.float64))
    if population:
        rows += [{"generation": last + 1, "kind": "population"} for _ in range(population)]
        params += list(np.asarray(evolution.es.ask(population), dtype=np.float64))
    return rows, np.stack(params)


def select(layout: Layout, controller_manifest: dict, directory: Path, config: SelectConfig,
           seed: int, variant: str = "zh", progress: bool = True,
           partial_path: Path | None = None, ray_address: str | None = None) -> dict:
    """Score every candidate on ``config.episodes`` validation tracks; write ``selected.npy``
    and ``selection.json`` (and its plot) into ``directory``; return the selection. Finished
    episodes are saved to ``partial_path`` and a re-run skips them."""
    from worldmodels.core.figures import plot_selection, read_rows

    started = time.time()
    world, spec, best, dreamt = load_trained(layout, controller_manifest, directory, "best",
                                             variant, need_vae=True,
                                             dreams=config.dream_episodes > 0)
    rows, params = candidates(directory, best, config.every)
    tracks = episode_seeds(seed, config.episodes, SELECT_STAGE_KEY)
    flat = np.repeat(params, len(tracks), axis=0).astype(np.float32)
    returns, _ = evaluate_real(world, flat, tracks * len(rows), config, seed, progress,
                               partial_path, spec, ray_address, desc="select")
    returns = np.asarray(returns, dtype=float).reshape(len(rows), len(tracks))
    for row, scores in zip(rows, returns):
        row.update(mean=float(scores.mean()), std=float(scores.std()), returns=scores.tolist())
    real = returns.mean(axis=1)
    chosen = int(np.argmax(real))
    save_array(Path(directory) / "selected.npy", params[chosen])
    result = {"controller_run_id": controller_manifest.get("run_id"), "variant": variant,
              "inputs": input_run_ids(layout, WORLD_INPUTS),
              "config": to_dict(config), "seed": seed, "tracks": tracks, "candidates": rows,
              "chosen": chosen, "selected": {k: rows[chosen][k] for k in
                                             ("generation", "kind", "mean", "std")},
              **_dream_order(world, dreamt, spec, params, real, rows, config, seed),
              "version": VERSION, "code": code_commit(), "wall_seconds": time.time() - started}
    write_json(Path(directory) / SELECTION, result)
    history = Path(directory) / "history.csv"
    plot_selection(rows, chosen, read_rows(history) if history.exists() else [],
                   Path(directory) / "selection.png",
                   f"C's candidates on {len(tracks)} real validation tracks"
                   + (f", action noise {config.noise:g}" if config.noise else ""))
    return result


def _dream_order(world, dreamt, spec, params, real, rows, config, seed) -> dict:
    """Each candidate scored in the dream C was trained in (``config.dream_episodes`` dreams,
    at its temperature; into ``rows``), and whether the dream orders the candidates as the
    validation tracks do: Spearman's rank correlation, and the real score of the dream's
    choice (what choosing by the dream alone would have given)."""
    if not config.dream_episodes:
        return {}
    from worldmodels.scoring.fidelity import spearman
    from worldmodels.scoring.scorers import DreamScorer

    dream = DreamScorer(world, dreamt, seed, spec, max_steps=config.max_steps).fitness(
        params, SELECT_CALL_SEED, config.dream_episodes)
    for row, score in zip(rows, dream):
        row["dream"] = float(score)
    return {"rank_correlation": spearman(dream, real),
            "real_of_dream_choice": float(real[int(np.argmax(dream))])}


def describe(selection: dict) -> str:
    """The chosen candidate in words: "generation 70's CMA-ES mean" or "the kept best
    (generation 64)"."""
    chosen = selection["selected"]
    return (f"generation {chosen['generation']}'s CMA-ES mean" if chosen["kind"] == "mean"
            else f"the kept best (generation {chosen['generation']})")
