"""CMA-ES behind one ask/tell class (cma minimises; we maximise), and the generation loop that
writes the history, the best and mean parameters, and a resumable state."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import cma
import numpy as np
from tqdm import tqdm

from worldmodels.artifacts import write_csv
from worldmodels.config import ControllerConfig


class GaussianSource:
    """The normal samples cma draws (its ``randn`` option), from a generator of our own: cma
    would otherwise use NumPy's global RNG, which other libraries also draw from (TensorFlow
    does while tracing), so a resumed run would not follow the same trajectory."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng([seed, 7])

    def __call__(self, *shape):
        return self.rng.standard_normal(shape)


class Evolution:
    """CMA-ES over a flat parameter vector, starting at zeros; fitness is maximised."""

    def __init__(self, dimensions: int, population: int, sigma: float, seed: int):
        options = {"popsize": population, "seed": seed + 1, "verbose": -9,
                   "randn": GaussianSource(seed)}
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
    mean return of each candidate. Writes history.csv, best.npy, mean.npy and state.pkl after
    every generation, and resumes from state.pkl when it exists."""
    directory = Path(directory)
    state = load_state(directory)
    if state is None:
        state = {"evolution": Evolution(dimensions, config.population, config.sigma, seed),
                 "history": [], "best_fitness": -np.inf}
    evolution, history = state["evolution"], state["history"]
    bar = tqdm(range(len(history), config.generations), initial=len(history),
               total=config.generations, desc="C", unit="gen", disable=not progress)
    for generation in bar:
        candidates = evolution.ask()
        fitness = np.asarray(fitness_fn(candidates, generation))
        evolution.tell(candidates, fitness)
        top = int(np.argmax(fitness))
        if fitness[top] > state["best_fitness"]:
            state["best_fitness"] = float(fitness[top])
            save_array(directory / "best.npy", candidates[top])
        save_array(directory / "mean.npy", evolution.mean)
        history.append({
            "generation": generation + 1,
            "best": float(fitness[top]),
            "mean": float(fitness.mean()),
            "worst": float(fitness.min()),
            "best_so_far": state["best_fitness"],
        })
        write_csv(directory / "history.csv", history)
        save_state(directory, state)
        bar.set_postfix(best=f"{fitness[top]:.1f}", mean=f"{fitness.mean():.1f}")
    return history


def save_array(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.stem + ".tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)


def save_state(directory: Path, state: dict) -> None:
    """Pickle the CMA-ES state (its sample generator included) and the history atomically, so
    a resumed run continues the same trajectory."""
    tmp = directory / "state.pkl.tmp"
    with open(tmp, "wb") as file:
        pickle.dump(state, file)
    os.replace(tmp, directory / "state.pkl")


def load_state(directory: Path) -> dict | None:
    path = directory / "state.pkl"
    if not path.exists():
        return None
    with open(path, "rb") as file:
        return pickle.load(file)
