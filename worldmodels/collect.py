"""Collection of rollouts: worker processes each run whole episodes and write their own file."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import numpy as np
from tqdm import tqdm

from worldmodels.config import CollectConfig
from worldmodels.env import default_workers, make_env, preprocess_frame
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


def collect(directory: Path, config: CollectConfig, seed: int, progress: bool = True) -> dict:
    """Collect ``config.episodes`` episodes into ``directory``, skipping episodes already
    written; returns the mean return and length of the episodes collected now."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    seeds = episode_seeds(seed, config.episodes)
    done = {int(p.stem.split("_")[1]) for p in list_episodes(directory)}
    tasks = [(directory, i, s, config) for i, s in enumerate(seeds) if i not in done]
    workers = min(default_workers(config.workers), max(1, len(tasks)))
    returns, lengths = [], []
    if tasks:
        context = mp.get_context("spawn")
        with context.Pool(workers) as pool:
            results = pool.imap_unordered(_collect_one, tasks)
            bar = tqdm(results, total=len(tasks), desc="collect", unit="ep", disable=not progress)
            for _, total, length in bar:
                returns.append(total)
                lengths.append(length)
                bar.set_postfix(ret=f"{np.mean(returns):.1f}")
    return {
        "episodes": len(list_episodes(directory)),
        "collected": len(tasks),
        "mean_return": float(np.mean(returns)) if returns else float("nan"),
        "mean_length": float(np.mean(lengths)) if lengths else float("nan"),
        "workers": workers,
    }
