"""`worldmodels bench`: each performance target as a ratio measured side by side in one run.

Every figure is paired with a baseline measured in the same run on the same machine:

- collect: frames/s of `collect` (policy, preprocessing, HDF5 writing) against K processes
  stepping the same policy on the same tracks and writing nothing.
- train-vae-stream, train-rnn-stream: samples/s of the training loop streaming from HDF5
  against the same compiled step fed batches already in memory.
- vae-memory: peak resident memory of `worldmodels train-vae` on 10x more episodes against the
  smaller set (each run in its own process).
- dream: one generation of the paper's setting (64 x 16 agents x 1,000 steps) against the
  15 s budget, and its agent-steps/s against a loop that steps one rollout at a time.
- real: V + M + C in the real env against K processes replaying the very same actions on the
  same tracks without any model (so the env does exactly the same work).
- startup: `worldmodels --help` and every stage's `--help`.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

TARGETS = ("startup", "collect", "stream", "memory", "dream", "real", "ray-collect",
           "doom-collect", "doom-dream")
TAKECOVER = "VizdoomTakeCover-v1"


@dataclass
class Row:
    """One measured figure against its baseline."""

    target: str
    figure: float
    baseline: float
    unit: str
    ratio: float
    goal: str
    met: bool
    detail: str


def _ratio_row(target, figure, baseline, unit, goal_min=None, goal_max=None, detail=""):
    ratio = figure / baseline if baseline else float("nan")
    if goal_min is not None:
        goal, met = f">= {goal_min:g}", bool(ratio >= goal_min)
    else:
        goal, met = f"<= {goal_max:g}", bool(ratio <= goal_max)
    return Row(target, float(figure), float(baseline), unit, float(ratio), goal, met, detail)


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, " \
           f"{platform.system()} {platform.release()}, Python {platform.python_version()}"


# ---------------------------------------------------------------------------------------------
# start-up


def bench_startup(log) -> list[Row]:
    """`worldmodels --help` and `worldmodels STAGE --help` of every stage the group lists, each
    a fresh process of the installed command: what a user waits for."""
    import shutil

    from worldmodels.errors import WorldModelsError

    beside = Path(sys.executable).parent / "worldmodels"
    executable = str(beside) if beside.exists() else shutil.which("worldmodels")
    if executable is None:
        raise WorldModelsError("no installed `worldmodels` command to time: install the "
                               "package first (pip install -e .)")
    times = {}
    started = time.perf_counter()
    listing = subprocess.run([executable, "--help"], check=True, capture_output=True, text=True)
    times["(group)"] = time.perf_counter() - started
    stages = [line.split()[0] for line in listing.stdout.split("Stages:")[-1].splitlines()
              if line.startswith("  ") and not line.startswith("   ") and line.split()]
    for stage in stages:
        started = time.perf_counter()
        subprocess.run([executable, stage, "--help"], check=True, capture_output=True)
        times[stage] = time.perf_counter() - started
    slowest = max(times, key=times.get)
    log(f"startup: slowest --help is `worldmodels {slowest} --help` at {times[slowest]:.2f} s")
    return [_ratio_row("startup: slowest --help (s)", times[slowest], 1.5, "s", goal_max=1.0,
                       detail=f"{len(times)} commands; slowest: {slowest}; baseline = the 1.5 s "
                              "budget")]


# ---------------------------------------------------------------------------------------------
# collection


def _raw_episode(task) -> int:
    """Step one episode with the exploration policy; no preprocessing, nothing written."""
    from worldmodels.envs import get_env

    env_id, max_steps, policy_name, seed = task
    spec = get_env(env_id)
    env = spec.make(max_steps)
    policy = spec.make_policy(policy_name, np.random.default_rng(seed))
    observation, _ = env.reset(seed=seed)
    steps = 0
    while True:
        observation, _, terminated, truncated, _ = env.step(policy.act(observation))
        steps += 1
        if terminated or truncated:
            env.close()
            return steps


def bench_collect(root: Path, workers: int, episodes: int, max_steps: int, log,
                  env_id: str = "CarRacing-v3", policy: str = "pilot") -> list[Row]:
    from worldmodels.config import CollectConfig
    from worldmodels.data.collect import collect, episode_seeds
    from worldmodels.data.store import episode_length, list_episodes

    config = CollectConfig(env_id=env_id, episodes=episodes, max_steps=max_steps,
                           workers=workers, policy=policy)
    seeds = episode_seeds(0, episodes)
    started = time.perf_counter()
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        raw_steps = sum(pool.map(_raw_episode, [(config.env_id, max_steps, config.policy, s)
                                                for s in seeds]))
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
    return [_ratio_row(f"{label}: frames/s vs raw env steps/s", steps / wall, raw_rate,
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
    return [_ratio_row("collect: Ray frames/s vs local backend frames/s", rates["ray"],
                       rates["local"], "frames/s", goal_min=0.9,
                       detail=f"{workers} workers, {episodes} episodes x {max_steps} steps, "
                              "a private local Ray instance started before the timing")]


# ---------------------------------------------------------------------------------------------
# streaming training


def _timed(run) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def bench_stream(root: Path, log, batches: int = 30, rnn_batches: int | None = None
                 ) -> list[Row]:
    import tensorflow as tf

    from worldmodels.config import RnnConfig, VaeConfig
    from worldmodels.data.prefetch import prefetch
    from worldmodels.data.store import list_episodes, read_episode, require_series
    from worldmodels.model import vae as vae_module
    from worldmodels.model.rnn import MDNRNN, make_batch, read_windows
    from worldmodels.model.rnn import make_train_step as rnn_step

    paths = list_episodes(root / "data" / "bench" / "rollouts")
    # V: the training loop streaming episodes from disk, two episodes at a time (a read every
    # few batches), against the same compiled step fed batches already in memory.
    import keras

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
        memory_time += _timed(from_memory)
        stream_time += _timed(streaming)
    samples = 2 * batches * config.batch_size
    rows = [_ratio_row("train-vae: streamed vs in-memory samples/s", samples / stream_time,
                       samples / memory_time, "frames/s", goal_min=0.9,
                       detail=f"{batches} batches of {config.batch_size}, x2 interleaved")]
    log(f"train-vae stream: {rows[-1].figure:.0f} vs {rows[-1].baseline:.0f} frames/s")

    # M: windows read from series.h5 by the reader thread, against batches already in memory.
    series_path = _bench_series(root, paths, model)
    rnn_config = RnnConfig(batch_size=16, sequence_length=200)
    rnn = MDNRNN(config.z_size, rnn_config.hidden_size, rnn_config.mixtures)
    rnn_train = rnn_step(rnn, keras.optimizers.Adam(1e-3), rnn_config)
    with require_series(series_path) as series:
        lengths = series["lengths"][()]
        rng = np.random.default_rng(0)
        count = rnn_batches or max(12, batches // 3)  # M's batches: about 1 s each on a CPU
        plans = []
        for _ in range(count):
            indices = np.sort(rng.integers(0, len(lengths), rnn_config.batch_size))
            starts = [int(rng.integers(0, max(1, lengths[i] - rnn_config.sequence_length + 1)))
                      for i in indices]
            plans.append((indices, starts))
        def windows():
            for k, (i, s) in enumerate(plans):
                yield make_batch(read_windows(series, i, s, rnn_config.sequence_length),
                                 np.random.default_rng(k))

        ready = list(windows())
        rnn_train(*ready[0])  # compile

        def rnn_memory():
            for batch in ready:
                float(rnn_train(*batch)["loss"])

        def rnn_stream():
            for batch in prefetch(windows()):
                float(rnn_train(*batch)["loss"])

        memory_time, stream_time = 0.0, 0.0
        for _ in range(2):
            memory_time += _timed(rnn_memory)
            stream_time += _timed(rnn_stream)
    samples = 2 * count * rnn_config.batch_size
    rows.append(_ratio_row("train-rnn: streamed vs in-memory samples/s", samples / stream_time,
                           samples / memory_time, "windows/s", goal_min=0.9,
                           detail=f"{count} batches of {rnn_config.batch_size} windows x "
                                  f"{rnn_config.sequence_length} steps, x2 interleaved"))
    log(f"train-rnn stream: {rows[-1].figure:.1f} vs {rows[-1].baseline:.1f} windows/s")
    return rows


def _bench_series(root: Path, paths, model) -> Path:
    from worldmodels.model.vae import encode_series

    series_path = root / "data" / "bench" / "series" / "series.h5"
    series_path.parent.mkdir(parents=True, exist_ok=True)
    if not series_path.exists():
        encode_series(model, paths, series_path, vae_run_id="bench", progress=False)
    return series_path


# ---------------------------------------------------------------------------------------------
# memory of train-vae


def _peak_rss_mb(command: list[str]) -> float:
    """Peak resident memory (MB) of ``command``, run in a fresh wrapper process so that the
    figure is this one child's."""
    wrapper = ("import resource, subprocess, sys; "
               "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    output = subprocess.run([sys.executable, "-c", wrapper] + command, check=True,
                            capture_output=True, text=True).stdout
    return int(output.split()[-1]) / 1024.0


# train-vae of the small preset, one epoch, in a process of its own (its peak RSS is measured).
_TRAIN_VAE = """import sys
from dataclasses import replace
from worldmodels import stages
from worldmodels.core.artifacts import Layout
from worldmodels.config import get_preset
data, results, name, shuffle = sys.argv[1:]
stages.train_vae(Layout(data, results, name),
                 replace(get_preset("small").vae, epochs=1, shuffle_episodes=int(shuffle)),
                 progress=False)
"""


def bench_memory(root: Path, episodes: int, copies: int, log) -> list[Row]:
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
        command = [sys.executable, "-c", _TRAIN_VAE, str(root / "data"), str(root / "results"),
                   name, str(episodes)]
        sizes[name] = (_peak_rss_mb(command), frames)
        log(f"train-vae on {count} episodes ({frames} frames): peak RSS {sizes[name][0]:.0f} MB")
    (large, large_frames), (small, small_frames) = sizes["memory-large"], sizes["memory-small"]
    return [_ratio_row(f"train-vae: peak RSS, {copies}x episodes vs 1x", large, small, "MB",
                       goal_max=1.2,
                       detail=f"{small_frames} vs {large_frames} frames "
                              f"({large_frames * 64 * 64 * 3 / 2**20:.0f} MB of frames), "
                              f"shuffle buffer {episodes} episodes")]


# ---------------------------------------------------------------------------------------------
# the dream


def bench_dream(population: int, trials: int, steps: int, naive_steps: int, log,
                generations: int = 1, env_id: str = "CarRacing-v3") -> list[Row]:
    """CarRacing's dream (z 32, LSTM 256) against the 15 s a generation of 1,000 steps may
    take, and against a loop of one rollout at a time; or TakeCover's paper-size dream (z 64,
    LSTM 512, one output), its cost for a generation, against CarRacing's."""
    if env_id != "CarRacing-v3":
        return _bench_doom_dream(population, trials, steps, log)
    import tensorflow as tf

    from worldmodels.model.controller import Controller
    from worldmodels.model.dream import make_dream, run_dream, sample_next_z
    from worldmodels.model.rnn import MDNRNN

    rnn = MDNRNN(32, 256, 5)
    # Random weights, but a done head that never fires: every agent runs all the steps.
    rnn.done_head.kernel.assign(np.zeros(rnn.done_head.kernel.shape, np.float32))
    rnn.done_head.bias.assign([-1000.0])  # sigmoid(-1000) is exactly 0 in float32
    spec = Controller("zh", 32, 256)
    agents = population * trials
    rng = np.random.default_rng(0)
    candidates = rng.normal(0, 0.1, (population, spec.param_count)).astype(np.float32)
    params = np.repeat(candidates, trials, axis=0)
    z0 = rng.normal(size=(agents, 32)).astype(np.float32)
    dream = make_dream(rnn, spec)
    run_dream(dream, params, z0, 1.15, 2, 0)  # trace
    walls = []
    for generation in range(generations):
        started = time.perf_counter()
        _, lengths = run_dream(dream, params, z0, 1.15, steps, 1 + generation)
        walls.append(time.perf_counter() - started)
        assert lengths.min() == steps, "every dream must run to the end for the benchmark"
        log(f"dream: {agents} agents x {steps} steps in {walls[-1]:.1f} s")
    wall = float(np.median(walls))
    batched_rate = agents * steps / wall

    # The straightforward loop: one rollout at a time, one compiled step per time step.
    @tf.function
    def one_step(p, z, h, c, seed):
        action = spec.act_batch(p, z, h)
        predictions, (h2, c2) = rnn.step(tf.concat([z, action], -1), [h, c])
        z2 = sample_next_z(predictions, tf.constant(1.15), seed)
        done = tf.random.stateless_uniform((1,), seed + 1) < tf.sigmoid(
            predictions["done_logit"])
        return z2, h2, c2, predictions["reward"], done

    p = tf.constant(params[:1])
    z, h, c = tf.constant(z0[:1]), tf.zeros((1, 256)), tf.zeros((1, 256))
    one_step(p, z, h, c, tf.constant([0, 0], tf.int64))
    started = time.perf_counter()
    total = 0.0
    for t in range(naive_steps):
        z, h, c, reward, done = one_step(p, z, h, c, tf.constant([1, t], tf.int64))
        total += float(reward[0])
        if bool(done[0]):
            break
    naive_rate = naive_steps / (time.perf_counter() - started)
    log(f"dream: batched {batched_rate:.0f} agent-steps/s, one rollout at a time "
        f"{naive_rate:.0f} agent-steps/s")
    return [
        _ratio_row("dream: one generation, seconds vs 15 s", wall * 1000 / steps, 15.0, "s",
                   goal_max=1.0,
                   detail=f"{population} x {trials} agents x {steps} steps, median of "
                          f"{generations} generation(s)"
                          + ("" if steps == 1000 else ", scaled to 1,000 steps")),
        _ratio_row("dream: batched vs one-rollout loop agent-steps/s", batched_rate,
                   naive_rate, "agent-steps/s", goal_min=50.0,
                   detail=f"loop: {naive_steps} steps of one rollout with the same model"),
    ]


def _dream_seconds(z_size: int, hidden: int, env_id: str, agents: int, steps: int) -> float:
    """Seconds of one batched dream of ``agents`` x ``steps`` (every dream runs to the end)."""
    from worldmodels.envs import get_env
    from worldmodels.model.controller import Controller
    from worldmodels.model.dream import make_dream, run_dream
    from worldmodels.model.rnn import MDNRNN

    rnn = MDNRNN(z_size, hidden, 5, action_size=get_env(env_id).action_size)
    rnn.done_head.kernel.assign(np.zeros(rnn.done_head.kernel.shape, np.float32))
    rnn.done_head.bias.assign([-1000.0])
    spec = Controller("zh", z_size, hidden, env_id)
    rng = np.random.default_rng(0)
    params = rng.normal(0, 0.1, (agents, spec.param_count)).astype(np.float32)
    z0 = rng.normal(size=(agents, z_size)).astype(np.float32)
    dream = make_dream(rnn, spec)
    run_dream(dream, params, z0, 1.15, 2, 0)  # trace
    started = time.perf_counter()
    _, lengths = run_dream(dream, params, z0, 1.15, steps, 1)
    assert lengths.min() == steps, "every dream must run to the end for the benchmark"
    return time.perf_counter() - started


def _bench_doom_dream(population: int, trials: int, steps: int, log) -> list[Row]:
    agents = population * trials
    doom = _dream_seconds(64, 512, TAKECOVER, agents, steps)
    car = _dream_seconds(32, 256, "CarRacing-v3", agents, steps)
    log(f"doom-dream: {agents} agents x {steps} steps in {doom:.1f} s (CarRacing's M: "
        f"{car:.1f} s)")
    return [_ratio_row("doom-dream: one generation (z 64, LSTM 512), seconds vs CarRacing's",
                       doom, car, "s", goal_max=4.0,
                       detail=f"{population} x {trials} agents x {steps} steps; an LSTM of "
                              "512 does 4x the multiply-adds of 256")]


# ---------------------------------------------------------------------------------------------
# the real env


def bench_real(workers: int, episodes: int, max_steps: int, log) -> list[Row]:
    """The agent (untrained V, M and C of the paper's sizes, some gas so the car drives) over
    ``episodes`` real episodes on ``workers`` local worker processes, against the same worker
    processes replaying the recorded actions on the same tracks with no model. Both are timed
    after their workers have started and built what they hold."""
    from worldmodels.core.workers import LocalBackend
    from worldmodels.envs.shared import EnvSetup, replay_episodes
    from worldmodels.model.agent import (
        EPISODES_PER_TASK,
        AgentSetup,
        episode_tasks,
        run_real_episodes,
        warm_up,
    )
    from worldmodels.model.controller import Controller
    from worldmodels.model.rnn import MDNRNN
    from worldmodels.model.vae import ConvVAE

    env_id = "CarRacing-v3"
    spec = Controller("zh", 32, 256)
    world = {"vae": ConvVAE(32), "rnn": MDNRNN(32, 256, 5), "z_size": 32, "hidden_size": 256,
             "env_id": env_id}
    setup = AgentSetup.from_world(world, spec, max_steps, noise_seed=0)
    rng = np.random.default_rng(0)
    params = rng.normal(0, 0.1, (episodes, spec.param_count)).astype(np.float32)
    params[:, -2] += 1.0  # some gas, so that the car drives
    seeds = [10_000 + i for i in range(episodes)]
    actions: dict = {}
    with LocalBackend(workers) as backend:
        list(backend.run(warm_up, dict.fromkeys(range(workers)), shared=setup))
        started = time.perf_counter()
        run_real_episodes(backend, setup, params, seeds, progress=False, record="actions",
                          on_recorded=actions.__setitem__)
        wall = time.perf_counter() - started
    steps = sum(len(a) for a in actions.values())
    tasks = {k: [(seeds[e], actions[e]) for e in indices]
             for k, indices in enumerate(episode_tasks(episodes))}
    envs = EnvSetup(env_id, max_steps, EPISODES_PER_TASK)
    with LocalBackend(workers) as backend:
        list(backend.run(replay_episodes, {w: [(0, [])] for w in range(workers)}, shared=envs))
        started = time.perf_counter()
        raw_steps = sum(n for _, n in backend.run(replay_episodes, tasks, shared=envs))
        raw_wall = time.perf_counter() - started
    assert raw_steps == steps, f"replayed {raw_steps} steps of {steps}"
    log(f"real: agent {steps / wall:.0f} steps/s, replay without model "
        f"{raw_steps / raw_wall:.0f} steps/s")
    return [_ratio_row("real: V+M+C wall time vs raw env stepping", wall, raw_wall, "s",
                       goal_max=1.2,
                       detail=f"{workers} processes, {episodes} episodes x {max_steps} steps, "
                              f"{EPISODES_PER_TASK} per task; the raw run replays the same "
                              "actions on the same tracks")]


# ---------------------------------------------------------------------------------------------


def _scale(quick: bool, workers: int) -> dict:
    if quick:
        return dict(collect_episodes=2 * workers, collect_steps=250, stream_batches=30,
                    memory_episodes=4, memory_copies=10, generations=1, naive_steps=200,
                    real_episodes=4 * workers, real_steps=300)  # one episode per env slot
    return dict(collect_episodes=2 * workers, collect_steps=1000, stream_batches=100,
                memory_episodes=4, memory_copies=10, generations=3, naive_steps=1000,
                real_episodes=8 * workers, real_steps=1000)  # two per env slot


def measure(target: str, quick: bool, workers: int, root: Path, log=print) -> list[Row]:
    """One target, in this process (``run_bench`` gives each target a fresh process)."""
    scale = _scale(quick, workers)
    if target == "startup":
        return bench_startup(log)
    if target == "collect":
        return bench_collect(root, workers, scale["collect_episodes"], scale["collect_steps"],
                             log)
    if target == "stream":
        return bench_stream(root, log, batches=scale["stream_batches"])
    if target == "memory":
        return bench_memory(root, scale["memory_episodes"], scale["memory_copies"], log)
    if target == "dream":
        return bench_dream(64, 16, 1000, scale["naive_steps"], log,
                           generations=scale["generations"])
    if target == "real":
        return bench_real(workers, scale["real_episodes"], scale["real_steps"], log)
    if target == "doom-collect":
        return bench_collect(root, workers, scale["collect_episodes"], 2100, log,
                             env_id=TAKECOVER, policy="repeat")
    if target == "doom-dream":
        return bench_dream(64, 16, 2100 if not quick else 200, 0, log, env_id=TAKECOVER)
    if target == "ray-collect":
        return bench_ray_collect(root, workers, scale["collect_episodes"],
                                 scale["collect_steps"], log)
    raise ValueError(f"unknown target {target!r}")


def run_bench(targets, quick: bool, workers: int, log=print) -> dict:
    """Measure ``targets``, each in a fresh process (so that no target inherits another's
    threads, memory or caches); returns the bench.json payload."""
    order = [t for t in TARGETS if t in targets]
    if ("stream" in order or "memory" in order) and "collect" not in order:
        order.insert(1 if order[0] == "startup" else 0, "collect")  # they train on its rollouts
    rows: list[dict] = []
    root = Path(tempfile.mkdtemp(prefix="worldmodels-bench-"))
    started = time.time()
    try:
        for target in order:
            measured = _in_subprocess(target, quick, workers, root, log)
            if target in targets:
                rows += measured
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": machine(),
        "quick": quick,
        "workers": workers,
        "wall_seconds": round(time.time() - started, 1),
        "rows": rows,
        "all_met": all(row["met"] for row in rows),
    }


def _in_subprocess(target, quick, workers, root, log) -> list[dict]:
    import json

    from worldmodels.errors import WorldModelsError

    command = [sys.executable, "-m", "worldmodels.bench", target, str(workers), str(root)]
    command += ["--quick"] if quick else []
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    rows = None
    for line in process.stdout:
        if line.startswith("ROWS "):
            rows = json.loads(line[5:])
        else:
            log(line.rstrip())
    error = process.stderr.read()
    if process.wait() != 0 or rows is None:
        last = [line for line in error.splitlines() if line.strip()][-1:] or ["no output"]
        raise WorldModelsError(f"bench target {target} failed: {last[0]}")
    return rows


def table(payload: dict) -> str:
    """The Markdown table of a bench.json payload."""
    lines = [f"`worldmodels bench{' --quick' if payload['quick'] else ''}`, "
             f"{payload['date']}, {payload['machine']}, {payload['workers']} workers, "
             f"{payload['wall_seconds']:.0f} s", "",
             "| target | figure | baseline | ratio | goal | met |",
             "|---|---|---|---|---|---|"]
    for row in payload["rows"]:
        lines.append(f"| {row['target']} | {row['figure']:,.1f} {row['unit']} | "
                     f"{row['baseline']:,.1f} {row['unit']} | {row['ratio']:.2f} | "
                     f"{row['goal']} | {'yes' if row['met'] else '**no**'} |")
    return "\n".join(lines)



if __name__ == "__main__":
    import json

    _target, _workers, _root = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    _rows = measure(_target, "--quick" in sys.argv, _workers, _root, log=print)
    print("ROWS " + json.dumps([asdict(row) for row in _rows]), flush=True)


def write_bench(targets, quick: bool, workers: int | None, results_dir: Path, log=print):
    """Measure ``targets`` and write RESULTS/bench.json; returns (its path, the table, the
    targets missed)."""
    from worldmodels.core.artifacts import ensure_writable, write_json
    from worldmodels.envs.shared import default_workers

    ensure_writable(results_dir)
    payload = run_bench(targets, quick, default_workers(workers), log=log)
    path = Path(results_dir) / "bench.json"
    write_json(path, payload)
    missed = [row["target"] for row in payload["rows"] if not row["met"]]
    return path, table(payload), missed
