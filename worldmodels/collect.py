"""Collection of rollouts: worker processes each run whole episodes and write their own file."""

from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
from tqdm import tqdm

from worldmodels.config import CollectConfig
from worldmodels.env import default_workers, make_env, preprocess_frame
from worldmodels.errors import WorldModelsError
from worldmodels.policies import make_policy
from worldmodels.store import episode_path, list_episodes, write_episode

STAGE_KEY = 0


def episode_seeds(seed: int, count: int, stage_key: int = STAGE_KEY) -> list[int]:
    """Deterministic per-episode seeds for a run seed; stages use different keys, so
    collection, training and evaluation tracks differ."""
    sequence = np.random.SeedSequence([seed, stage_key])
    return [int(s) for s in sequence.generate_state(count, dtype=np.uint32)]


def run_episode(env_id: str, max_steps: int, policy_name: str, seed: int) -> dict:
    """Run one episode of the exploration policy; returns its arrays."""
    env = make_env(env_id, max_steps)
    policy = make_policy(policy_name, np.random.default_rng(seed))
    observation, _ = env.reset(seed=seed)
    frames, actions, rewards, terminations = [preprocess_frame(observation)], [], [], []
    try:
        while True:
            action = policy.act(observation)
            observation, reward, terminated, truncated, _ = env.step(action)
            frames.append(preprocess_frame(observation))
            actions.append(action)
            rewards.append(reward)
            terminations.append(terminated)
            if terminated or truncated:
                break
    finally:
        env.close()
    return {
        "frames": np.stack(frames),
        "actions": np.stack(actions).astype(np.float32),
        "rewards": np.asarray(rewards, np.float32),
        "terminations": np.asarray(terminations, np.uint8),
    }


def _collect_one(task) -> tuple[int, float, int]:
    directory, index, seed, config = task
    episode = run_episode(config.env_id, config.max_steps, config.policy, seed)
    total = float(episode["rewards"].sum())
    write_episode(
        episode_path(directory, index), **episode,
        env_id=config.env_id, seed=seed, policy=config.policy,
        length=len(episode["actions"]), **{"return": total},
    )
    return index, total, len(episode["actions"])


def collect(directory: Path, config: CollectConfig, seed: int, progress: bool = True,
            max_restarts: int = 3) -> dict:
    """Collect ``config.episodes`` episodes into ``directory``, keeping every episode already
    written (a killed run resumes where it stopped). A crashed worker is replaced and its
    episodes redone; after ``max_restarts`` crashes with no episode finished in between, the
    run stops with an error (the finished episodes stay on disk)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.tmp*"):
        stale.unlink()  # an episode that was being written when a run was killed
    seeds = episode_seeds(seed, config.episodes)
    done = {int(p.stem.split("_")[1]) for p in list_episodes(directory)}
    pending = {i: s for i, s in enumerate(seeds) if i not in done}
    workers = min(default_workers(config.workers), max(1, len(pending)))
    returns, lengths, crashes = [], [], 0
    bar = tqdm(total=config.episodes, initial=len(done), desc="collect", unit="ep",
               disable=not progress)
    while pending:
        try:
            for index, total, length in _run_pool(directory, pending, config, workers):
                del pending[index]
                returns.append(total)
                lengths.append(length)
                crashes = 0
                bar.update(1)
                bar.set_postfix(ret=f"{np.mean(returns):.1f}")
        except BrokenProcessPool:
            crashes += 1
            if crashes > max_restarts:
                bar.close()
                raise WorldModelsError(
                    f"collection workers crashed {crashes} times in a row; "
                    f"{config.episodes - len(pending)} finished episodes are saved in "
                    f"{directory}: re-run the same command to continue"
                ) from None
            bar.write(f"a worker crashed; restarting and redoing {len(pending)} episodes")
    bar.close()
    return {
        "episodes": len(list_episodes(directory)),
        "collected": len(returns),
        "mean_return": float(np.mean(returns)) if returns else float("nan"),
        "mean_length": float(np.mean(lengths)) if lengths else float("nan"),
        "workers": workers,
    }


def _run_pool(directory: Path, pending: dict, config: CollectConfig, workers: int):
    """Yield (index, return, length) as episodes finish; raises BrokenProcessPool if a worker
    dies."""
    context = mp.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = [pool.submit(_collect_one, (directory, i, s, config))
                   for i, s in sorted(pending.items())]
        for future in as_completed(futures):
            yield future.result()
