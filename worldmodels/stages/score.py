"""The scoring stages: evaluate, compare, temperatures, fidelity (and M alone on held-out
episodes, held_out), select, resolution. Each writes one result per controller under its own
lock, keeps an earlier result of the same controller and settings, and replaces one of another
controller (``base._refuse_other``)."""

from __future__ import annotations

import time
from pathlib import Path

from worldmodels.config import (
    CompareConfig,
    EvaluateConfig,
    Preset,
    to_dict,
    validate,
)
from worldmodels.core.artifacts import (
    WORLD_INPUTS,
    Layout,
    input_run_ids,
    read_json,
    refuse_link,
    require_manifest,
    write_json,
)
from worldmodels.errors import WorldModelsError
from worldmodels.stages.base import (
    StageResult,
    _at_round,
    _chosen,
    _done,
    _kept,
    _reads,
    _scoring,
    _skipped,
    _trained,
    _world,
    _world_and,
    check_seed,
    say,
    setup_tensorflow,
)
from worldmodels.stages.train import train_controller


def _judged(a) -> list[Path]:
    """evaluate's inputs: V, M and C, and a judge's M."""
    judge = a.get("judge")
    return _world_and()(a) + ([a["layout"].in_results(judge).rnn] if judge else [])


@_reads("evaluate", _judged)
def evaluate(layout: Layout, config: EvaluateConfig, seed: int = 0, where: str = "real",
             trained_in: str = "dream", variant: str = "zh", params: str = "best",
             round: int = 0, force: bool = False, ray_address: str | None = None,
             progress: bool = True, log=say, judge: Path | None = None) -> StageResult:
    """A trained agent scored in the real env (or the dream), into
    RESULTS/NAME/evaluate/WHERE-TRAINED_IN[-VARIANT]-PARAMS[-noiseSTD][-seedN].json (-seedN:
    episodes of another seed than the one C was trained with, e.g. validation). An earlier
    evaluation of the same controller with other options is replaced only with ``force``.
    With ``judge`` (a results root holding an experiment of this name, data and V), C is
    dreamt in that experiment's M instead of its own: -judge-RUNID.json."""
    from worldmodels.scoring.evaluation import SELECTED, check_selection
    from worldmodels.scoring.evaluation import evaluate as run_evaluation

    started = time.time()
    validate(config), check_seed(seed)
    if config.noise and where != "real":
        raise WorldModelsError("--noise runs only with --where real")
    if ray_address and where != "real":
        raise WorldModelsError("--ray-address runs only with --where real")
    if judge is not None and where != "dream":
        raise WorldModelsError("--judge runs only with --where dream")
    if round < 0:
        raise WorldModelsError(f"expected a round number ≥ 1, got {round}")
    layout = _at_round(layout, round)
    directory, controller = _trained(layout, trained_in, variant)
    trained_noise = float(controller["config"].get("action_noise", 0.0))
    if where == "real" and config.noise != trained_noise:
        log(f"evaluate: C was scored in the {trained_in} with action noise {trained_noise:g}; "
            f"this evaluation drives it with {config.noise:g}")
    judged = None
    if judge is not None:
        judged = layout.in_results(judge)
        judge_id = require_manifest(judged.rnn, "trained M to judge with", "train-rnn")["run_id"]
    # Episodes of another seed than C's own (a validation) go beside the run's figure.
    other_seed = None if seed == controller.get("seed") else seed
    path = layout.evaluation(where, trained_in, variant, params, config.noise,
                             judge_id if judged else None, other_seed)
    partial = path.with_name(path.stem + ".partial.json")
    refuse_link(path), refuse_link(partial)  # before any episode runs, not when writing
    selection = check_selection(directory, controller) if params == SELECTED else None
    chosen = _chosen(selection["selected"]) if selection else None
    world = input_run_ids(layout, WORLD_INPUTS)
    with _scoring(layout.evaluations, "evaluate", f".{path.stem}.lock", force, partial):
        old = _kept(path, force, lambda old: (
            old.get("controller_run_id") == controller.get("run_id")
            and _chosen(old.get("selection")) == chosen,
            # (evaluations written before --noise existed had none; a real evaluation does
            # not dream, so its temperature is no option of it)
            _settings({"noise": 0.0, **(old.get("config") or {})}, where)
            == _settings(to_dict(config), where) and old.get("seed") == seed),
            log, "an earlier run of the controller or an earlier selection",
            ("evaluate", world, controller))
        if old is not None:
            return _skipped("evaluate", path, f"evaluate: complete in {path} ({old['mean']:.1f} "
                                              f"± {old['std']:.1f}); add --force to redo it")
        setup_tensorflow(seed)
        result = run_evaluation(layout, controller, directory, params, where, config, seed,
                                progress, partial_path=partial, variant=variant,
                                ray_address=ray_address, judge=judged, name=path.stem)
        result.update(config=to_dict(config), seed=seed, wall_seconds=time.time() - started,
                      inputs=world,
                      **({"round": round} if round else {}))
        if selection:  # real episodes chose it: never the pure dream figure
            result["selection"] = {"label": "dream-trained, real-selected",
                                   "validation_episodes": len(selection["tracks"]),
                                   **selection["selected"]}
        write_json(path, result)
    noise = f", action noise {config.noise:g}" if config.noise else ""
    if "selection" in result:
        noise += ", dream-trained, real-selected"
    return _done("evaluate", started,
                 f"evaluate ({where}, {result['episodes']} episodes{noise}): "
                 f"{result['mean']:.1f} ± {result['std']:.1f}", [path], **result)


@_reads("compare", _world_and())
def compare(layout: Layout, config: CompareConfig, seed: int = 0, trained_in: str = "dream",
            variant: str = "zh", params: str = "best", force: bool = False,
            progress: bool = True, log=say) -> StageResult:
    """A trained controller in the dream at several temperatures and in the real env, into
    RESULTS/NAME/compare/CONTROLLER-PARAMS.{md,json,csv,png}."""
    from worldmodels.scoring.compare import compare as run_compare
    from worldmodels.scoring.compare import (
        comparison_key,
        markdown_table,
        output_stem,
        write_comparison,
    )

    started = time.time()
    validate(config), check_seed(seed)
    directory, controller = _trained(layout, trained_in, variant)
    stem = output_stem(trained_in, variant, params)
    output = layout.experiment / "compare"
    path, partial = output / f"{stem}.json", output / f"{stem}.partial.json"
    for name in (path, partial, *(output / f"{stem}.{ext}" for ext in ("csv", "md", "png"))):
        refuse_link(name)  # before any episode runs, not when writing
    key = comparison_key(controller, params, variant, config, seed)
    world = input_run_ids(layout, WORLD_INPUTS)
    with _scoring(output, "compare", f".{stem}.lock", force, partial):
        if _kept(path, force, lambda old: ((old.get("key") or {}).get("controller")
                                           == key["controller"], old.get("key") == key), log,
                 world=("compare", world, controller)):
            return _skipped("compare", path)
        setup_tensorflow(seed)
        result = run_compare(layout, controller, directory, params, variant, config, seed,
                             partial, progress=progress, log=log)
        result["inputs"] = world
        written = write_comparison(result, output, stem)
    done = _done("compare", started,
                 f"compare: real {result['real']['mean']:.1f} ± {result['real']['std']:.1f} "
                 f"over {result['episodes']} episodes; dream at {len(result['rows'])} "
                 "temperatures", written, **result)
    done.details = ["", markdown_table(result)]
    return done


def temperatures(layout: Layout, preset: Preset, seed: int = 0, force: bool = False,
                 progress: bool = True, log=say) -> StageResult:
    """The paper's temperature table: for each temperature of ``preset.compare``, C trained
    only in the dream at it (``preset.controller`` otherwise), then scored in that dream and
    in the real env (``preset.compare.episodes`` each), beside the paper's figures and the
    random policy; into RESULTS/NAME/temperatures/ (tau-T/ holds each C and its scores,
    table.{json,md,png} the table). Each C and each score resumes on its own."""
    import dataclasses

    from worldmodels.model.world import experiment_env
    from worldmodels.scoring import temperatures as table

    started = time.time()
    config = validate(preset.compare)
    check_seed(seed)
    env = experiment_env(layout)
    output = layout.runs / "temperatures"
    rows = []
    for tau in config.temperatures:
        log(f"== temperature {tau:g}")
        here = layout.at_temperature(tau)
        trained = train_controller(here, dataclasses.replace(preset.controller, temperature=tau),
                                   seed, force=force, progress=progress, log=log)
        for line in trained.lines():
            log(line)
        scores = {}
        for where in ("dream", "real"):
            evaluation = dataclasses.replace(preset.evaluate, episodes=config.episodes,
                                             max_steps=config.max_steps, temperature=tau)
            result = evaluate(here, evaluation, seed, where=where, force=force,
                              progress=progress, log=log)
            for line in result.lines():
                log(line)
            scores[where] = read_json(here.evaluation(where, "dream", "zh", "best"))
        rows.append({"temperature": tau, "episodes": config.episodes,
                     "dream_mean": scores["dream"]["mean"], "dream_std": scores["dream"]["std"],
                     "real_mean": scores["real"]["mean"], "real_std": scores["real"]["std"]})
    log("== random policy")
    random = table.random_row(env.id, config.max_steps, config.episodes, seed)
    result = table.table(env.id, rows, random)
    result.update(seed=seed, config=to_dict(config), wall_seconds=time.time() - started)
    written = table.write(result, output)
    return _done("temperatures", started, "temperatures:\n" + table.markdown(result).rstrip(),
                 written, **result)


@_reads("fidelity", _world_and("dream"))
def fidelity(layout: Layout, config, seed: int = 0, variant: str = "zh", params: str = "best",
             round: int = 0, force: bool = False, ray_address: str | None = None,
             progress: bool = True, log=say) -> StageResult:
    """M measured against the controller's own real episodes (``config``: a FidelityConfig),
    into RUNS/fidelity/dream[-VARIANT]-PARAMS.{json,png}."""
    from worldmodels.scoring.fidelity import fidelity_key, fidelity_path, run_fidelity

    started = time.time()
    validate(config), check_seed(seed)
    layout = _at_round(layout, round)
    controller = require_manifest(layout.controller("dream", variant),
                                  "controller trained in the dream",
                                  f"train-controller --variant {variant}")
    path, key = fidelity_path(layout, variant, params), fidelity_key(config, seed, controller)
    with _scoring(path.parent, "fidelity", f".{path.stem}.lock", force):
        old = _kept(path, force, lambda old: (
            old.get("controller_run_id") == key["controller_run_id"],
            {k: old.get(k) for k in key} == key), log,
            world=("fidelity", input_run_ids(layout, WORLD_INPUTS), controller))
        if old is not None:
            return _skipped("fidelity", path, f"fidelity: complete in {path}; add --force "
                                              f"to redo it\n{_fidelity_line(old['summary'])}")
        setup_tensorflow(seed)
        path, result = run_fidelity(layout, controller, config, seed, params, variant,
                                    progress, ray_address)
    return _done("fidelity", started, _fidelity_line(result["summary"]),
                 [path, path.with_suffix(".png")], result=result)


@_reads("select", _world_and("dream"))
def select(layout: Layout, config, seed: int = 0, variant: str = "zh", round: int = 0,
           force: bool = False, ray_address: str | None = None, progress: bool = True,
           log=say) -> StageResult:
    """The controllers C passed through in the dream scored on real validation tracks
    (``config``: a SelectConfig); the best becomes ``--params selected``, into
    RUNS/controller-dream[-VARIANT]/selected.npy and selection.{json,png}."""
    from worldmodels.scoring.evaluation import SELECTION
    from worldmodels.scoring.selection import describe
    from worldmodels.scoring.selection import select as run_select

    started = time.time()
    validate(config), check_seed(seed)
    layout = _at_round(layout, round)
    directory, controller = _trained(layout, "dream", variant)
    path, partial = directory / SELECTION, directory / "selection.partial.json"
    with _scoring(directory, "select", ".selection.lock", force, partial):
        old = _kept(path, force, lambda old: _same_run(old, controller, config, seed), log,
                    world=("select", input_run_ids(layout, WORLD_INPUTS), controller))
        if old is not None:
            return _skipped("select", path, f"select: complete in {path} ({describe(old)}, "
                                            f"{old['selected']['mean']:.1f} on validation "
                                            "tracks); add --force to redo it")
        setup_tensorflow(seed)
        result = run_select(layout, controller, directory, config, seed, variant, progress,
                            partial, ray_address)
    chosen, candidates = result["selected"], result["candidates"]
    dream = (f"; the dream orders them with rank correlation {result['rank_correlation']:.2f}, "
             f"its choice drove {result['real_of_dream_choice']:.1f}"
             if "rank_correlation" in result else "")
    done = _done("select", started,
                 f"select: {describe(result)} drove best of {len(candidates)} candidates on "
                 f"{len(result['tracks'])} validation tracks, {chosen['mean']:.1f} ± "
                 f"{chosen['std']:.1f} (the kept best: {candidates[-1]['mean']:.1f}){dream}",
                 [directory / "selected.npy", path, directory / "selection.png"], **result)
    done.details = ["score it on the test tracks with `worldmodels evaluate --params selected` "
                    "(reported as dream-trained, real-selected)"]
    return done


@_reads("resolution", _world_and("dream"))
def resolution(layout: Layout, config, seed: int = 0, variant: str = "zh", round: int = 0,
               force: bool = False, ray_address: str | None = None, progress: bool = True,
               log=say, judge_round: int = 0) -> StageResult:
    """How the dream C was trained in ranks controllers against the real env (``config``: a
    ResolutionConfig): C's checkpoints and a fresh population around its final mean, on
    validation tracks of their own and under several dream seeds, into
    RUNS/controller-dream[-VARIANT]/resolution.{json,png}. With ``judge_round``, the same
    candidates dreamt in the M `iterate` kept after that round instead (an M that C's last
    rounds were not evolved in), into resolution-judge-round-N.{json,png}; the real scores
    come from resolution.json when it scored the same candidates."""
    from worldmodels.scoring.resolution import (
        RESOLUTION,
        as_trained,
        headline,
        judge_path,
        measure,
    )

    started = time.time()
    validate(config), check_seed(seed)
    judge = _at_round(layout, judge_round) if judge_round else None
    layout = _at_round(layout, round)
    directory, controller = _trained(layout, "dream", variant)
    config = as_trained(config, controller)
    path, partial = directory / RESOLUTION, directory / "resolution.partial.json"
    known = _known_real(path, controller, config, seed)
    if judge:
        path = directory / judge_path(judge_round)
    elif known is not None and known.get("config") == to_dict(config):
        known = None  # the same measurement asked for again (--force): the road is driven again
    with _scoring(directory, "resolution", ".resolution.lock", force, partial):
        old = _kept(path, force, lambda old: _same_run(old, controller, config, seed), log,
                    world=("resolution", input_run_ids(layout, WORLD_INPUTS), controller))
        if old is not None:
            return _skipped("resolution", path, f"resolution: complete in {path}; add "
                                                f"--force to redo it\n{headline(old)}")
        if known is not None and known.get("inputs") != input_run_ids(layout, WORLD_INPUTS):
            known = None  # driven with another V or M
        if known is not None and not judge:
            log(f"resolution: the real scores in {path} are reused (the same candidates, "
                "tracks and real-side settings); only the dream is scored again")
        setup_tensorflow(seed)
        result = measure(layout, controller, directory, config, seed, variant, progress,
                         partial, ray_address, judge, known)
    return _done("resolution", started, f"resolution: {headline(result)}",
                 [path, path.with_suffix(".png")], **result)


DREAM_SIDE = ("dream_seeds", "dream_episodes", "workers", "enabled")
"""ResolutionConfig fields that leave the real side of the measurement as it was."""


def _known_real(path: Path, controller: dict, config, seed: int) -> dict | None:
    """The run's own resolution result when it scored this run of C on the same tracks with
    the same real-side settings (only ``DREAM_SIDE`` fields may differ), whose real scores a
    judge or a new dream side reuses; else None (the candidates are driven)."""
    from worldmodels.scoring.resolution import reusable_real

    if not path.exists():
        return None
    old = read_json(path)

    def real_side(settings) -> dict:
        return {k: v for k, v in (settings or {}).items() if k not in DREAM_SIDE}

    same = (old.get("controller_run_id") == controller.get("run_id") and old.get("seed") == seed
            and real_side(old.get("config")) == real_side(to_dict(config)))
    return old if same and reusable_real(old, config.episodes) else None


def _settings(config: dict, where: str) -> dict:
    """An evaluation's options that change its result."""
    from worldmodels.core.artifacts import _comparable

    return {k: v for k, v in _comparable(config).items()
            if not (where == "real" and k == "temperature")}


def _same_run(old: dict, controller: dict, config, seed: int) -> tuple[bool, bool]:
    """Whether an earlier result was made of the same run of the controller, and with the same
    config and seed."""
    return (old.get("controller_run_id") == controller.get("run_id"),
            old.get("config") == to_dict(config) and old.get("seed") == seed)


@_reads("fidelity", _world)
def held_out(layout: Layout, config, name: str, round: int = 0, force: bool = False,
             progress: bool = True, log=say) -> StageResult:
    """M read along the episodes of the held-out collection ``name`` in the same data folder
    (``scoring.held_out``; ``config``: a FidelityConfig for its horizons), before any C, into
    RUNS/fidelity/held-out-NAME.json. Kept while V, M and those episodes are the same."""
    from worldmodels.core.artifacts import VERSION, code_commit
    from worldmodels.model.world import load_world
    from worldmodels.scoring import held_out as measure

    started = time.time()
    validate(config)
    layout = _at_round(layout, round)
    other = measure.held_out_layout(layout, name)
    rollouts = measure.check_held_out(layout, other)
    path = layout.runs / "fidelity" / f"held-out-{name}.json"
    key = {"inputs": {**input_run_ids(layout, WORLD_INPUTS), "held_out": rollouts["run_id"]},
           "horizons": list(config.horizons), "open_loop_stride": config.open_loop_stride}
    with _scoring(path.parent, "fidelity", f".{path.stem}.lock", force):
        old = read_json(path) if not force and path.exists() else None
        if old is not None and {k: old.get(k) for k in key} == key:
            return _skipped("fidelity", path, f"fidelity: complete in {path}; add --force to "
                                              f"redo it\n{measure.describe(old)}")
        setup_tensorflow(0)
        result = measure.measure_held_out(load_world(layout, need_vae=True), other,
                                          config.horizons, config.open_loop_stride, progress)
        result.update(key, version=VERSION, code=code_commit(), held_out=str(other.rollouts),
                      wall_seconds=time.time() - started)
        write_json(path, result)
    return _done("fidelity", started, f"fidelity: {measure.describe(result)}", [path],
                 result=result)


def _fidelity_line(s: dict) -> str:
    ranking = (f"; the dream ranks the next candidates with rank correlation "
               f"{s['rank_correlation']:.2f} to their real scores"
               if "rank_correlation" in s else "")
    limit = (f", {100 * s['dreams_to_the_limit']:.0f} % run to the step limit"
             if "dreams_to_the_limit" in s else "")
    return (f"fidelity: real {s['real_mean']:.1f} ± {s['real_std']:.1f}, dream "
            f"{s['dream_mean']:.1f} ± {s['dream_std']:.1f} "
            f"({100 * s['dreams_above_possible']:.0f} % of dreams pay more than an episode "
            f"can{limit}); M predicts {s['predicted_return_on_real_path']:.1f} along the real "
            f"episodes{ranking}{_endings_line(s)}{_fixed_line(s)}")


def _endings_line(s: dict) -> str:
    from worldmodels.scoring.fidelity import DATA_GROUPS

    parts = [f"the controller's real episodes {100 * s['endings_foreseen']:.0f} %"
             if s.get("endings_foreseen") is not None else None]
    parts += [f"{DATA_GROUPS[group]} {100 * share:.0f} %"
              for group, share in (s.get("endings_on_data") or {}).items()]
    parts = [part for part in parts if part]
    return ("\nendings the dream ends at as the env did: " + "; ".join(parts)) if parts else ""


def _fixed_line(s: dict) -> str:
    from worldmodels.scoring.fidelity import describe_moves

    moves = s.get("real_action_mean")
    line = ("\nthe controller's mean action on the real tracks: " + describe_moves(moves)
            if moves else "")
    fixed = s.get("fixed_actions")
    if fixed:
        line += "\nfixed actions, dream / real: " + "; ".join(
            f"{name} {f['dream']:.1f} / {f['real']:.1f}" for name, f in fixed.items())
    return line
