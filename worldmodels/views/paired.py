"""Two evaluations compared on the episodes they share: the difference of their real scores
paired episode by episode (the same track or game seed, the same action noise), with its
standard error and how many episodes the candidate did better on. A 100-episode mean of one
run is noisy (CarRacing's standard error ~15-25, TakeCover's ~40); the paired difference
removes what the tracks themselves contribute, which is how results/EXPERIMENTS.md judges a
change. Read from files only; nothing is re-run."""

from __future__ import annotations

import fnmatch
import math
from pathlib import Path

import numpy as np

from worldmodels.core.artifacts import read_json
from worldmodels.errors import WorldModelsError
from worldmodels.views.runs import number

SETTINGS = ("env", "noise")
"""What must agree for two episodes of one seed to be the same test."""


def evaluations(path: Path, only: str = "*") -> dict[str, Path]:
    """The real evaluations at ``path``: the file itself, or the JSON files of an `evaluate/`
    folder (or of an experiment folder's `evaluate/`) whose names match ``only``."""
    path = Path(path)
    if path.is_file():
        return {path.name: path}
    folder = path / "evaluate" if (path / "evaluate").is_dir() else path
    if not folder.is_dir():
        raise WorldModelsError(f"{path} is neither an evaluation file nor a folder of them")
    found = {file.name: file for file in sorted(folder.glob("*.json"))
             if not file.name.endswith(".partial.json") and fnmatch.fnmatch(file.name, only)
             and file.is_file()}
    return found


def _episodes(path: Path) -> tuple[dict, dict[int, float]]:
    result = read_json(path, "re-run the `worldmodels evaluate` that wrote it with --force")
    seeds, scores = result.get("seeds"), result.get("scores")
    if result.get("where") != "real":
        raise WorldModelsError(f"{path} is not a real evaluation (dreams share no tracks): "
                               "pair the real ones")
    if (not isinstance(seeds, list) or not isinstance(scores, list) or len(seeds) != len(scores)
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
            or not all(isinstance(x, (int, float)) and math.isfinite(x) for x in scores)):
        raise WorldModelsError(f"{path} lacks one seed per score: re-run the `worldmodels "
                               "evaluate` that wrote it with --force")
    return result, dict(zip(seeds, (float(x) for x in scores)))


def _row(label: str, base: np.ndarray, new: np.ndarray) -> dict:
    difference = new - base
    n = len(difference)
    se = float(difference.std(ddof=1) / math.sqrt(n)) if n > 1 else None
    return {"evaluation": label, "episodes": n, "baseline_mean": float(base.mean()),
            "candidate_mean": float(new.mean()), "difference": float(difference.mean()),
            "paired_se": se, "better": int((difference > 0).sum()),
            "worse": int((difference < 0).sum())}


def paired(baseline: Path, candidate: Path, only: str = "*") -> dict:
    """The paired difference candidate - baseline on every episode both scored, per pair of
    evaluations (files of the same name when both are folders, else the two files) and pooled
    over them. Episodes pair by their seed; evaluations of other settings (env, noise) or with
    no seed in common are a one-line error."""
    mine, theirs = evaluations(baseline, only), evaluations(candidate, only)
    if Path(baseline).is_file() or Path(candidate).is_file():
        if len(mine) != 1 or len(theirs) != 1:
            raise WorldModelsError("give two evaluation files, or two folders of them")
        pairs = [(next(iter(mine.values())), next(iter(theirs.values())))]
    else:
        pairs = [(mine[name], theirs[name]) for name in sorted(set(mine) & set(theirs))]
    if not pairs:
        raise WorldModelsError(f"no evaluation of the same name (matching {only}) in both "
                               f"{baseline} and {candidate}")
    rows, base_all, new_all = [], [], []
    for old_path, new_path in pairs:
        old, old_scores = _episodes(old_path)
        new, new_scores = _episodes(new_path)
        for key in SETTINGS:
            if old.get(key) != new.get(key):
                raise WorldModelsError(f"{old_path} and {new_path} differ in {key} "
                                       f"({old.get(key)} against {new.get(key)}): not the same "
                                       "episodes")
        shared = [seed for seed in old_scores if seed in new_scores]
        if not shared:
            raise WorldModelsError(f"{old_path} and {new_path} share no episode seed: pair "
                                   "evaluations of the same --seed")
        base = np.array([old_scores[s] for s in shared])
        new_row = np.array([new_scores[s] for s in shared])
        label = old_path.name if old_path.name == new_path.name else \
            f"{old_path.name} / {new_path.name}"
        rows.append(_row(label, base, new_row))
        base_all.append(base), new_all.append(new_row)
    pooled = _row("pooled", np.concatenate(base_all), np.concatenate(new_all)) \
        if len(rows) > 1 else None
    return {"baseline": str(baseline), "candidate": str(candidate), "pairs": rows,
            "pooled": pooled}


def markdown(result: dict) -> str:
    """The table `worldmodels paired` prints."""
    lines = [f"candidate {result['candidate']} against baseline {result['baseline']}", "",
             "| evaluation | episodes | baseline | candidate | difference (paired s.e.) | "
             "better / worse |", "|---|---|---|---|---|---|"]
    for row in result["pairs"] + ([result["pooled"]] if result["pooled"] else []):
        lines.append(f"| {row['evaluation']} | {row['episodes']} | "
                     f"{number(row['baseline_mean'])} | {number(row['candidate_mean'])} | "
                     f"{row['difference']:+,.1f} ({number(row['paired_se'])}) | "
                     f"{row['better']} / {row['worse']} |")
    return "\n".join(lines) + "\n"
