"""CMA-ES behind one ask/tell class (cma minimises; we maximise), and the generation loop that
writes the history, the best and mean parameters, and a resumable state."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import cma
import numpy as np
from tqdm import tqdm

from worldmodels import tensorboard
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
           progress: bool = True, check_fn=None) -> list[dict]:
    """Run ``config.generations`` generations; ``fitness_fn(candidates, generation)`` returns the
    mean return of each candidate. Writes history.csv, best.npy, mean.npy and state.pkl after
    every generation (and TensorBoard events of the same figures and the generation's
    fitness histogram), and resumes from state.pkl when it exists.

    With ``check_fn`` and ``config.real_every`` > 0, every ``real_every`` generations (and at the
    last) ``check_fn(best, mean)`` scores the best candidate so far and the CMA-ES mean in the
    real env; history records them as ``real_best`` and ``real_mean`` (empty cells elsewhere).
    The check runs before the generation's state is saved, so a run killed during a check
    redoes that whole generation and the history stays that of an uninterrupted run."""
    directory = Path(directory)
    state = load_state(directory)
    if state is None:
        tensorboard.clear(directory)
        state = {"evolution": Evolution(dimensions, config.population, config.sigma, seed),
                 "history": [], "best_fitness": -np.inf, "best": None}
    if "best" not in state:  # a state.pkl written before real checks existed
        best_path = directory / "best.npy"
        state["best"] = np.load(best_path) if best_path.exists() else None
    evolution, history = state["evolution"], state["history"]
    checking = check_fn is not None and config.real_every > 0
    board = tensorboard.Board(directory)
    bar = tqdm(range(len(history), config.generations), initial=len(history),
               total=config.generations, desc="C", unit="gen", disable=not progress)
    for generation in bar:
        candidates = evolution.ask()
        fitness = np.asarray(fitness_fn(candidates, generation))
        evolution.tell(candidates, fitness)
        top = int(np.argmax(fitness))
        if fitness[top] > state["best_fitness"]:
            state["best_fitness"] = float(fitness[top])
            state["best"] = np.array(candidates[top])
        row = {
            "generation": generation + 1,
            "best": float(fitness[top]),
            "mean": float(fitness.mean()),
            "worst": float(fitness.min()),
            "best_so_far": state["best_fitness"],
        }
        if checking:
            row["real_best"] = row["real_mean"] = ""
            if is_check_generation(generation + 1, config):
                real_best, real_mean = check_fn(state["best"], evolution.mean)
                row.update(real_best=float(real_best), real_mean=float(real_mean))
                bar.write(f"generation {generation + 1}: real env, best so far "
                          f"{real_best:.1f}, mean {real_mean:.1f} (dream best {row['best']:.1f})")
        history.append(row)
        save_array(directory / "best.npy", state["best"])
        save_array(directory / "mean.npy", evolution.mean)
        write_csv(directory / "history.csv", history)
        board.scalars({k: v for k, v in row.items() if k != "generation"}, generation + 1, "C/")
        board.histogram("C/fitness", fitness, generation + 1)
        board.flush()
        save_state(directory, state)
        bar.set_postfix(best=f"{fitness[top]:.1f}", mean=f"{fitness.mean():.1f}")
    board.close()
    return history


def is_check_generation(generation: int, config: ControllerConfig) -> bool:
    """Whether generation (counted from 1) ends with a real-env check."""
    return config.real_every > 0 and (generation % config.real_every == 0
                                      or generation == config.generations)


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
