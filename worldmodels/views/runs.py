"""Runs compared across experiments and seeds: one row per experiment under a results folder
(its preset, seed, env, stages, dream and real scores), and recipes pooled over their seeds
(mean ± standard error across seeds, each seed's score), with a figure of real score per recipe
and of C's learning curves across seeds. Read from files only; nothing is re-run."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
from pathlib import Path

import numpy as np

from worldmodels.core.artifacts import STAGE_INPUTS, WORLD_INPUTS, remade, write_csv, write_json

STAGES = (("collect", ("data", "rollouts")), ("train-vae", ("results", "vae")),
          ("encode", ("data", "series")), ("train-rnn", ("results", "rnn")),
          ("train-controller", ("results", "controller-dream")))
NOT_RECIPE = {"workers"}  # config fields that do not change a result
MADE_BY = {"rollouts": "collect", "series": "encode", "vae": "train-vae", "rnn": "train-rnn"}
"""The stage that makes each input a manifest records."""


def _load(path: Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def experiments(results_dir: Path, names: list[str] | None = None) -> list[str]:
    """The experiments under ``results_dir`` (folders with a trained stage or an evaluation),
    those matching one of ``names`` (shell patterns, e.g. ``s1*``) when given."""
    found = sorted(path.name for path in Path(results_dir).iterdir() if path.is_dir() and any(
        (path / part).exists() for part in ("vae", "evaluate", "pipeline.json")))
    if names:
        found = [name for name in found if any(fnmatch.fnmatch(name, n) for n in names)]
    return found


def describe(data_dir: Path, results_dir: Path, name: str,
             evaluation: str = "real-dream-best") -> dict:
    """One experiment's row: preset, seed, env, each stage's state, its real score (mean,
    std, standard error, episodes), its dream score, the dream's rank correlation with the
    real order (`resolution`'s pooled Spearman, else fidelity's ranking; None where not
    measured), and its recipe: a hash of every stage's config, seeds aside."""
    roots = {"data": Path(data_dir) / name, "results": Path(results_dir) / name}
    manifests = {stage: _load(roots[root] / folder / "manifest.json")
                 for stage, (root, folder) in STAGES}
    real = _load(roots["results"] / "evaluate" / f"{evaluation}.json")
    dream_name = "dream-" + evaluation.split("-", 1)[-1].split("-noise")[0]
    dream = _load(roots["results"] / "evaluate" / f"{dream_name}.json")
    fidelity = _load(roots["results"] / "fidelity" / "dream-best.json") or {}
    resolution = _load(roots["results"] / "controller-dream" / "resolution.json") or {}
    pooled = (resolution.get("correlations") or {}).get("pooled") or {}
    pipeline = _load(roots["results"] / "pipeline.json") or {}
    states = _states(manifests, real)
    recipe = {stage: {k: v for k, v in (m or {}).get("config", {}).items() if k not in NOT_RECIPE}
              for stage, m in manifests.items()}
    if real:
        recipe["evaluate"] = {k: v for k, v in real.get("config", {}).items()
                              if k not in NOT_RECIPE}
        recipe["evaluate"].update(params=real.get("params"), variant=real.get("variant"))
    seeds = {(m or {}).get("seed") for m in manifests.values()} - {None}
    if real and not evaluation.endswith(f"-seed{real.get('seed')}"):
        seed = real["seed"]
    else:  # no evaluation, or one on other episodes than C's own (-seedN): the stages' seed
        seed = seeds.pop() if len(seeds) == 1 else None
    scores = real["scores"] if real else []
    return {
        "name": name,
        "preset": pipeline.get("preset"),
        "seed": seed,
        "env": (real or {}).get("env") or ((manifests["collect"] or {}).get("summary") or {}
                                           ).get("env_id"),
        "stages": states,
        "real_mean": real["mean"] if real else None,
        "real_std": real["std"] if real else None,
        "real_se": real["std"] / math.sqrt(len(scores)) if len(scores) > 1 else None,
        "episodes": len(scores),
        "tracks": (real or {}).get("seeds", []),
        "scores": scores,
        "dream_mean": dream["mean"] if dream else None,
        "rank_correlation": pooled.get("spearman_mean",
                                       (fidelity.get("ranking") or {}).get("rank_correlation")),
        "rank_readable": _readable(resolution),
        "recipe": hashlib.sha256(json.dumps(recipe, sort_keys=True, default=str).encode()
                                 ).hexdigest()[:8],
    }


def _readable(resolution: dict) -> float | None:
    """The most `resolution`'s pooled figure could read (None where it cannot be told: not
    measured, or a file not in the shape `resolution` writes)."""
    from worldmodels.scoring.resolution import readable, readable_shape

    return readable(resolution, "pooled") if readable_shape(resolution) else None


def _states(manifests: dict, real: dict | None) -> dict:
    """Each stage's state: its manifest's status ("missing" without one), or "stale" for a
    complete one made of inputs re-made since (the evaluation: with another V or M)."""
    now = {name: (manifests[stage] or {}).get("run_id") for name, stage in MADE_BY.items()}
    states = {}
    for stage, manifest in manifests.items():
        states[stage] = (manifest or {}).get("status", "missing")
        if states[stage] == "complete" and remade(
                manifest.get("inputs"), {name: now[name] for name in STAGE_INPUTS.get(stage, ())}):
            states[stage] = "stale"
    controller = manifests["train-controller"] or {}
    states["evaluate"] = "complete" if real else "missing"
    if real and remade(real.get("inputs", controller.get("inputs")),
                       {name: now[name] for name in WORLD_INPUTS}):
        states["evaluate"] = "stale"
    return states


def pool(rows: list[dict]) -> list[dict]:
    """Rows of the same recipe pooled over their seeds: the mean of the seeds' real means,
    their standard deviation and standard error across seeds, each seed's score. Rows
    without a real score are left out."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        if row["real_mean"] is not None:
            groups.setdefault(row["recipe"], []).append(row)
    pooled = []
    for recipe, members in groups.items():
        means = np.array([row["real_mean"] for row in members])
        spread = float(means.std(ddof=1)) if len(means) > 1 else None
        pooled.append({
            "recipe": recipe, "names": [row["name"] for row in members],
            "seeds": [row["seed"] for row in members], "runs": len(members),
            "real_mean": float(means.mean()), "real_std_across_seeds": spread,
            "real_se_across_seeds": spread / math.sqrt(len(means)) if spread is not None
            else None,
            "per_seed": [row["real_mean"] for row in members],
            "dream_mean": _mean([row["dream_mean"] for row in members]),
        })
    return pooled


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def number(value, digits: int = 1) -> str:
    """A figure for a table: one decimal (or ``digits``) with thousands separators; — when
    missing."""
    return "—" if value is None else f"{value:,.{digits}f}"


def markdown(rows: list[dict], pooled: list[dict] | None) -> str:
    """The table of experiments, and of recipes pooled over seeds when ``pooled`` is given."""
    lines = ["| experiment | preset | seed | env | stages | dream | real ± s.e. (episodes) | "
             "rank corr. | recipe |", "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        states = row["stages"]
        done = [s for s, state in states.items() if state == "complete"]
        stage_text = ("all complete" if len(done) == len(states) else
                      ", ".join(f"{s}: {state}" for s, state in states.items()
                                if state != "complete"))
        lines.append(
            f"| {row['name']} | {row['preset'] or '—'} | {row['seed']} | {row['env'] or '—'} | "
            f"{stage_text} | {number(row['dream_mean'])} | {number(row['real_mean'])} ± "
            f"{number(row['real_se'])} ({row['episodes']}) | "
            f"{number(row['rank_correlation'], 2)}"
            + (f" (≤ {row['rank_readable']:.2f})" if row.get("rank_readable") is not None else "")
            + f" | {row['recipe']} |")
    if pooled:
        lines += ["", "| recipe | experiments | seeds | real: mean over seeds ± s.e. | std "
                  "across seeds | each seed | dream |", "|---|---|---|---|---|---|---|"]
        for group in pooled:
            lines.append(
                f"| {group['recipe']} | {', '.join(group['names'])} | "
                f"{', '.join(str(s) for s in group['seeds'])} | {number(group['real_mean'])} ± "
                f"{number(group['real_se_across_seeds'])} | "
                f"{number(group['real_std_across_seeds'])} | "
                f"{', '.join(number(v) for v in group['per_seed'])} | "
                f"{number(group['dream_mean'])} |")
    return "\n".join(lines) + "\n"


def learning_curves(results_dir: Path, names: list[str]) -> dict[int, list[float]]:
    """Generation -> the dream's best-so-far fitness of each named experiment's C."""
    from worldmodels.core.figures import read_rows

    curves: dict[int, list[float]] = {}
    for name in names:
        path = Path(results_dir) / name / "controller-dream" / "history.csv"
        if path.exists():
            for row in read_rows(path):
                curves.setdefault(int(row["generation"]), []).append(row["best_so_far"])
    return curves


def plot(pooled: list[dict], results_dir: Path, path: Path) -> Path:
    """Real score per recipe (mean over seeds, error bars: standard error across seeds; each
    seed a dot) beside C's learning curves (mean ± std across seeds of the best so far)."""
    from matplotlib.ticker import MaxNLocator

    from worldmodels.core.figures import _pyplot, _save

    plt = _pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for index, group in enumerate(pooled):
        left.errorbar([index], [group["real_mean"]], yerr=[group["real_se_across_seeds"] or 0],
                      marker="o", capsize=5, color=f"C{index}")
        left.scatter([index] * group["runs"], group["per_seed"], color=f"C{index}", marker="x")
        curves = learning_curves(results_dir, group["names"])
        if curves:
            generations = sorted(curves)
            mean = np.array([np.mean(curves[g]) for g in generations])
            std = np.array([np.std(curves[g]) for g in generations])
            right.plot(generations, mean, color=f"C{index}", label=group["recipe"])
            right.fill_between(generations, mean - std, mean + std, color=f"C{index}",
                               alpha=0.2)
    left.set_xticks(range(len(pooled)), [g["recipe"] for g in pooled], rotation=20)
    left.set(xlabel="recipe", ylabel="real return (mean over seeds ± s.e.; x: each seed)",
             title="real score per recipe")
    right.set(xlabel="generation", ylabel="dream fitness, best so far (mean ± std)",
              title="C's learning curves across seeds")
    right.xaxis.set_major_locator(MaxNLocator(integer=True))
    if pooled:
        right.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    for axis in (left, right):
        axis.grid(alpha=0.3)
    figure.tight_layout()
    return _save(figure, path)


def write(rows: list[dict], pooled: list[dict] | None, results_dir: Path,
          out: str) -> list[Path]:
    """RESULTS/OUT/runs.{md,json,csv} and, with pooled recipes, runs.png."""
    directory = Path(results_dir) / out
    directory.mkdir(parents=True, exist_ok=True)
    written = [directory / "runs.md", directory / "runs.json", directory / "runs.csv"]
    tmp = directory / ".runs.md.tmp"
    tmp.write_text(markdown(rows, pooled))
    tmp.replace(written[0])
    write_json(written[1], {"experiments": rows, "recipes": pooled})
    write_csv(written[2], [flat(row) for row in rows])
    if pooled:
        written.append(plot(pooled, results_dir, directory / "runs.png"))
    return written


def flat(row: dict) -> dict:
    """A row for CSV: stages as one column each, per-episode lists left out."""
    out = {k: v for k, v in row.items() if k not in ("stages", "scores", "tracks")}
    out.update({f"stage_{stage}": state for stage, state in row["stages"].items()})
    return out
