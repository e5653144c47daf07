"""CMA-ES behind one ask/tell class (cma minimises; we maximise), and the generation loop that
writes the history, the best and mean parameters, and a resumable state.

The state (``state.npz``) holds plain arrays and JSON text, never a pickle: every generation's
fitness values, the history and the best so far. CMA-ES itself is rebuilt on resume by
replaying the recorded fitness values into a new ``Evolution`` of the same seed."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cma
import numpy as np
from tqdm import tqdm

from worldmodels.config import ControllerConfig
from worldmodels.core import tensorboard
from worldmodels.core.artifacts import atomic_path, nofollow, read_json, write_csv
from worldmodels.errors import WorldModelsError

STATE = "state.npz"
LEGACY_STATE = "state.pkl"  # older versions' pickle: never read
FORMAT = 1


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
           progress: bool = True, check_fn=None, recheck_fn=None) -> list[dict]:
    """Run ``config.generations`` generations; ``fitness_fn(candidates, generation)`` returns the
    mean return of each candidate. Writes history.csv, best.npy, mean.npy and the state
    (``STATE``) after every generation, and resumes from the state when it belongs to this run
    (the run id of the directory's manifest.json; a state a --force run replaced is ignored),
    and TensorBoard events of the same figures and the generation's fitness histogram.

    With ``check_fn`` and ``config.real_every`` > 0, every ``real_every`` generations (and at the
    last) ``check_fn(best, mean)`` scores the best candidate so far and the CMA-ES mean in the
    real env; history records them as ``real_best`` and ``real_mean`` (empty cells elsewhere).
    The check runs before the generation's state is saved, so a run killed during a check
    redoes that whole generation and the history stays that of an uninterrupted run.

    With ``recheck_fn``, ``recheck_fn(candidate, generation)`` scores the generation's top
    candidate again, and that score decides whether it becomes the best so far (history's
    ``recheck``)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    settings = {"dimensions": dimensions, "population": config.population,
                "sigma": float(config.sigma), "seed": seed}
    run_id = _manifest_run_id(directory)
    state = load_state(directory)
    if state is None or state.run_id != run_id:
        tensorboard.clear(directory)
        state = State(fitness=[], history=[], best_fitness=-np.inf, best=None, run_id=run_id)
    evolution = restore(state, directory, **settings)
    history = state.history
    checking = check_fn is not None and config.real_every > 0
    board = tensorboard.Board(directory)
    bar = tqdm(range(len(history), config.generations), initial=len(history),
               total=config.generations, desc="C", unit="gen", disable=not progress)
    for generation in bar:
        candidates = evolution.ask()
        fitness = check_fitness(fitness_fn(candidates, generation), generation + 1, directory)
        evolution.tell(candidates, fitness)
        top = int(np.argmax(fitness))
        score = float(fitness[top]) if recheck_fn is None else float(check_fitness(
            [recheck_fn(np.asarray(candidates[top]), generation)], generation + 1, directory)[0])
        if score > state.best_fitness:
            state.best_fitness = score
            state.best = np.array(candidates[top])
        row = {
            "generation": generation + 1,
            "best": float(fitness[top]),
            "mean": float(fitness.mean()),
            "worst": float(fitness.min()),
            **({} if recheck_fn is None else {"recheck": score}),
            "best_so_far": state.best_fitness,
        }
        if checking:
            row["real_best"] = row["real_mean"] = ""
            if is_check_generation(generation + 1, config):
                real_best, real_mean = check_fn(state.best, evolution.mean)
                row.update(real_best=float(real_best), real_mean=float(real_mean))
                bar.write(f"generation {generation + 1}: real env, best so far "
                          f"{real_best:.1f}, mean {real_mean:.1f} (dream best {row['best']:.1f})")
        history.append(row)
        state.fitness.append(np.asarray(fitness, dtype=np.float64))
        save_array(directory / "best.npy", state.best)
        save_array(directory / "mean.npy", evolution.mean)
        write_csv(directory / "history.csv", history)
        board.scalars({k: v for k, v in row.items() if k != "generation"}, generation + 1, "C/")
        board.histogram("C/fitness", fitness, generation + 1)
        board.flush()
        save_state(directory, state, evolution.mean, settings)
        bar.set_postfix(best=f"{fitness[top]:.1f}", mean=f"{fitness.mean():.1f}")
    board.close()
    return history


def check_fitness(values, generation: int, directory: Path) -> np.ndarray:
    """``values`` as an array when every fitness is a finite number; else a one-line error:
    nothing of the generation is written (best.npy, the state), the last one's are kept."""
    fitness = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(fitness)):
        bad = fitness[~np.isfinite(fitness)][0]
        raise WorldModelsError(
            f"generation {generation} scored a candidate {bad} (not a finite number): nothing "
            f"of it is written; {directory} keeps the last generation's best and state (M or "
            "the env returned a non-finite reward)")
    return fitness


def is_check_generation(generation: int, config: ControllerConfig) -> bool:
    """Whether generation (counted from 1) ends with a real-env check."""
    return config.real_every > 0 and (generation % config.real_every == 0
                                      or generation == config.generations)


def save_array(path: Path, array: np.ndarray) -> None:
    """Save an array atomically; a failed write is a one-line error."""
    with atomic_path(path, ".npy") as tmp:
        np.save(tmp, array)


@dataclass
class State:
    """What a resumed run continues from: every generation's fitness values (CMA-ES is rebuilt
    from them, see ``restore``), the history rows and the best candidate so far. ``run_id`` is
    the manifest's of the run that wrote it."""

    fitness: list
    history: list
    best_fitness: float
    best: np.ndarray | None
    run_id: str | None = None
    mean: np.ndarray | None = None
    """The CMA-ES mean the recorded generations end at (as read; checked by ``restore``)."""
    settings: dict | None = None
    """Dimensions, population, sigma and seed of the run (as read)."""


def save_state(directory: Path, state: State, mean: np.ndarray, settings: dict) -> None:
    """Write the state as plain arrays and JSON text in one .npz (nothing in it can run code
    when read), atomically. ``mean`` is the CMA-ES mean it must replay to; ``settings`` the
    dimensions, population, sigma and seed it was made with."""
    path = Path(directory) / STATE
    population = settings["population"]
    fitness = np.asarray(state.fitness, np.float64).reshape(len(state.fitness), population)
    meta = {"format": FORMAT, "run_id": state.run_id, "history": state.history,
            "best_fitness": state.best_fitness, "settings": settings}
    best = np.zeros(0) if state.best is None else np.asarray(state.best, np.float64)
    with atomic_path(path, "") as tmp, open(tmp, "wb", opener=nofollow) as file:
        np.savez(file, fitness=fitness, best=best, mean=np.asarray(mean, np.float64),
                 meta=np.array(json.dumps(meta)))


def load_state(directory: Path) -> State | None:
    """The saved state of ``directory``, or None when there is none. Never unpickles: a damaged
    or hand-crafted file (or a state.pkl of an older version) is a one-line error."""
    directory = Path(directory)
    path = directory / STATE
    if not path.exists():
        if (directory / LEGACY_STATE).exists():
            raise WorldModelsError(
                f"{directory / LEGACY_STATE} is a CMA-ES state of an older version, which is no "
                "longer read (a pickle can run code): add --force to `worldmodels "
                "train-controller` to start the controller over")
        return None
    try:
        with np.load(path, allow_pickle=False) as saved:
            fitness, best = saved["fitness"], saved["best"]
            mean, meta = saved["mean"], json.loads(str(saved["meta"][()]))
        state = State(fitness=list(np.asarray(fitness, np.float64)),
                      history=list(meta["history"]), best_fitness=float(meta["best_fitness"]),
                      best=np.array(best) if best.size else None, run_id=meta["run_id"],
                      mean=np.asarray(mean, np.float64), settings=dict(meta["settings"]))
        _check_state(state, fitness, meta)
    except DAMAGE as error:  # a damaged or foreign file; anything else is a bug (traceback)
        reason = str(error).splitlines()[0][:100] if str(error) else type(error).__name__
        raise WorldModelsError(_damaged(path, reason)) from None
    return state


# What reading a damaged or foreign state.npz raises: np.load (OSError, ValueError, EOFError,
# BadZipFile), a missing array or key (KeyError, IndexError), a field of the wrong type
# (TypeError).
DAMAGE = (OSError, ValueError, EOFError, KeyError, IndexError, TypeError, zipfile.BadZipFile)


def _check_state(state: State, fitness: np.ndarray, meta: dict) -> None:
    settings = state.settings
    if meta.get("format") != FORMAT:
        raise ValueError(f"format {meta.get('format')!r}, expected {FORMAT}")
    if fitness.ndim != 2 or fitness.shape[1] != int(settings["population"]):
        raise ValueError(f"fitness of shape {fitness.shape}")
    if len(state.history) != len(fitness) or not all(isinstance(r, dict)
                                                     for r in state.history):
        raise ValueError(f"{len(state.history)} history rows for {len(fitness)} generations")
    if not (np.all(np.isfinite(fitness)) and np.all(np.isfinite(state.mean))
            and (state.best is None or np.all(np.isfinite(state.best)))
            and (np.isfinite(state.best_fitness) or state.best_fitness == -np.inf)):
        raise ValueError("it holds NaN or infinite numbers")
    dimensions = int(settings["dimensions"])
    if state.mean.shape != (dimensions,) or (state.best is not None
                                             and state.best.shape != (dimensions,)):
        raise ValueError(f"a mean of shape {state.mean.shape} for {dimensions} parameters")


def _damaged(path: Path, reason: str) -> str:
    return (f"the CMA-ES state {path} is damaged ({reason}): add --force to "
            "`worldmodels train-controller` to start the controller over")


def restore(state: State, directory: Path, dimensions: int, population: int, sigma: float,
            seed: int) -> Evolution:
    """CMA-ES as ``state`` left it: a new ``Evolution`` with the same seed, told every recorded
    generation's fitness again. Its samples come from our own seeded ``GaussianSource``, so the
    replay asks the same candidates and ends at the same mean and step size, bit for bit; the
    saved mean is checked to be sure (a changed ``cma`` package could differ)."""
    evolution = Evolution(dimensions, population, sigma, seed)
    if not state.fitness:
        return evolution
    path = Path(directory) / STATE
    settings = {"dimensions": dimensions, "population": population, "sigma": float(sigma),
                "seed": seed}
    if state.settings != settings:
        raise WorldModelsError(
            f"the CMA-ES state {path} was made with {state.settings}, not {settings}: add "
            "--force to `worldmodels train-controller` to start the controller over")
    for _ in replay(state, evolution, path):
        pass
    return evolution


def replay(state: State, evolution: Evolution, path: Path):
    """Tell a new ``evolution`` every generation ``state`` recorded, yielding after each the
    generation (counted from 1), the candidates it asked and their fitness; at the end the
    saved mean is checked (``path``: the state file, for the message)."""
    for generation, fitness in enumerate(state.fitness, 1):
        candidates = evolution.ask()
        evolution.tell(candidates, fitness)
        yield generation, candidates, np.asarray(fitness)
    if not np.array_equal(evolution.mean, state.mean):
        raise WorldModelsError(_damaged(path, "replaying its fitness values does not give its "
                                              "CMA-ES mean"))


def adopt_state(directory: Path, state: State, run_id: str, forget_best: bool = False) -> None:
    """Make ``state`` the one the run of ``run_id`` (a new manifest) continues, so `iterate`
    evolves C further than its last run; ``forget_best``: the best so far, scored in an older
    dream, is chosen again."""
    state.run_id = run_id
    if forget_best:
        state.best_fitness, state.best = -np.inf, None
    save_state(directory, state, state.mean, state.settings)


def clear_state(directory: Path) -> None:
    """Remove the CMA-ES state of ``directory`` (for --force), an older version's too."""
    directory = Path(directory)
    for path in [directory / STATE, directory / LEGACY_STATE,
                 *directory.glob(f"{STATE}.tmp*"), *directory.glob(f".{STATE}.tmp*")]:
        path.unlink(missing_ok=True)


def _manifest_run_id(directory: Path) -> str | None:
    path = Path(directory) / "manifest.json"
    return read_json(path).get("run_id") if path.exists() else None
