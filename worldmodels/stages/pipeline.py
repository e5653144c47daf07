"""`worldmodels pipeline`: every stage in order for a preset."""

from __future__ import annotations

import time

from worldmodels.config import (
    Preset,
)
from worldmodels.core.artifacts import (
    Layout,
    read_json,
    write_json,
)
from worldmodels.stages.base import StageResult, _done, _iterating, check_seed, say
from worldmodels.stages.iterate import iterate
from worldmodels.stages.score import evaluate, fidelity, resolution
from worldmodels.stages.train import collect, encode, train_controller, train_rnn, train_vae
from worldmodels.stages.view import report

PIPELINE = ("collect", "train-vae", "encode", "train-rnn", "train-controller", "iterate",
            "evaluate")


PER_VARIANT = ("train-controller", "evaluate")


def pipeline(layout: Layout, preset: Preset, seed: int = 0, preset_name: str = "small",
             variants=("zh",), redo: bool = False, progress: bool = True,
             log=say) -> StageResult:
    """collect, train-vae, encode, train-rnn, train-controller (dream), iterate (when the
    preset has rounds) and evaluate (real) for each of ``variants``, fidelity and resolution
    of the zh controller, then REPORT.md. Stages
    whose outputs are complete are skipped (``redo``: each is forced)."""
    started = time.time()
    check_seed(seed)
    run = {
        "collect": lambda v: collect(layout, preset.collect, seed, redo, None, progress, log),
        "train-vae": lambda v: train_vae(layout, preset.vae, seed, redo, False, progress, log),
        "encode": lambda v: encode(layout, seed, redo, False, progress, log),
        "train-rnn": lambda v: train_rnn(layout, preset.rnn, seed, redo, progress, log),
        "train-controller": lambda v: train_controller(layout, preset.controller, seed, v,
                                                       redo, None, progress, log),
        "iterate": lambda v: iterate(layout, preset.iterate, seed, None, None, progress, log),
        "evaluate": lambda v: evaluate(layout, preset.evaluate, seed, variant=v, force=redo,
                                       progress=progress, log=log),
        "fidelity": lambda v: fidelity(layout, preset.fidelity, seed, v, force=redo,
                                       progress=progress, log=log),
        "resolution": lambda v: resolution(layout, preset.resolution, seed, v, force=redo,
                                           progress=progress, log=log),
    }
    timings_path = layout.experiment / "pipeline.json"
    timings = read_json(timings_path) if timings_path.exists() else {}
    # The zh controller comes before iterate, which trains it (and M) further; the variants'
    # controllers are then trained in the final M's dream.
    steps = [(stage, "zh") for stage in PIPELINE[:PIPELINE.index("train-controller")]]
    if "zh" in variants and preset.iterate.rounds > 0:
        steps += [("train-controller", "zh"), ("iterate", "zh")]
    steps += [(stage, variant) for variant in variants for stage in PER_VARIANT
              if (stage, variant) not in steps]
    if "zh" in variants:  # how far the final dream is from reality, for the report
        steps.append(("fidelity", "zh"))
        if preset.resolution.enabled:  # whether it ranks drivers as the real env does
            steps.append(("resolution", "zh"))
    if ("iterate", "zh") in steps and (number := _iterating(layout.rnn, "train-rnn")):
        # Its data, series, M and C are the round's own, mid-way: only iterate continues them.
        log(f"== iterate's round {number} is unfinished: going on with it")
        steps = steps[steps.index(("iterate", "zh")):]
    for stage, variant in steps:
        label = stage if variant == "zh" else f"{stage}-{variant}"
        log(f"== {label}")
        stage_started = time.time()
        result = run[stage](variant)
        for line in result.lines():
            log(line)
        if result.complete:
            log(f"== {label}: complete, skipped")
            continue
        timings[label] = round(time.time() - stage_started, 1)
        write_json(timings_path, {**timings, "preset": preset_name, "seed": seed})
    log(f"wrote {timings_path}")
    log("== report")
    written = report(layout, preset_name, log).written
    log(f"wrote {written[0]}")
    return _done("pipeline", started, f"pipeline ({preset_name}): done",
                 [timings_path, *written])
