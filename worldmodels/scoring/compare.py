"""Dream vs real: one trained controller scored in the dream over a sweep of temperatures and in
the real env, the same number of episodes each (the paper's DoomTakeCover table, made for
CarRacing), so a reader sees whether the controller exploits the dream.

The real env is run once: the temperature only changes how M samples the next z in the dream,
and the real agent never samples from M (its h follows from the real z and actions), so the real
score of a fixed controller does not depend on the temperature.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from worldmodels.config import CompareConfig, DreamSpec, to_dict
from worldmodels.core.artifacts import (
    Layout,
    read_json,
    variant_suffix,
    write_csv,
    write_json,
    write_text,
)
from worldmodels.data.collect import episode_seeds

REAL_FOOTNOTE = (
    "The real env is run once, on the same tracks as `worldmodels evaluate` (its first "
    "{episodes}), and its score is shown in every row: the temperature only changes how M "
    "samples the next z in the dream, and the real agent never samples from M (its h follows "
    "from the real z and actions), so the real score does not depend on τ."
)
DREAM_FOOTNOTE = (
    "Every temperature uses the same dream starts (first frames of collected episodes) and the "
    "same random seeds, so rows differ by the temperature only."
)


def output_stem(trained_in: str, variant: str, params_name: str) -> str:
    """The name of a comparison's files, as evaluate names its JSONs: dream-best, dream-z-best."""
    return f"{trained_in}{variant_suffix(variant)}-{params_name}"


def comparison_key(controller_manifest: dict, params_name: str, variant: str,
                   config: CompareConfig, seed: int) -> dict:
    """What a finished comparison must match to be reused (workers do not change results)."""
    settings = {k: v for k, v in to_dict(config).items() if k != "workers"}
    key = {"controller": controller_manifest["run_id"], "params": params_name,
           "variant": variant, "config": settings, "seed": seed}
    return json.loads(json.dumps(key))  # as read back from JSON (tuples become lists)


def compare(layout: Layout, controller_manifest: dict, directory: Path, params_name: str,
            variant: str, config: CompareConfig, seed: int, partial_path: Path,
            progress: bool = True, log=print) -> dict:
    """Scores of a trained controller in the dream at each of ``config.temperatures`` and in the
    real env, ``config.episodes`` each. Finished parts are kept in ``partial_path`` (each
    temperature, each real episode), so a re-run continues where a killed one stopped."""
    from worldmodels.scoring.evaluation import load_trained
    from worldmodels.scoring.scorers import EVALUATE_STAGE_KEY, DreamScorer

    started = time.time()
    world, spec, flat, dreamt = load_trained(layout, controller_manifest, directory,
                                             params_name, variant, need_vae=True, dreams=True)
    params = np.repeat(flat[None], config.episodes, axis=0).astype(np.float32)
    seeds = episode_seeds(seed, config.episodes, EVALUATE_STAGE_KEY)
    key = dict(comparison_key(controller_manifest, params_name, variant, config, seed),
               flat=flat.tolist())
    partial = {"key": key, "dream": {}, "real": {}}
    if Path(partial_path).exists() and read_json(partial_path).get("key") == key:
        partial = read_json(partial_path)
        log(f"compare: continuing from {partial_path}")

    scorer = DreamScorer(world, dreamt, seed, spec, max_steps=config.max_steps)
    for temperature in config.temperatures:
        label = f"{temperature:g}"
        if label not in partial["dream"]:
            scores, lengths = scorer.run(params, EVALUATE_STAGE_KEY, temperature)
            partial["dream"][label] = {"scores": scores.tolist(), "lengths": lengths.tolist()}
            write_json(partial_path, partial)
        dream = partial["dream"][label]
        log(f"dream τ={label}: {np.mean(dream['scores']):.1f} ± {np.std(dream['scores']):.1f}")
    _dropout_sweep(world, dreamt, spec, params, config, seed, partial, partial_path, log)
    real_scores = _run_real(world, spec, params, seeds, config, seed, partial, partial_path,
                            progress, dreamt.action_noise)
    return _result(partial, real_scores, seeds, controller_manifest, directory, config, world,
                   time.time() - started)


def dropout_label(dropout: float) -> str:
    return f"dropout={dropout:g}"


def _dropout_sweep(world, dreamt: DreamSpec, spec, params, config, seed, partial,
                   partial_path, log) -> None:
    """The dream at each of ``config.dropouts`` (at the trained temperature), into
    ``partial["dream"]``; the starts and noise are those of the temperature sweep."""
    import dataclasses

    from worldmodels.scoring.scorers import EVALUATE_STAGE_KEY, DreamScorer

    for dropout in config.dropouts:
        label = dropout_label(dropout)
        if label not in partial["dream"]:
            scorer = DreamScorer(world, dataclasses.replace(dreamt, dropout=dropout), seed,
                                 spec, max_steps=config.max_steps)
            scores, lengths = scorer.run(params, EVALUATE_STAGE_KEY)
            partial["dream"][label] = {"scores": scores.tolist(), "lengths": lengths.tolist()}
            write_json(partial_path, partial)
        dream = partial["dream"][label]
        log(f"dream {label}: {np.mean(dream['scores']):.1f} ± {np.std(dream['scores']):.1f}")


def _run_real(world, spec, params, seeds, config, seed, partial, partial_path, progress,
              noise: float):
    from worldmodels.scoring.evaluation import run_real

    done = {int(i): score for i, score in partial["real"].items()}
    if len(done) == len(seeds):
        return np.array([done[i] for i in range(len(seeds))])

    def save(index, score):
        partial["real"][str(index)] = score
        write_json(partial_path, partial)

    # A controller evolved with action noise in the dream drives with it in the real env too.
    return run_real(world, spec, params, seeds, config, seed, progress, "compare (real)", done,
                    save, noise=noise)


def _result(partial, real_scores, seeds, controller_manifest, directory, config, world, wall):
    real_scores = np.asarray(real_scores, dtype=float)
    real = {"mean": float(real_scores.mean()), "std": float(real_scores.std()),
            "episodes": len(real_scores), "scores": real_scores.tolist(), "seeds": seeds}
    rows = [dict(temperature=t, **_row(partial["dream"][f"{t:g}"], real))
            for t in config.temperatures]
    dropout_rows = [dict(dropout=d, **_row(partial["dream"][dropout_label(d)], real))
                    for d in config.dropouts]
    key = {k: v for k, v in partial["key"].items() if k != "flat"}
    return {
        "key": key,
        "env": world.env_id,
        "controller": str(directory),
        "trained_in": controller_manifest["config"]["where"],
        "train_temperature": controller_manifest["config"].get("temperature"),
        "params": key["params"],
        "variant": key["variant"],
        "episodes": config.episodes,
        "max_steps": config.max_steps,
        "rows": rows,
        **({"dropout_rows": dropout_rows,
            "train_dropout": controller_manifest["config"].get("dropout", 0.0)}
           if dropout_rows else {}),
        "real": real,
        "dream": partial["dream"],
        "wall_seconds": wall,
    }


def _row(dream: dict, real: dict) -> dict:
    scores = np.asarray(dream["scores"], dtype=float)
    return {"dream_mean": float(scores.mean()), "dream_std": float(scores.std()),
            "dream_mean_length": float(np.mean(dream["lengths"])),
            "dream_median_length": float(np.median(dream["lengths"])),
            "real_mean": real["mean"], "real_std": real["std"], "episodes": len(scores)}


def write_comparison(result: dict, directory: Path, stem: str) -> list[Path]:
    """compare/STEM.json, .csv, .md and .png; returns their paths."""
    from worldmodels.core.figures import plot_compare

    directory = Path(directory)
    paths = [directory / f"{stem}.{ext}" for ext in ("json", "csv", "md", "png")]
    write_csv(paths[1], result["rows"])
    write_text(paths[2], markdown(result))
    trained = result["train_temperature"] if result["trained_in"] == "dream" else None
    plot_compare(result["rows"], result["real"], trained, paths[3],
                 f"{Path(result['controller']).name} ({result['params']}): dream vs real, "
                 f"{result['episodes']} episodes each")
    write_json(paths[0], result)  # last: its presence marks the comparison complete
    return paths


def markdown_table(result: dict) -> str:
    """The dream-vs-real table, with its footnotes (labelled by controller, so that several
    tables can share a page)."""
    note = "real-" + output_stem(result["trained_in"], result["variant"], result["params"])
    trained = result["train_temperature"] if result["trained_in"] == "dream" else None
    lines = ["| dream temperature τ | dream mean ± std | dream length: median, mean (steps) | "
             f"real mean ± std [^{note}] | episodes (each) |",
             "|---|---|---|---|---|"]
    for row in result["rows"]:
        label = f"{row['temperature']:g}"
        if trained is not None and np.isclose(row["temperature"], trained):
            label += " (trained at)"
        lines.append(
            f"| {label} | {row['dream_mean']:.1f} ± {row['dream_std']:.1f} | "
            f"{row['dream_median_length']:g}, {row['dream_mean_length']:.0f} | "
            f"{row['real_mean']:.1f} ± {row['real_std']:.1f} | "
            f"{row['episodes']} |"
        )
    lines += _dropout_table(result)
    lines += ["", f"[^{note}]: " + REAL_FOOTNOTE.format(episodes=result["episodes"]), "",
              DREAM_FOOTNOTE]
    return "\n".join(lines) + "\n"


def _dropout_table(result: dict) -> list[str]:
    """The dream-dropout sweep's rows (at the trained temperature), if one was run."""
    if not result.get("dropout_rows"):
        return []
    lines = ["", f"| dream dropout (τ = {result['train_temperature']:g}) | dream mean ± std | "
             "dream length: median, mean (steps) | real mean ± std | episodes (each) |",
             "|---|---|---|---|---|"]
    for row in result["dropout_rows"]:
        label = f"{row['dropout']:g}"
        if np.isclose(row["dropout"], result["train_dropout"]):
            label += " (trained at)"
        lines.append(f"| {label} | {row['dream_mean']:.1f} ± {row['dream_std']:.1f} | "
                     f"{row['dream_median_length']:g}, {row['dream_mean_length']:.0f} | "
                     f"{row['real_mean']:.1f} ± {row['real_std']:.1f} | {row['episodes']} |")
    return lines


def markdown(result: dict) -> str:
    where = result["trained_in"]
    trained = (f"trained in the dream at τ = {result['train_temperature']:g}"
               if where == "dream" else "trained in the real env")
    return (
        f"# Dream vs real: {Path(result['controller']).name} ({result['params']})\n\n"
        f"Controller variant {result['variant']}, {trained}; {result['env']}, at most "
        f"{result['max_steps']} steps per episode.\n\n" + markdown_table(result)
    )
