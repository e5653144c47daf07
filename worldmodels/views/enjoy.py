"""Watch the trained agent drive: `worldmodels enjoy` runs V + M + C on real tracks and writes
each episode as an MP4 (and a GIF if asked) of the env's own view beside what V sees (its
reconstruction of the agent's input frame), with C's actions and the running return drawn
under them, and the episode's JSON, in RESULTS/NAME/enjoy/.

The agent runs in this process with the step `evaluate`'s workers use (``worldmodels.model.agent``),
on `evaluate`'s tracks, in the same groups of episodes run in lockstep (a batched forward
pass's floats depend on the batch's shape): an episode's return is the one `evaluate` reports
for its track. The large view is drawn afterwards by replaying the episode's actions on the
same track in an env that renders (the physics do not depend on rendering)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from worldmodels.config import EvaluateConfig
from worldmodels.core.artifacts import (
    VERSION,
    Layout,
    atomic_path,
    code_commit,
    require_manifest,
    variant_suffix,
    write_json,
)
from worldmodels.data.collect import episode_seeds
from worldmodels.envs import get_env
from worldmodels.errors import WorldModelsError
from worldmodels.model.agent import AgentSetup, episode_tasks, run_agent_episodes
from worldmodels.scoring.evaluation import load_trained
from worldmodels.scoring.scorers import EVALUATE_STAGE_KEY

PANEL = 256  # height of the two views in the video
BAND = 32  # the strip under them: action bars and the running return
VIEW_WIDTH = PANEL * 3 // 2  # the env's 600x400 view keeps its shape
WIDTH = VIEW_WIDTH + PANEL  # 640 x 288: both multiples of 16, as H.264 wants
FPS = 50  # CarRacing's own frame rate: the video plays in real time
GIF_EVERY = 2  # the GIF keeps every second frame, at half size


def enjoy(layout: Layout, trained_in: str, variant: str, params_name: str,
          config: EvaluateConfig, seed: int, episode_index: int = 0, episodes: int = 1,
          track_seed: int | None = None, gif: bool = False, progress: bool = True) -> list[dict]:
    """Drive `evaluate`'s tracks ``episode_index`` .. ``episode_index + episodes - 1`` (of its
    ``config.episodes``, from run seed ``seed``), or the one track of ``track_seed``, with the
    controller trained in ``trained_in`` (its ``params_name`` parameters, action noise
    ``config.noise``); writes a video and a JSON per episode and returns the JSONs."""
    directory = layout.controller(trained_in, variant)
    manifest = require_manifest(directory, f"controller trained in the {trained_in}",
                                f"train-controller --where {trained_in} --variant {variant}")
    world, spec, flat, _ = load_trained(layout, manifest, directory, params_name, variant,
                                        need_vae=True, dreams=False)
    setup = AgentSetup.from_world(world, spec, config.max_steps, seed)
    worker = setup.build()
    name = f"{trained_in}{variant_suffix(variant)}-{params_name}" + (
        f"-noise{config.noise:g}" if config.noise else "")
    folder = (Path(layout.outputs) if layout.outputs else layout.runs) / "enjoy"
    written = []
    for task, seeds, chosen in plan(config.episodes, seed, episode_index, episodes, track_seed):
        runs = run_agent_episodes(worker, [(s, flat, "episode" if i in chosen else False,
                                            config.noise) for i, s in zip(task, seeds)])
        for i, s, (value, steps, recorded) in zip(task, seeds, runs):
            if i not in chosen:
                continue
            label = f"seed{s}" if track_seed is not None else f"track{i}"
            record = {"env": world.env_id, "max_steps": config.max_steps, "seed": s,
                      "run_seed": seed, "episode_index": None if track_seed is not None else i,
                      "task": task if track_seed is None else [], "return": value,
                      "length": steps, "params": params_name, "variant": variant,
                      "controller": layout.controller_name(directory), "noise": config.noise,
                      "controller_run_id": manifest.get("run_id"), "round": layout.round,
                      "version": VERSION, "code": code_commit()}
            record.update(write_videos(world.vae, recorded, config, s, folder,
                                       f"{name}-{label}", gif, progress, world.env_id))
            write_json(folder / f"{name}-{label}.json", record)
            written.append(record)
    return written


def plan(count: int, seed: int, first: int, episodes: int, track_seed: int | None) -> list:
    """The lockstep groups to run: [(episode indices, their track seeds, the indices to
    film)]; `evaluate`'s own groups of its ``count`` tracks, or one track of its own."""
    if track_seed is not None:
        return [([0], [int(track_seed)], {0})]
    if first < 0 or episodes < 1 or first + episodes > count:
        raise WorldModelsError(f"`evaluate` runs tracks 0 to {count - 1}: tracks {first} to "
                               f"{first + episodes - 1} are not among them")
    seeds = episode_seeds(seed, count, EVALUATE_STAGE_KEY)
    wanted = set(range(first, first + episodes))
    return [(task, [seeds[i] for i in task], wanted & set(task))
            for task in episode_tasks(count) if wanted & set(task)]


def write_videos(vae, recorded: dict, config: EvaluateConfig, track_seed: int,
                 directory: Path, stem: str, gif: bool, progress: bool,
                 env_id: str = "CarRacing-v3") -> dict:
    """The episode's MP4 (and GIF): the replayed env's view, V's reconstruction of each frame
    the agent saw, its action and the return so far. Returns the files written."""
    import imageio.v2 as imageio

    from worldmodels.model.vae import encode_frames

    mu, _ = encode_frames(vae, recorded["frames"])
    seen = np.concatenate([vae.decode(mu[s:s + 500]).numpy() for s in range(0, len(mu), 500)])
    actions = recorded["actions"]
    directory.mkdir(parents=True, exist_ok=True)
    video = directory / f"{stem}.mp4"
    small = []
    total = 0.0
    # Constant quality 30: flat road and grass compress well; a 1,000-step episode is about
    # 0.5 MB instead of 2.5 MB at imageio's quality 7, the bars and text still sharp.
    with atomic_path(video) as tmp, imageio.get_writer(tmp, fps=FPS, codec="libx264", quality=None,
                            ffmpeg_params=["-crf", "30"], macro_block_size=16) as writer:
        env = get_env(env_id)
        views = replay(config, track_seed, actions, env_id)
        for t, (view, reward) in enumerate(tqdm(views, total=len(actions) + 1, desc="video",
                                                disable=not progress)):
            total += reward
            action = actions[t] if t < len(actions) else np.zeros(env.action_size, np.float32)
            frame = compose(view, seen[t], action, t, total, env)
            writer.append_data(frame)
            if gif and t % GIF_EVERY == 0:
                small.append(frame[::2, ::2])
    if not np.isclose(total, recorded["rewards"].sum(), atol=1e-6):
        raise WorldModelsError(f"the replay of track {track_seed} returned {total:.3f}, the "
                               f"agent {recorded['rewards'].sum():.3f}: the env is not "
                               "deterministic here")
    files = {"video": str(video), "frames": len(actions) + 1}
    if gif:
        path = directory / f"{stem}.gif"
        with atomic_path(path) as tmp:
            imageio.mimsave(tmp, small, duration=1000 * GIF_EVERY / FPS, loop=0)
        files["gif"] = str(path)
    return files


def replay(config: EvaluateConfig, track_seed: int, actions: np.ndarray,
           env_id: str = "CarRacing-v3"):
    """(the env's large view, the step's reward) after the reset and after each action."""
    spec = get_env(env_id)
    env = spec.make(config.max_steps, render_mode="rgb_array")
    try:
        env.reset(seed=int(track_seed))
        yield spec.view(env), 0.0
        for action in actions:
            _, reward, _, _, _ = env.step(action)
            yield spec.view(env), float(reward)
    finally:
        env.close()


def compose(view: np.ndarray, seen: np.ndarray, action: np.ndarray, step: int,
            total: float, env=None) -> np.ndarray:
    """One video frame (288, 640, 3): the env's view, V's reconstruction (in [0, 1]) and a
    strip with the steer, gas and brake bars and the return so far."""
    from PIL import Image, ImageDraw

    canvas = Image.new("RGB", (WIDTH, PANEL + BAND), "black")
    canvas.paste(Image.fromarray(view).resize((VIEW_WIDTH, PANEL), Image.BILINEAR), (0, 0))
    seen = Image.fromarray((np.clip(seen, 0, 1) * 255).astype(np.uint8))
    canvas.paste(seen.resize((PANEL, PANEL), Image.NEAREST), (VIEW_WIDTH, 0))
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 2), "real env", fill="white")
    draw.text((VIEW_WIDTH + 4, 2), "what V sees (reconstruction)", fill="white")
    top, bottom = PANEL + 10, PANEL + BAND - 6
    env = env or get_env("CarRacing-v3")
    bars = []
    for index, (label, value) in enumerate(zip(env.action_labels, action)):
        low, high = float(env.low[index]), float(env.high[index])
        start = (0.0 - low) / (high - low)  # a bar grows from 0, wherever 0 sits in the box
        end = (float(value) - low) / (high - low)
        bars.append((4 + 130 * index, label, start, end,
                     ("deepskyblue", "limegreen", "red")[index % 3]))
    for x, label, start, end, colour in bars:
        left, width = x + 38, 80
        draw.text((x, top), label, fill="white")
        draw.rectangle((left, top, left + width, bottom), outline="gray")
        a, b = sorted((left + width * start, left + width * end))
        draw.rectangle((a, top + 1, max(a, b), bottom - 1), fill=colour)
    draw.text((404, top), f"step {step:4d}   return {total:7.1f}", fill="white")
    return np.asarray(canvas)
