"""Plots and pictures: training curves, the dream-vs-real plot, frame grids and GIFs. Drawing
only (matplotlib with the Agg backend, imageio); the models' work lives in
``worldmodels.views.show``."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: Path) -> Path:
    """Save atomically (temporary name, then rename) and close the figure."""
    from worldmodels.core.artifacts import atomic_path

    try:
        with atomic_path(path) as tmp:
            figure.savefig(tmp, dpi=100)
    finally:
        _pyplot().close(figure)
    return Path(path)


COUNTED = ("generation", "epoch", "round")  # axes whose ticks are whole numbers


def integer_ticks(axis, xlabel: str) -> None:
    """Whole-number ticks on an axis that counts generations, epochs or rounds (matplotlib
    would otherwise put ticks at 1.5 on a two-generation run)."""
    from matplotlib.ticker import MaxNLocator

    if xlabel in COUNTED:
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))


def _finish_returns_plot(figure, axis, xlabel: str, title: str, path: Path) -> Path:
    """Labels, grid and legend of a one-panel plot of returns; saves it. The legend goes to
    the right of the axes, so it never hides a point."""
    axis.set_xlabel(xlabel)
    integer_ticks(axis, xlabel)
    axis.set_ylabel("return")
    axis.set_title(title, fontsize=10)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    figure.set_size_inches(figure.get_size_inches()[0] + 2.5, figure.get_size_inches()[1])
    figure.tight_layout()
    return _save(figure, path)


def read_rows(path: Path) -> list[dict]:
    """A CSV written by a stage, as dicts of floats (None for empty cells)."""
    with open(path, newline="") as file:
        return [{key: float(value) if value not in ("", None) else None
                 for key, value in row.items()} for row in csv.DictReader(file)]


def plot_metrics(rows: list[dict], terms: list[str], path: Path, title: str,
                 x: str = "epoch") -> Path:
    """One panel per loss term over epochs (V: loss, reconstruction, kl; M: loss, mdn, reward,
    done)."""
    plt = _pyplot()
    terms = [term for term in terms if rows and term in rows[0]]
    figure, axes = plt.subplots(1, len(terms), figsize=(3.2 * len(terms), 3.0), squeeze=False)
    steps = [row[x] for row in rows]
    for axis, term in zip(axes[0], terms):
        axis.plot(steps, [row[term] for row in rows], marker="o" if len(rows) < 20 else None,
                  markersize=3)
        axis.set_title(term)
        axis.set_xlabel(x)
        integer_ticks(axis, x)
        axis.grid(alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    return _save(figure, path)


def plot_controller_history(rows: list[dict], path: Path, title: str,
                            where: str = "dream") -> Path:
    """Fitness per generation (best, mean and worst candidate, best so far; scored ``where``)
    and, where the run measured it, the real-env score of the best so far and of the CMA-ES
    mean."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7.5, 4.2))
    generations = [row["generation"] for row in rows]
    axis.fill_between(generations, [row["worst"] for row in rows],
                      [row["best"] for row in rows], color="tab:blue", alpha=0.12,
                      label=f"{where} fitness: candidates (worst to best)")
    axis.plot(generations, [row["mean"] for row in rows], color="tab:blue",
              label=f"{where} fitness: population mean")
    axis.plot(generations, [row["best_so_far"] for row in rows], color="tab:blue", ls="--",
              label=f"{where} fitness: best so far")
    for key, colour, label in (("real_best", "tab:red", "real env: best so far"),
                               ("real_mean", "tab:orange", "real env: CMA-ES mean")):
        points = [(row["generation"], row[key]) for row in rows
                  if row.get(key) not in (None, "")]
        if points:
            axis.plot(*zip(*points), color=colour, marker="o", label=label)
    return _finish_returns_plot(figure, axis, "generation", title, path)


def plot_selection(rows: list[dict], chosen: int, history: list[dict], path: Path,
                   title: str) -> Path:
    """`select`'s candidates: the real validation score (mean ± standard error) of the CMA-ES
    mean at each generation considered and of the kept best, the chosen one ringed, beside
    each candidate's dream score (when measured) and the dream fitness of each generation's
    population (its mean), as C saw it while it evolved."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7.5, 4.2))
    if history:
        axis.plot([row["generation"] for row in history], [row["mean"] for row in history],
                  color="tab:blue", alpha=0.6, label="dream fitness: population mean")
    for kind, colour, marker, label in (("mean", "tab:orange", "o", "real: CMA-ES mean"),
                                        ("best", "tab:red", "s", "real: kept best")):
        points = [row for row in rows if row["kind"] == kind]
        axis.errorbar([row["generation"] for row in points], [row["mean"] for row in points],
                      yerr=[row["std"] / np.sqrt(len(row["returns"])) for row in points],
                      color=colour, marker=marker, capsize=3, ls="-" if kind == "mean" else "",
                      label=f"{label} (± s.e.)")
    dreamt = [row for row in rows if "dream" in row]
    if dreamt:
        axis.scatter([row["generation"] for row in dreamt], [row["dream"] for row in dreamt],
                     color="tab:blue", marker="x", label="dream: each candidate")
    axis.scatter([rows[chosen]["generation"]], [rows[chosen]["mean"]], s=220,
                 facecolors="none", edgecolors="black", linewidths=1.5, zorder=5,
                 label="selected")
    return _finish_returns_plot(figure, axis, "generation", title, path)


def plot_compare(rows: list[dict], real: dict, train_temperature: float | None, path: Path,
                 title: str) -> Path:
    """Dream mean ± std against temperature, the real score as a horizontal band."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6.5, 4.2))
    temperatures = [row["temperature"] for row in rows]
    axis.errorbar(temperatures, [row["dream_mean"] for row in rows],
                  yerr=[row["dream_std"] for row in rows], marker="o", capsize=4,
                  color="tab:blue", label="dream (mean ± std)")
    axis.axhspan(real["mean"] - real["std"], real["mean"] + real["std"], color="tab:red",
                 alpha=0.15, label="real env (± std)")
    axis.axhline(real["mean"], color="tab:red", label="real env (mean)")
    if train_temperature is not None:
        axis.axvline(train_temperature, color="grey", ls=":", label="trained at")
    return _finish_returns_plot(figure, axis, "dream temperature τ", title, path)


def plot_temperatures(result: dict, path: Path) -> Path:
    """The temperature table: dream and real mean ± std against the temperature C was trained
    at, the paper's beside ours (dashed), the random policy as a grey line."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6.5, 4.2))
    rows = result["rows"]
    taus = np.array([row["temperature"] for row in rows])
    for key, colour in (("dream", "tab:blue"), ("real", "tab:red")):
        axis.errorbar(taus, [row[f"{key}_mean"] for row in rows],
                      yerr=[row[f"{key}_std"] for row in rows], marker="o", capsize=4,
                      color=colour, label=f"{key} (ours)")
        paper = [(row["temperature"], row["paper"]) for row in rows if row["paper"]]
        if paper:
            axis.errorbar([t + 0.01 for t, _ in paper], [p[f"{key}_mean"] for _, p in paper],
                          yerr=[p[f"{key}_std"] for _, p in paper], marker="s", capsize=3,
                          color=colour, ls="--", alpha=0.5, label=f"{key} (paper)")
    if result.get("random"):
        axis.axhline(result["random"]["mean"], color="grey", ls=":", label="random policy (real)")
    return _finish_returns_plot(figure, axis, "temperature C was trained at (τ)",
                                f"{result['env']}: C trained only in the dream", path)


def plot_resolution(result: dict, path: Path) -> Path:
    """`resolution`'s candidates: each one's dream score (mean over dream seeds, with their
    range) against its real score on the validation tracks, checkpoints and population apart,
    the rank correlations in the title."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6.5, 4.6))
    rows = result["candidates"]
    for kinds, colour, marker, label in ((("mean",), "tab:orange", "o", "checkpoint (CMA-ES mean)"),
                                         (("best",), "tab:red", "s", "kept best"),
                                         (("population",), "tab:blue", "x",
                                          "population around the final mean")):
        points = [row for row in rows if row["kind"] in kinds]
        if not points:
            continue
        low = [row["dream"] - min(row["dream_seeds"]) for row in points]
        high = [max(row["dream_seeds"]) - row["dream"] for row in points]
        axis.errorbar([row["real"] for row in points], [row["dream"] for row in points],
                      yerr=[low, high], ls="", marker=marker, color=colour, capsize=2,
                      label=label)
    correlations = result["correlations"]
    title = ", ".join(f"{name} ρ {c['spearman_mean']:.2f} ± {c['spearman_std']:.2f}"
                      for name, c in correlations.items())
    axis.set_ylabel("dream score (mean; bars: range over dream seeds)")
    axis.set_xlabel(f"real score (mean of {len(result['tracks'])} validation episodes)")
    axis.set_title(f"does the dream rank drivers as the real env does?\n{title}", fontsize=9)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="best")
    figure.tight_layout()
    return _save(figure, path)


def image_grid(rows: list[tuple[str, np.ndarray]], path: Path, title: str,
               column_labels: list[str] | None = None) -> Path:
    """A grid of frames: each row is (label, images of shape (N, H, W, 3) in [0, 1])."""
    plt = _pyplot()
    columns = max(len(images) for _, images in rows)
    figure, axes = plt.subplots(len(rows), columns, squeeze=False,
                                figsize=(1.25 * columns + 1.0, 1.3 * len(rows) + 0.6))
    for r, (label, images) in enumerate(rows):
        for c in range(columns):
            axis = axes[r, c]
            axis.set_xticks([])
            axis.set_yticks([])
            if c < len(images):
                axis.imshow(np.clip(images[c], 0.0, 1.0))
            else:
                axis.axis("off")
        axes[r, 0].set_ylabel(label, fontsize=8)
    for c, label in enumerate(column_labels or []):
        axes[0, c].set_title(label, fontsize=8)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return _save(figure, path)


def step_caption(step: int, total: float) -> str:
    """A GIF frame's caption: the step and the return so far, rounded to a whole number
    (``round`` gives 0, where ``f"{-0.3:.0f}"`` would print "-0")."""
    return f"t={step} R={round(float(total))}"


def write_gif(frames: np.ndarray, path: Path, captions: list[str] | None = None,
              scale: int = 2, fps: int = 25) -> Path:
    """An animated GIF of frames (T, H, W, 3) in [0, 1], enlarged ``scale`` times, with an
    optional caption under each frame."""
    import imageio.v2 as imageio
    from PIL import Image, ImageDraw

    images = []
    for index, frame in enumerate(frames):
        image = Image.fromarray((np.clip(frame, 0, 1) * 255).astype(np.uint8))
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
        if captions is not None:
            canvas = Image.new("RGB", (image.width, image.height + 14), "black")
            canvas.paste(image, (0, 0))
            ImageDraw.Draw(canvas).text((2, image.height + 1), captions[index], fill="white")
            image = canvas
        images.append(np.asarray(image))
    from worldmodels.core.artifacts import atomic_path

    with atomic_path(path) as tmp:
        imageio.mimsave(tmp, images, duration=1000 / fps, loop=0)
    return Path(path)
