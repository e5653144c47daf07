"""The stages that show a trained experiment: enjoy (videos), show (pictures of V, M and C),
report (REPORT.md)."""

from __future__ import annotations

import time

from worldmodels.config import (
    CollectConfig,
    EvaluateConfig,
    validate,
)
from worldmodels.core.artifacts import (
    Layout,
    ensure_writable,
)
from worldmodels.errors import WorldModelsError
from worldmodels.stages.base import StageResult, _done, check_seed, say, setup_tensorflow


def enjoy(layout: Layout, config: EvaluateConfig, seed: int = 0, trained_in: str = "dream",
          variant: str = "zh", params: str = "best", episode_index: int = 0, episodes: int = 1,
          track_seed: int | None = None, round: int = 0, gif: bool = False,
          progress: bool = True, log=say) -> StageResult:
    """Videos of the agent on `evaluate`'s tracks (``config``: its max_steps and noise), or on
    the track of ``track_seed``, into RESULTS/NAME/enjoy/."""
    from worldmodels.core.device import setup_gpu
    from worldmodels.views.enjoy import enjoy as film

    started = time.time()
    validate(config), check_seed(seed)
    if episodes < 1 or episode_index < 0 or round < 0:
        raise WorldModelsError("--episodes must be at least 1, --episode-index and --round at "
                               "least 0")
    if track_seed is not None and episodes != 1:
        raise WorldModelsError("--track-seed drives one track: leave --episodes at 1")
    setup_tensorflow(seed, threads=1)  # one thread, as in `evaluate`'s workers
    setup_gpu()
    records = film(layout.at_round(round), trained_in, variant, params, config, seed,
                   episode_index, episodes, track_seed, gif, progress)
    written = [path for r in records for path in ([r["video"], r["gif"]] if gif else [r["video"]])]
    done = _done("enjoy", started, f"enjoy: {episodes} episode(s) of the controller trained in "
                                   f"the {trained_in}", written, records=records)
    done.details = [f"track {r['seed']}: return {r['return']:.1f} in {r['length']} steps"
                    for r in records]
    return done


def show(layout: Layout, collect_config: CollectConfig, seed: int = 0, variant: str = "zh",
         trained_in: str = "dream", params: str = "best", temperature: float | None = None,
         log=say) -> StageResult:
    """Pictures of V, M and C into RESULTS/NAME/figures: V's reconstructions and traversal, M's
    open-loop predictions on a fresh real episode of ``collect_config``'s policy, a GIF of the
    dream C was trained in (its burn-in, dropout and action noise), and the training curves.
    Parts whose stage has not run are skipped with the command that runs them."""
    from worldmodels.scoring.compare import output_stem
    from worldmodels.views import show as draw

    started = time.time()
    check_seed(seed)
    if temperature is not None:
        validate(EvaluateConfig(temperature=temperature))
    vae_manifest = draw.require_vae(layout)
    directory = layout.experiment / "figures"
    ensure_writable(directory)
    setup_tensorflow(seed)
    world, dreamer = draw.load_for_show(layout, trained_in, variant, params, log)
    episode = draw.real_episode(collect_config.env_id, collect_config.policy,
                                min(collect_config.max_steps, draw.REAL_STEPS), seed)
    if world is None:
        from worldmodels.model.vae import load_vae

        vae = load_vae(layout.vae, vae_manifest["config"]["z_size"])
    else:
        vae = world.vae
    written = draw.draw_vae(vae, episode["frames"], directory)
    if world:
        written.append(draw.draw_open_loop(vae, world.rnn, episode, directory))
    if dreamer:
        spec, flat, dreamt = dreamer
        path = directory / f"dream-{output_stem(trained_in, variant, params)}.gif"
        path, record = draw.draw_dream(world, dreamt, spec, flat, seed, path, temperature)
        log(f"dream GIF: {draw.describe_dream(record)}")
        written += [path, path.with_suffix(".json")]
    written += draw.draw_curves(layout, directory)
    return _done("show", started, f"show: {len(written)} figures in {directory}", written)


def report(layout: Layout, preset_name: str = "small", log=say) -> StageResult:
    """RESULTS/NAME/REPORT.md from the files the stages wrote (nothing is re-run);
    ``preset_name`` only shapes the commands it names for parts not run yet."""
    from worldmodels.views.report import write_report

    started = time.time()
    if not layout.experiment.is_dir():
        raise WorldModelsError(f"no experiment at {layout.experiment}: run `worldmodels "
                               f"pipeline --preset {preset_name} --name {layout.name}` first")
    return _done("report", started, f"report: {layout.experiment / 'REPORT.md'}",
                 [write_report(layout, preset_name)])
