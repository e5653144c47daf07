"""The data targets: `collect` against the raw env (local and on Ray), V's and M's training
steps fed by the HDF5 stream against batches in memory, and `worldmodels train-vae`'s peak
memory on 10x the episodes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .rows import Row, ratio_row, timed

# ---------------------------------------------------------------------------------------------
# collection


def _raw_episode(envs: list, task) -> int:
    """A worker task: step one episode with the exploration policy on the worker's kept env
    (as `collect` steps its episodes); no preprocessing, nothing written."""
    from worldmodels.envs import get_env

    env_id, policy_name, seed = task
    env = envs[0]
    policy = get_env(env_id).make_policy(policy_name, np.random.default_rng(seed))
    observation, _ = env.reset(seed=seed)
    steps = 0
    while True:
        observation, _, terminated, truncated, _ = env.step(policy.act(observation))
        steps += 1
        if terminated or truncated:
            return steps


def bench_collect(root: Path, workers: int, episodes: int, max_steps: int, log,
                  env_id: str = "CarRacing-v3", policy: str = "pilot") -> list[Row]:
    """`collect` into ROOT/data/bench (CarRacing) or bench-doom against ``workers`` processes
    stepping the same policy on the same tracks and writing nothing. Both sides keep one env
    per worker open between episodes (the raw game as a gymnasium env steps it: a reset
    between episodes, not a new game)."""
    from worldmodels.config import CollectConfig
    from worldmodels.core.workers import make_backend
    from worldmodels.data.collect import collect, episode_seeds
    from worldmodels.data.store import episode_length, list_episodes
    from worldmodels.envs.shared import EnvSetup

    config = CollectConfig(env_id=env_id, episodes=episodes, max_steps=max_steps,
                           workers=workers, policy=policy)
    seeds = episode_seeds(0, episodes)
    started = time.perf_counter()
    with make_backend(workers) as backend:
        raw_steps = sum(steps for _, steps in backend.run(
            _raw_episode, {i: (env_id, policy, s) for i, s in enumerate(seeds)},
            shared=EnvSetup(env_id, max_steps)))
    raw_rate = raw_steps / (time.perf_counter() - started)
    # CarRacing's episodes are also what `stream` and `memory` read.
    directory = root / "data" / ("bench" if env_id == "CarRacing-v3" else "bench-doom") / \
        "rollouts"
    started = time.perf_counter()
    collect(directory, config, 0, progress=False)
    wall = time.perf_counter() - started
    steps = sum(episode_length(p) for p in list_episodes(directory))
    assert steps == raw_steps, f"collect stepped {steps} times, the raw run {raw_steps}"
    log(f"collect: {steps / wall:.0f} frames/s against {raw_rate:.0f} raw steps/s")
    label = "collect" if env_id == "CarRacing-v3" else "doom-collect"
    return [ratio_row(f"{label}: frames/s vs raw env steps/s", steps / wall, raw_rate,
                      "frames/s", goal_min=0.9,
                      detail=f"{workers} processes, {episodes} episodes x {max_steps} steps, "
                             f"policy {config.policy}")]


def bench_ray_collect(root: Path, workers: int, episodes: int, max_steps: int, log
                      ) -> list[Row]:
    """`collect` on a private local Ray instance against the local backend: the same episodes,
    the same number of workers. Ray starts before the timing (as a cluster is up before a
    run); the worker processes of both start inside it. Ray's workers send each episode back
    and this process writes it; local workers write their own files."""
    try:
        import ray  # noqa: F401
    except ImportError:
        log("ray-collect: skipped, Ray is not installed (pip install 'worldmodels[ray]')")
        return []
    from worldmodels.config import CollectConfig
    from worldmodels.core.ray_backend import RayBackend
    from worldmodels.data.collect import collect
    from worldmodels.data.store import episode_length, list_episodes

    config = CollectConfig(episodes=episodes, max_steps=max_steps, workers=workers)
    rates = {}
    with RayBackend("local", workers):
        for backend, address in (("local", None), ("ray", "local")):
            directory = root / "data" / f"bench-{backend}" / "rollouts"
            started = time.perf_counter()
            collect(directory, config, 0, progress=False, ray_address=address)
            wall = time.perf_counter() - started
            rates[backend] = sum(episode_length(p) for p in list_episodes(directory)) / wall
    log(f"ray-collect: Ray {rates['ray']:.0f} frames/s, local {rates['local']:.0f} frames/s")
    return [ratio_row("collect: Ray frames/s vs local backend frames/s", rates["ray"],
                      rates["local"], "frames/s", goal_min=0.9,
                      detail=f"{workers} workers, {episodes} episodes x {max_steps} steps, "
                             "a private local Ray instance started before the timing")]


# ---------------------------------------------------------------------------------------------
# streaming training


def bench_stream(root: Path, log, batches: int = 30, rnn_batches: int | None = None
                 ) -> list[Row]:
    """V's and M's compiled training steps fed by the HDF5 stream against the same steps fed
    batches already in memory, on the episodes `collect` wrote to ROOT/data/bench."""
    from worldmodels.data.store import list_episodes

    paths = list_episodes(root / "data" / "bench" / "rollouts")
    vae_row, model = _stream_vae(paths, batches, log)
    count = rnn_batches or max(12, batches // 3)  # M's batches: about 1 s each on a CPU
    return [vae_row, _stream_rnn(_bench_series(root, paths, model), model.z_size, count, log)]


def _stream_vae(paths, batches: int, log):
    """V: the training loop streaming episodes from disk, two episodes at a time (a read every
    few batches), against the same compiled step fed batches already in memory. Returns the
    row and the (untrained) V."""
    import keras
    import tensorflow as tf

    from worldmodels.config import VaeConfig
    from worldmodels.data.store import read_episode
    from worldmodels.model import vae as vae_module

    frames = np.concatenate([read_episode(p)["frames"] for p in paths])
    config = VaeConfig(batch_size=max(1, min(100, len(frames) // 8)), shuffle_episodes=2)
    model = vae_module.ConvVAE(config.z_size)
    step = vae_module.make_train_step(model, keras.optimizers.Adam(1e-4), config)
    # The episodes are streamed as many times as it takes to make ``batches`` batches, so that
    # the stream's start-up weighs as little as in a real epoch.
    passes = max(1, -(-batches * config.batch_size // len(frames)))
    paths = paths * passes
    frames = np.concatenate([frames] * passes)
    batches = min(batches, len(frames) // config.batch_size)
    in_memory = [tf.constant(frames[i * config.batch_size:(i + 1) * config.batch_size])
                 for i in range(batches)]
    step(in_memory[0])  # compile

    def from_memory():
        for batch in in_memory:
            float(step(batch)["loss"])

    def streaming():
        dataset = vae_module.frame_dataset(paths, config, seed=1)
        for batch in dataset.take(batches):
            float(step(batch)["loss"])

    memory_time, stream_time = 0.0, 0.0
    for _ in range(2):  # interleaved, so that a change of machine load hits both alike
        memory_time += timed(from_memory)
        stream_time += timed(streaming)
    samples = 2 * batches * config.batch_size
    row = ratio_row("train-vae: streamed vs in-memory samples/s", samples / stream_time,
                    samples / memory_time, "frames/s", goal_min=0.9,
                    detail=f"{batches} batches of {config.batch_size}, x2 interleaved")
    log(f"train-vae stream: {row.figure:.0f} vs {row.baseline:.0f} frames/s")
    return row, model


def _stream_rnn(series_path: Path, z_size: int, count: int, log) -> Row:
    """M: ``count`` batches of windows read from series.h5 by the reader thread, against the
    same batches already in memory."""
    import keras

    from worldmodels.config import RnnConfig
    from worldmodels.data.prefetch import prefetch
    from worldmodels.data.store import require_series
    from worldmodels.model.rnn import MDNRNN, make_batch, read_windows
    from worldmodels.model.rnn import make_train_step as rnn_step

    config = RnnConfig(batch_size=16, sequence_length=200)
    rnn = MDNRNN(z_size, config.hidden_size, config.mixtures)
    train = rnn_step(rnn, keras.optimizers.Adam(1e-3), config)
    with require_series(series_path) as series:
        lengths = series["lengths"][()]
        rng = np.random.default_rng(0)
        plans = []
        for _ in range(count):
            indices = np.sort(rng.integers(0, len(lengths), config.batch_size))
            starts = [int(rng.integers(0, max(1, lengths[i] - config.sequence_length + 1)))
                      for i in indices]
            plans.append((indices, starts))

        def windows():
            for k, (i, s) in enumerate(plans):
                yield make_batch(read_windows(series, i, s, config.sequence_length),
                                 np.random.default_rng(k))

        ready = list(windows())
        train(*ready[0])  # compile

        def from_memory():
            for batch in ready:
                float(train(*batch)["loss"])

        def streaming():
            for batch in prefetch(windows()):
                float(train(*batch)["loss"])

        memory_time, stream_time = 0.0, 0.0
        for _ in range(2):
            memory_time += timed(from_memory)
            stream_time += timed(streaming)
    samples = 2 * count * config.batch_size
    row = ratio_row("train-rnn: streamed vs in-memory samples/s", samples / stream_time,
                    samples / memory_time, "windows/s", goal_min=0.9,
                    detail=f"{count} batches of {config.batch_size} windows x "
                           f"{config.sequence_length} steps, x2 interleaved")
    log(f"train-rnn stream: {row.figure:.1f} vs {row.baseline:.1f} windows/s")
    return row


def _bench_series(root: Path, paths, model) -> Path:
    from worldmodels.model.vae import encode_series

    series_path = root / "data" / "bench" / "series" / "series.h5"
    series_path.parent.mkdir(parents=True, exist_ok=True)
    if not series_path.exists():
        encode_series(model, paths, series_path, vae_run_id="bench", progress=False)
    return series_path


# ---------------------------------------------------------------------------------------------
# memory of train-vae


def peak_rss_mb(command: list[str]) -> float:
    """Peak resident memory (MB) of ``command`` (and of the processes it waited for), run as a
    fresh child of this process; its output is discarded, its errors go to this stderr."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                               env=dict(os.environ, WORLDMODELS_NO_PROGRESS="1"))
    # wait4 gives this one child's resource usage (RUSAGE_CHILDREN would be the largest of
    # every child this process ever had); ru_maxrss is in KB on Linux.
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise subprocess.CalledProcessError(process.returncode, command)
    return usage.ru_maxrss / 1024.0


def _train_vae_command(root: Path, name: str, shuffle: int) -> list[str]:
    """`worldmodels train-vae` of the small preset, one epoch, on ROOT/data/NAME: the real
    command, in a process of its own (its peak RSS is measured)."""
    return [sys.executable, "-m", "worldmodels_cli", "train-vae", "--preset", "small",
            "--epochs", "1", "--shuffle-episodes", str(shuffle), "--name", name,
            "--data-dir", str(root / "data"), "--results-dir", str(root / "results")]


def bench_memory(root: Path, episodes: int, copies: int, log) -> list[Row]:
    """Peak RSS of `worldmodels train-vae` on ``copies`` x ``episodes`` episodes against
    ``episodes`` (the same real episodes of ROOT/data/bench repeated under new names)."""
    from worldmodels.core.artifacts import read_json, write_json
    from worldmodels.data.store import episode_length, episode_path, list_episodes

    source = root / "data" / "bench" / "rollouts"
    originals = list_episodes(source)[:episodes]
    manifest = read_json(source / "manifest.json") if (source / "manifest.json").exists() \
        else None
    sizes = {}
    for name, count in (("memory-small", episodes), ("memory-large", episodes * copies)):
        directory = root / "data" / name / "rollouts"
        directory.mkdir(parents=True, exist_ok=True)
        for index in range(count):  # the same real episodes, repeated under new names
            shutil.copyfile(originals[index % episodes], episode_path(directory, index))
        write_json(directory / "manifest.json", manifest or {
            "stage": "collect", "run_id": f"bench-{name}", "status": "complete",
            "config": {}, "seed": 0, "inputs": {}})
        frames = sum(episode_length(p) + 1 for p in list_episodes(directory))
        sizes[name] = (peak_rss_mb(_train_vae_command(root, name, episodes)), frames)
        log(f"train-vae on {count} episodes ({frames} frames): peak RSS {sizes[name][0]:.0f} MB")
    (large, large_frames), (small, small_frames) = sizes["memory-large"], sizes["memory-small"]
    return [ratio_row(f"train-vae: peak RSS, {copies}x episodes vs 1x", large, small, "MB",
                      goal_max=1.2,
                      detail=f"{small_frames} vs {large_frames} frames "
                             f"({large_frames * 64 * 64 * 3 / 2**20:.0f} MB of frames), "
                             f"shuffle buffer {episodes} episodes")]
