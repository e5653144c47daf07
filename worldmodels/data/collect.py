"""Collection of rollouts: workers (``worldmodels.core.workers``) each run whole episodes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from worldmodels.config import CollectConfig, mixture_members
from worldmodels.core.artifacts import stage_lock
from worldmodels.data.store import episode_path, list_episodes, write_episode
from worldmodels.envs import get_env
from worldmodels.envs.shared import EnvSetup
from worldmodels.errors import WorldModelsError

STAGE_KEY = 0


def episode_seeds(seed: int, count: int, stage_key: int = STAGE_KEY) -> list[int]:
    """Deterministic per-episode seeds for a run seed; stages use different keys, so
    collection, training and evaluation tracks differ."""
    sequence = np.random.SeedSequence([seed, stage_key])
    return [int(s) for s in sequence.generate_state(count, dtype=np.uint32)]


def episode_policy(policy: str, index: int) -> str:
    """The policy of episode ``index``: a mixture ``a+b`` gives the episodes to its members
    in turn."""
    members = mixture_members(policy)
    return members[index % len(members)]


def run_episode(env_id: str, max_steps: int, policy_name: str, seed: int, env=None) -> dict:
    """Run one episode of the exploration policy; returns its arrays. ``env`` (made with the
    same ``max_steps``) is reset with the episode's seed and left open for the next episode;
    without it, an env is made for the episode and closed after it. Either way the episode is
    the same: a reset with a seed gives the frames of a fresh env."""
    spec = get_env(env_id)
    kept = env is not None
    env = env if kept else spec.make(max_steps)
    policy = spec.make_policy(policy_name, np.random.default_rng(seed))
    observation, _ = env.reset(seed=seed)
    frames, actions, rewards, terminations = [spec.preprocess(observation)], [], [], []
    try:
        while True:
            action = policy.act(observation)
            observation, reward, terminated, truncated, _ = env.step(action)
            frames.append(spec.preprocess(observation))
            actions.append(action)
            rewards.append(reward)
            terminations.append(terminated)
            if terminated or truncated:
                break
    finally:
        if not kept:
            env.close()
    return {
        "frames": np.stack(frames),
        "actions": np.stack(actions).astype(np.float32),
        "rewards": np.asarray(rewards, np.float32),
        "terminations": np.asarray(terminations, np.uint8),
    }


def collect_task(envs: list | None, task) -> tuple:
    """A worker task: one episode, on the worker's kept env (``EnvSetup``'s state) if it has
    one. With a directory, the worker writes the episode file and returns (return, length,
    None); without (Ray with no shared filesystem), it returns the arrays too, for the driver
    to write."""
    directory, index, seed, config = task
    policy = episode_policy(config.policy, index)
    episode = run_episode(config.env_id, config.max_steps, policy, seed,
                          envs[0] if envs else None)
    total = float(episode["rewards"].sum())
    if directory is None:
        return total, len(episode["actions"]), episode
    write_collected(directory, index, seed, config, episode, policy)
    return total, len(episode["actions"]), None


def write_collected(directory: Path, index: int, seed: int, config: CollectConfig,
                    episode: dict, policy: str | None = None) -> None:
    """Write one collected episode as episode ``index`` of ``directory``, labelled with
    ``policy`` (default: the config's)."""
    write_episode(
        episode_path(directory, index), **episode, gzip_level=get_env(config.env_id).gzip_level,
        env_id=config.env_id, seed=seed, policy=policy or config.policy,
        length=len(episode["actions"]), **{"return": float(episode["rewards"].sum())},
    )


def collect(directory: Path, config: CollectConfig, seed: int, progress: bool = True,
            max_restarts: int = 3, ray_address: str | None = None) -> dict:
    """Collect ``config.episodes`` episodes into ``directory``, keeping every episode already
    written (a killed run resumes where it stopped). Episodes run on local worker processes,
    which write their own files, or on Ray with ``ray_address``, whose workers send the arrays
    back for this process to write. A crashed worker is replaced and its episode redone; after
    ``max_restarts`` crashes with no episode finished in between, the run stops with an error
    (the finished episodes stay on disk)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with stage_lock(directory, "collect"):
        return _collect(directory, config, seed, progress, max_restarts, ray_address)


def _collect(directory, config, seed, progress, max_restarts, ray_address) -> dict:
    from worldmodels.core.workers import WorkerCrashes, make_backend

    # Only under the lock: no other process can be writing a temporary file here.
    for stale in directory.glob("*.tmp*"):
        stale.unlink()  # an episode that was being written when a run was killed
    seeds = episode_seeds(seed, config.episodes)
    done = {int(p.stem.split("_")[1]) for p in list_episodes(directory)}
    pending = {i: s for i, s in enumerate(seeds) if i not in done}
    returns, lengths = [], []
    bar = tqdm(total=config.episodes, initial=len(done), desc="collect", unit="ep",
               disable=not progress)
    try:
        with make_backend(config.workers, ray_address, tasks=len(pending)) as backend:
            workers = backend.workers
            here = None if backend.name == "ray" else directory
            tasks = {i: (here, i, s, config) for i, s in sorted(pending.items())}

            def crashed(worker, index):
                bar.write(f"a worker crashed; restarting and redoing episode {index}")

            # Each worker keeps one env for all its episodes: a TakeCover game takes about as
            # long to start as 300 of its steps (docs/performance.md).
            kept = EnvSetup(config.env_id, config.max_steps)
            for index, (total, length, episode) in backend.run(
                    collect_task, tasks, shared=kept, max_crashes=max_restarts,
                    on_crash=crashed):
                if episode is not None:
                    write_collected(directory, index, seeds[index], config, episode,
                                    episode_policy(config.policy, index))
                returns.append(total)
                lengths.append(length)
                bar.update(1)
                bar.set_postfix(ret=f"{np.mean(returns):.1f}")
    except WorkerCrashes as error:
        raise WorldModelsError(
            f"collection workers crashed {error.crashes} times in a row; "
            f"{len(list_episodes(directory))} finished episodes are saved in {directory}: "
            "re-run the same command to continue"
        ) from None
    finally:
        bar.close()
    return {
        "episodes": len(list_episodes(directory)),
        "collected": len(returns),
        "mean_return": float(np.mean(returns)) if returns else float("nan"),
        "mean_length": float(np.mean(lengths)) if lengths else float("nan"),
        "workers": workers,
    }
