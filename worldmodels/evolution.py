"""CMA-ES behind one ask/tell class (cma minimises; we maximise), and the generation loop that
writes the history, the best and mean parameters, and a resumable state."""

from __future__ import annotations

import csv
import pickle
from pathlib import Path

import cma
import numpy as np
from tqdm import tqdm

from worldmodels.config import ControllerConfig


class Evolution:
    """CMA-ES over a flat parameter vector, starting at zeros; fitness is maximised."""

    def __init__(self, dimensions: int, population: int, sigma: float, seed: int):
        options = {"popsize": population, "seed": seed + 1, "verbose": -9}
        self.es = cma.CMAEvolutionStrategy(np.zeros(dimensions), sigma, options)

    def ask(self) -> np.ndarray:
        return np.asarray(self.es.ask())

    def tell(self, candidates: np.ndarray, fitness: np.ndarray) -> None:
        self.es.tell(list(candidates), list(-np.asarray(fitness, dtype=float)))

    @property
    def mean(self) -> np.ndarray:
        return np.asarray(self.es.mean)


def evolve(fitness_fn, dimensions: int, config: ControllerConfig, seed: int, directory: Path,
           progress: bool = True) -> list[dict]:
    """Run ``config.generations`` generations; ``fitness_fn(candidates, generation)`` returns the
    mean return of each candidate. Writes history.csv, best.npy, mean.npy and state.pkl."""
    directory = Path(directory)
    evolution = Evolution(dimensions, config.population, config.sigma, seed)
    history, best_fitness = [], -np.inf
    bar = tqdm(range(config.generations), desc="C", unit="gen", disable=not progress)
    for generation in bar:
        candidates = evolution.ask()
        fitness = np.asarray(fitness_fn(candidates, generation))
        evolution.tell(candidates, fitness)
        top = int(np.argmax(fitness))
        if fitness[top] > best_fitness:
            best_fitness = float(fitness[top])
            np.save(directory / "best.npy", candidates[top])
        np.save(directory / "mean.npy", evolution.mean)
        history.append({
            "generation": generation + 1,
            "best": float(fitness[top]),
            "mean": float(fitness.mean()),
            "worst": float(fitness.min()),
            "best_so_far": best_fitness,
        })
        write_history(directory / "history.csv", history)
        with open(directory / "state.pkl", "wb") as file:
            pickle.dump(evolution, file)
        bar.set_postfix(best=f"{fitness[top]:.1f}", mean=f"{fitness.mean():.1f}")
    return history


def write_history(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
