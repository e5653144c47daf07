"""Every stage as a Python function: the CLI's commands are thin faces over these. The
package's layout is the pipeline's: ``base`` (the stage pattern), ``train`` (collect, V,
encode, M, C), ``score`` (evaluate, compare, temperatures, fidelity, select, resolution),
``view`` (enjoy, show, report), ``iterate`` and ``pipeline``.

Each stage takes a ``Layout`` (where the experiment is), its config dataclass (from a preset,
``worldmodels.config.resolve``) and a seed, and owns start, resume, ``force``, skip-when-
complete and the manifest; it returns a ``StageResult``. A notebook runs the whole method as
the CLI does::

    from worldmodels import stages
    from worldmodels.core.artifacts import Layout
    from worldmodels.config import get_preset

    layout, preset = Layout("data", "results", "mine"), get_preset("smoke")
    stages.pipeline(layout, preset, seed=0, preset_name="smoke")

Validation comes first: every option and input is checked before ``force`` removes anything
and before a manifest is written, so a bad command leaves every file as it was.
"""

from __future__ import annotations

from worldmodels.stages.base import StageResult, check_seed, preset_note, say, setup_tensorflow
from worldmodels.stages.iterate import iterate
from worldmodels.stages.pipeline import PER_VARIANT, PIPELINE, pipeline
from worldmodels.stages.score import (
    compare,
    evaluate,
    fidelity,
    held_out,
    resolution,
    select,
    temperatures,
)
from worldmodels.stages.train import (
    collect,
    encode,
    fit_rnn,
    train_controller,
    train_rnn,
    train_vae,
)
from worldmodels.stages.view import enjoy, report, show

__all__ = [
    "StageResult",
    "say",
    "check_seed",
    "preset_note",
    "setup_tensorflow",
    "collect",
    "train_vae",
    "encode",
    "train_rnn",
    "fit_rnn",
    "train_controller",
    "evaluate",
    "compare",
    "temperatures",
    "fidelity",
    "held_out",
    "select",
    "resolution",
    "enjoy",
    "show",
    "report",
    "iterate",
    "PIPELINE",
    "PER_VARIANT",
    "pipeline",
]
