"""The options every command shares, the options derived from the config dataclasses (every
field, typed and bounded as ``worldmodels.config.RANGES`` declares, its docstring as help), and
the conversion of user errors (WorldModelsError) to one-line errors. Anything else keeps its
traceback."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import click

from worldmodels.config import (
    CHOICES,
    CONTROLLER_VARIANTS,
    MIXTURES,
    PRESET_NAMES,
    SECTIONS,
    field_docs,
    get_preset,
    mixture_members,
    range_of,
)


class Number(click.ParamType):
    """An int or float within its declared range; NaN and infinities are refused."""

    def __init__(self, kind: type, bounds):
        self.kind, self.bounds = kind, bounds
        self.name = kind.__name__

    def convert(self, value, parameter, context):
        if isinstance(value, self.kind):
            number = value
        else:
            try:
                number = self.kind(value)
            except (TypeError, ValueError):
                self.fail(f"{value!r} is not a valid {self.name}", parameter, context)
        problem = self.bounds.problem(number) if self.bounds else None
        if problem:
            self.fail(problem, parameter, context)
        return number


class Numbers(Number):
    """Numbers separated by commas: '0.5,0.75,1.0' -> (0.5, 0.75, 1.0)."""

    def convert(self, value, parameter, context):
        if isinstance(value, tuple):
            return value
        parts = [part for part in str(value).split(",") if part.strip()]
        if not parts:
            self.fail(f"expected numbers separated by commas, got {value!r}", parameter, context)
        return tuple(super(Numbers, self).convert(part, parameter, context) for part in parts)


class Mixture(click.ParamType):
    """One of the choices, or several joined by + ('rally+recover')."""

    name = "choice"

    def __init__(self, choices):
        self.choices = choices

    def get_metavar(self, param, *args, **kwargs):
        return "[" + "|".join(self.choices) + "][+...]"

    def convert(self, value, parameter, context):
        unknown = [part for part in mixture_members(value) if part not in self.choices]
        if unknown:
            self.fail(f"{unknown[0]!r} is not one of {', '.join(self.choices)} (several may be "
                      "joined by +)", parameter, context)
        return str(value)


def _type(config_class, field: dataclasses.Field):
    if field.name in MIXTURES:
        return Mixture(CHOICES[field.name])
    if field.name in CHOICES:
        return click.Choice(CHOICES[field.name])
    kind = str(field.type)
    bounds = range_of(config_class, field.name)
    if kind.startswith("tuple"):
        return Numbers(int if kind.startswith("tuple[int") else float, bounds)
    if kind.startswith(("int", "float")):
        return Number(int if kind.startswith("int") else float, bounds)
    return str


def _defaults(section: str, name: str) -> str:
    values = {preset: getattr(getattr(get_preset(preset), section), name)
              for preset in PRESET_NAMES}
    shown = {p: (",".join(f"{v:g}" for v in value) or "none") if isinstance(value, tuple)
             else value for p, value in values.items()}
    if len(set(map(str, shown.values()))) == 1:
        return f"[default: {shown[PRESET_NAMES[0]]}]"
    return "[" + ", ".join(f"{preset}: {value}" for preset, value in shown.items()) + "]"


def config_options(section: str, skip=(), names=None):
    """One option per field of the preset's ``section`` config (--field-name, or the names in
    ``names``); each defaults to the preset's value, given in the help for every preset."""
    names = names or {}
    config_class = type(getattr(get_preset(PRESET_NAMES[0]), section))
    docs = field_docs(config_class)

    def decorate(function):
        for field in reversed(dataclasses.fields(config_class)):
            if field.name in skip:
                continue
            option = f"--{field.name.replace('_', '-')}"
            help = f"{docs.get(field.name, '')} {_defaults(section, field.name)}"
            if field.type == "bool":  # a flag pair, None when neither is given
                function = click.option(f"{option}/--no-{option[2:]}", field.name,
                                        default=None, help=help)(function)
                continue
            declarations = names.get(field.name, [option])
            function = click.option(*declarations, field.name, type=_type(config_class, field),
                                    help=help)(function)
        return function

    return decorate


@dataclass(frozen=True)
class Run:
    """What every command is given: the experiment, the resolved preset, the stage's config
    with the command's options applied, the seed and the preset's name."""

    layout: object
    preset: object
    config: object
    seed: int
    preset_name: str
    record: object = None
    """The experiment's record (``worldmodels.core.experiment.recording``) to hold while the
    command runs; None when there is nothing to record."""


def _run(options: dict, section: str | None, remember: bool) -> Run:
    """The command's Run. The experiment's preset and data folder come from its record
    (``worldmodels.core.experiment``) when the command does not give them; ``remember``: a command
    that makes the experiment records them when it has no record yet (or --force changed
    them)."""
    from worldmodels.config import override, resolve
    from worldmodels.core.artifacts import Layout
    from worldmodels.core.experiment import recording, resolve_experiment

    results_dir, name = options.pop("results_dir"), options.pop("name")
    experiment = Path(results_dir) / name
    force = bool(options.get("force")) or options.get("skip_complete") is False  # pipeline --redo
    preset_name, data_dir, changed = resolve_experiment(
        experiment, options.pop("preset"), options.pop("data_dir"), force)
    layout = Layout(data_dir, results_dir, name)
    preset = resolve(preset_name, options.pop("config_files"), options.pop("settings"))
    record = (lambda: recording(experiment, preset_name, data_dir, preset.collect.env_id)) \
        if remember and changed else None
    config = None
    if section:
        fields = [f.name for f in dataclasses.fields(getattr(preset, section))]
        config = override(getattr(preset, section),
                          **{name: options.pop(name) for name in fields if name in options})
    return Run(layout, preset, config, options.pop("seed"), preset_name, record)


def common_options(function):
    """--preset, --config, --set, --name, --data-dir, --results-dir, --seed."""
    directory = click.Path(file_okay=False, path_type=Path)
    options = [
        click.option("--preset", type=click.Choice(PRESET_NAMES), default=None,
                     help="Scale: smoke (tests), small (2-core CPU), paper; doom-* for "
                          "TakeCover. [default: the experiment's own (recorded at its first "
                          "stage in RESULTS/NAME/experiment.json), else small]"),
        click.option("--config", "config_files", multiple=True,
                     type=click.Path(dir_okay=False, exists=True, path_type=Path),
                     help="Settings over the preset, from a JSON or TOML file of sections "
                          '({"rnn": {"dropout": 0.1}}) or a stage\'s manifest.json (repeatable).'),
        click.option("--set", "settings", multiple=True, metavar="SECTION.FIELD=VALUE",
                     help="A setting over the preset and --config, e.g. rnn.done_pos_weight=5 "
                          f"(repeatable; sections: {', '.join(SECTIONS)})."),
        click.option("--name", default="default", show_default=True,
                     help="Experiment name: data in DATA/NAME, results in RESULTS/NAME."),
        click.option("--data-dir", type=directory, default=None,
                     help="Root of rollouts and series. [default: the experiment's own, else "
                          "data]"),
        click.option("--results-dir", type=directory, default=Path("results"),
                     show_default=True, help="Root of models, logs and scores."),
        click.option("--seed", type=Number(int, range_of(object, "seed")), default=0,
                     show_default=True, help="Run seed."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def friendly_errors(function):
    """Turn WorldModelsError into a one-line click error; anything else keeps its traceback.
    With WORLDMODELS_DEBUG=1 in the environment, user errors keep their traceback too."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        from worldmodels.errors import WorldModelsError

        try:
            return function(*args, **kwargs)
        except WorldModelsError as error:
            if os.environ.get(DEBUG, "") not in ("", "0"):
                raise
            raise click.ClickException(complete_hints(str(error))) from None

    return wrapper


DEBUG = "WORLDMODELS_DEBUG"  # set to 1: user errors keep their traceback (for a bug report)
# Commands that read an experiment without making it: they record nothing.
DOES_NOT_MAKE = ("report", "show", "bench")

# Stages whose command process never runs a model (their workers start TensorFlow quietly).
NO_TENSORFLOW = ("collect", "bench", "export")  # report: TensorFlow starts quietly


def stage_command(name: str, section: str | None = None, skip=(), names=None):
    """A click command with the common options and those of the preset's ``section``; the
    function is called with a ``Run`` and its own options."""

    def decorate(function):
        @functools.wraps(function)
        def command(**options):
            # (a bundle's agent, --agent, is scored without making an experiment)
            run = _run(options, section, name not in DOES_NOT_MAKE and not options.get("agent"))
            click.get_current_context().meta["worldmodels.run"] = run
            from worldmodels.stages import preset_note

            note = preset_note(run.layout, run.preset_name)
            if note:
                click.echo(note)
            if name not in NO_TENSORFLOW:
                from worldmodels.core.device import start_tensorflow

                start_tensorflow()  # before any stage code: its start-up lines kept quiet
            # Recorded before the work starts (a running or killed command's experiment
            # keeps its preset); a refusal (WorldModelsError) takes the record back.
            with run.record() if run.record else contextlib.nullcontext():
                return function(run, **options)

        command = friendly_errors(command)
        if section:
            command = config_options(section, skip, names)(command)
        return click.command(name)(common_options(command))

    return decorate


def echo(result) -> None:
    """Print what a stage wrote and its summary (``StageResult.lines``), each command it names
    completed with this experiment's options (``complete_hints``)."""
    for line in result.lines():
        click.echo(complete_hints(line))


_HINT = re.compile(r"`worldmodels ([a-z-]+)([^`]*)`")


def complete_hints(text: str) -> str:
    """Every `worldmodels STAGE ...` named in ``text`` with the options that point it at the
    running command's experiment (--name, --results-dir, --seed when not the defaults; the
    preset and data folder are the experiment's own), so it runs as printed."""
    context = click.get_current_context(silent=True)
    run = context.meta.get("worldmodels.run") if context is not None else None
    if run is None:
        return text
    extra = []
    if run.layout.name != "default":
        extra += ["--name", run.layout.name]
    if Path(run.layout.results_dir) != Path("results"):
        extra += ["--results-dir", str(run.layout.results_dir)]
    if run.seed != 0:
        extra += ["--seed", str(run.seed)]
    if not extra:
        return text

    def complete(match):
        stage, rest = match.group(1), match.group(2)
        missing = [f"{extra[i]} {shlex.quote(extra[i + 1])}" for i in range(0, len(extra), 2)
                   if extra[i] not in rest]
        return f"`worldmodels {stage}{rest}{''.join(' ' + m for m in missing)}`"

    return _HINT.sub(complete, text)


def agent_option(command):
    """--agent: run the agent of a bundle of `worldmodels export` instead of an experiment's."""
    return click.option(
        "--agent", type=click.Path(dir_okay=False, exists=True), default=None,
        help="Run the agent of this bundle (a tar file of `worldmodels export`) instead of an "
        "experiment's: it is checked, unpacked to a temporary folder (removed after) and its "
        "controller run (--controller and --variant are the bundle's); what this command "
        "writes goes to RESULTS/NAME as usual, NAME being the bundle's file name without "
        ".tar (agent.tar: results/agent) unless --name is given.")(command)


def agent_run(run, agent):
    """The layout (and bundle index) an --agent command runs: the bundle unpacked for the
    block, its outputs in RESULTS/NAME (NAME: --name, or the bundle's file name)."""
    from click.core import ParameterSource

    from worldmodels.core.artifacts import Layout
    from worldmodels.core.bundle import agent_layout, default_name

    named = click.get_current_context().get_parameter_source("name") != ParameterSource.DEFAULT
    outputs = run.layout if named else Layout(run.layout.data_dir, run.layout.results_dir,
                                              default_name(agent))
    return agent_layout(Path(agent), outputs)


def progress_enabled() -> bool:
    """Progress bars unless WORLDMODELS_NO_PROGRESS is set (tests)."""
    return not os.environ.get("WORLDMODELS_NO_PROGRESS")


force_option = click.option("--force", is_flag=True,
                            help="Redo the stage even if its outputs are complete; replace a "
                                 "result made with other options.")
variant_option = click.option(
    "--variant", type=click.Choice(CONTROLLER_VARIANTS), default="zh", show_default=True,
    help="Controller inputs, as in the paper's CarRacing table: zh = [z, h] (full world "
         "model), zhc = [z, h, c] (M's cell too, as the paper's TakeCover C), z = V only, "
         "z-hidden = V only with 40 tanh hidden units.")
trained_in_option = click.option(
    "--controller", "trained_in", type=click.Choice(["dream", "real"]), default="dream",
    show_default=True, help="Which trained controller: controller-dream or -real.")
params_option = click.option(
    "--params", type=click.Choice(["best", "mean", "selected"]), default="best",
    show_default=True,
    help="The best candidate found, the final CMA-ES mean, or the one `worldmodels select` "
         "chose on real validation tracks (reported as dream-trained, real-selected).")
round_option = click.option(
    "--round", "round_number", type=click.IntRange(min=0), default=0,
    help="The M and C that `iterate` kept after this round (default: the latest).")
ray_option = click.option(
    "--ray-address", metavar="ADDRESS",
    help="Run the episodes on Ray instead of local worker processes: 'local' starts a private "
         "Ray instance on this machine, 'auto' joins the cluster this machine belongs to, or "
         "give a cluster's address. Needs `pip install 'worldmodels[ray]'` on every node.")
skip_corrupt_option = click.option("--skip-corrupt", is_flag=True,
                                   help="Leave out corrupt episode files instead of stopping.")
