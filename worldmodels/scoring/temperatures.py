"""The paper's temperature table: one controller trained only in the dream at each temperature
tau, each scored in the dream it was trained in and in the real env, beside the paper's own
figures and the random policy's real score. `worldmodels temperatures` (``stages.temperatures``)
trains and scores; this module holds the paper's figures, the random row and the writing."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from worldmodels.core.artifacts import write_json, write_text

# Ha & Schmidhuber (2018), DoomTakeCover, C trained inside the dream: tau -> (dream mean, std,
# real mean, std) over 100 episodes; and the random policy's real score.
PAPER = {
    "VizdoomTakeCover-v1": {
        "rows": {0.10: (2086, 140, 193, 58), 0.50: (2060, 277, 196, 50),
                 1.00: (1145, 690, 868, 511), 1.15: (918, 546, 1092, 556),
                 1.30: (732, 269, 753, 139)},
        "random": (210, 108),
    },
}
RANDOM_STAGE_KEY = 7  # the real episodes of the random policy's row


def random_row(env_id: str, max_steps: int, episodes: int, seed: int) -> dict:
    """The uniformly random policy's real return over ``episodes`` episodes (mean, std)."""
    from worldmodels.data.collect import episode_seeds, run_episode

    returns = [float(run_episode(env_id, max_steps, "random", s)["rewards"].sum())
               for s in episode_seeds(seed, episodes, RANDOM_STAGE_KEY)]
    return {"mean": float(np.mean(returns)), "std": float(np.std(returns)),
            "episodes": episodes}


def table(env_id: str, rows: list[dict], random: dict | None) -> dict:
    """The table's JSON: our rows (temperature, dream, real) with the paper's beside them."""
    paper = PAPER.get(env_id, {"rows": {}, "random": None})
    for row in rows:
        figures = paper["rows"].get(round(row["temperature"], 2))
        row["paper"] = None if figures is None else dict(
            zip(("dream_mean", "dream_std", "real_mean", "real_std"), figures))
    return {"env": env_id, "rows": rows, "random": random,
            "paper_random": None if paper["random"] is None else
            dict(zip(("mean", "std"), paper["random"]))}


def _pm(mean, std) -> str:
    return f"{mean:,.0f} ± {std:,.0f}"


def markdown(result: dict) -> str:
    """The table as markdown: ours and the paper's, one temperature a row."""
    lines = ["| temperature | dream (ours) | real (ours) | dream (paper) | real (paper) |",
             "|---|---|---|---|---|"]
    for row in result["rows"]:
        paper = row["paper"]
        ours = [_pm(row["dream_mean"], row["dream_std"]), _pm(row["real_mean"], row["real_std"])]
        theirs = ["—", "—"] if paper is None else [_pm(paper["dream_mean"], paper["dream_std"]),
                                                   _pm(paper["real_mean"], paper["real_std"])]
        lines.append(f"| {row['temperature']:g} | " + " | ".join(ours + theirs) + " |")
    if result["random"]:
        paper = result["paper_random"]
        ours = _pm(result["random"]["mean"], result["random"]["std"])
        theirs = "—" if paper is None else _pm(paper["mean"], paper["std"])
        lines.append(f"| random policy | — | {ours} | — | {theirs} |")
    episodes = result["rows"][0]["episodes"] if result["rows"] else 0
    lines.append("")
    lines.append(f"Ours: mean ± std over {episodes} dreams and {episodes} real episodes each, "
                 "C trained only in the dream at that temperature. Paper: Ha & Schmidhuber "
                 "(2018), 100 episodes each.")
    return "\n".join(lines) + "\n"


def write(result: dict, directory: Path) -> list[Path]:
    """table.json, table.md and table.png in ``directory``."""
    from worldmodels.core.figures import plot_temperatures

    directory = Path(directory)
    paths = [directory / "table.json", directory / "table.md", directory / "table.png"]
    write_text(paths[1], markdown(result))
    plot_temperatures(result, paths[2])
    write_json(paths[0], result)  # last: its presence marks the table complete
    return paths
