"""REPORT.md of an experiment: the paper's tables beside what this experiment measured, read
only from files the stages wrote (manifests, evaluate JSONs, histories, comparisons). A row that
has not been run says so and gives the command that runs it; no number is computed here."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from worldmodels.config import get_preset
from worldmodels.core.artifacts import (
    STAGE_INPUTS,
    WORLD_INPUTS,
    Layout,
    input_run_ids,
    read_json,
    remade,
    write_text,
)
from worldmodels.envs import ENVS, get_env
from worldmodels.model.controller import HIDDEN_UNITS

PAPER = "Ha & Schmidhuber, World Models (2018)"
# The paper's CarRacing table: method, score (real env, 100 random tracks), our variant.
PAPER_CARRACING = (
    ("DQN", "343 ± 18", None),
    ("A3C, continuous actions", "591 ± 45", None),
    ("A3C, discrete actions", "652 ± 10", None),
    ("V only: the controller sees z", "632 ± 251", "z"),
    (f"V only: z and one hidden layer of {HIDDEN_UNITS} tanh units", "788 ± 141", "z-hidden"),
    ("Full world model: the controller sees z and h", "906 ± 21", "zh"),
)
# The paper's DoomTakeCover table (C trained in the dream): temperature, dream, real.
PAPER_DOOM = (
    ("0.10", "2086 ± 140", "193 ± 58"),
    ("0.50", "2060 ± 277", "196 ± 50"),
    ("1.00", "1145 ± 690", "868 ± 511"),
    ("1.15", "918 ± 546", "1092 ± 556"),
    ("1.30", "732 ± 269", "753 ± 139"),
)
FIGURES = (
    ("vae-reconstructions.png", "V: real frames and their reconstructions"),
    ("vae-traversal.png", "V: decoded frames along single latent dimensions"),
    ("vae-training.png", "V: training losses per epoch"),
    ("rnn-open-loop.png", "M: open-loop prediction from a real episode"),
    ("rnn-training.png", "M: training losses per epoch"),
)
TRAINED_IN = ("dream", "real")


def _command(preset: str, name: str, stage: str, *options: str) -> str:
    return " ".join(["`worldmodels", stage, "--preset", preset, "--name", name, *options]) + "`"


def _load(path: Path) -> dict | None:
    return read_json(path) if Path(path).exists() else None


def _seconds(value) -> str:
    return f"{value:,.0f} s" if value is not None else "—"


def _number(value) -> str:
    return f"{value:.1f}" if value is not None else "—"


def _percent(value) -> str:
    return f"{100 * value:.0f} %" if value is not None else "—"


def _score(result: dict, unit: str) -> str:
    return f"{result['mean']:.1f} ± {result['std']:.1f} ({result['episodes']} {unit})"


class Report:
    """Reads one experiment's files and renders REPORT.md."""

    def __init__(self, layout: Layout, preset: str):
        self.layout, self.preset, self.name = layout, preset, layout.name

    def command(self, stage: str, *options: str) -> str:
        return _command(self.preset, self.name, stage, *options)

    def stale(self, stage: str, recorded) -> str:
        """"" or, for a result of ``stage`` (a training stage, or a score of C: "world")
        made of inputs (``recorded``) re-made since, the words that say so."""
        names = WORLD_INPUTS if stage == "world" else STAGE_INPUTS.get(stage, ())
        which = remade(recorded, input_run_ids(self.layout, names))
        if not which:
            return ""
        return (f"stale (its input {which[0]} was re-made since)" if len(which) == 1 else
                f"stale (its inputs {', '.join(which)} were re-made since)")

    def controllers(self, variant: str) -> list[tuple[str, dict]]:
        """(where trained, complete manifest) of every trained controller of ``variant``."""
        found = []
        for where in TRAINED_IN:
            manifest = _load(self.layout.controller(where, variant) / "manifest.json")
            if manifest and manifest.get("status") == "complete":
                found.append((where, manifest))
        return found

    def evaluation(self, evaluated_in: str, where: str, variant: str) -> tuple[dict | None, str]:
        """An evaluate JSON of the best parameters and, if it is missing or older than the
        controller's best.npy, the text to show instead."""
        # The preset's evaluation: with the action noise C was scored with in the dream, if any.
        noise = get_preset(self.preset).evaluate.noise if evaluated_in == "real" else 0.0
        path = self.layout.evaluation(evaluated_in, where, variant, "best", noise)
        options = ["--controller", where] + (["--variant", variant] if variant != "zh" else [])
        if evaluated_in == "dream":
            options = ["--where", "dream", *options]
        command = self.command("evaluate", *options)
        if not path.exists():
            return None, f"not run: {command}"
        return self.fresh(path, where, variant, command)

    def fresh(self, path: Path, where: str, variant: str, command: str):
        """(the evaluate JSON at ``path``, "") or, when it is older than C's best.npy or was
        made in a world re-made since, (None, the text to show instead, naming ``command``)."""
        best = self.layout.controller(where, variant) / "best.npy"
        if best.exists() and os.path.getmtime(path) < os.path.getmtime(best):
            return None, f"out of date (C was trained again since): {command} --force"
        result = read_json(path)
        controller = _load(self.layout.controller(where, variant) / "manifest.json") or {}
        if stale := self.stale("world", result.get("inputs", controller.get("inputs"))):
            return None, f"{stale}: {command}"
        return result, ""

    def validations(self, where: str = "dream", variant: str = "zh") -> list[str]:
        """One line per validation of the best parameters (`evaluate --seed N` on another
        seed's episodes than C was trained with: the run's figure with ``-seedN``), in seed
        order; a file older than C's best.npy or made in another world is said to be."""
        import re

        noise = get_preset(self.preset).evaluate.noise
        own = self.layout.evaluation("real", where, variant, "best", noise)
        found = []
        for path in own.parent.glob(f"{own.stem}-seed*.json"):
            if not (match := re.fullmatch(re.escape(own.stem) + r"-seed(\d+)", path.stem)):
                continue
            seed = int(match.group(1))
            result, note = self.fresh(path, where, variant,
                                      self.command("evaluate", "--seed", str(seed)))
            found.append((seed, _score(result, "episodes") if result else note))
        return [f"- episodes of seed {seed}: {text}" for seed, text in sorted(found)]

    def carracing_rows(self) -> list[str]:
        rows = []
        for method, paper, variant in PAPER_CARRACING:
            if variant is None:
                rows.append(f"| {method} | {paper} | not part of this suite |" + " |" * 7)
                continue
            trained = self.controllers(variant)
            if not trained:
                options = [] if variant == "zh" else ["--variant", variant]
                run = (f"not run: {self.command('train-controller', *options)}, then "
                       f"{self.command('evaluate', *options)}")
                rows.append(f"| {method} | {paper} | {run} |" + " |" * 7)
            for where, manifest in trained:
                rows.append(self.controller_row(method, paper, variant, where, manifest))
        return rows

    def controller_row(self, method, paper, variant, where, manifest) -> str:
        real, real_note = self.evaluation("real", where, variant)
        dream, dream_note = self.evaluation("dream", where, variant)
        config, summary = manifest["config"], manifest.get("summary", {})
        history = self.layout.controller(where, variant) / "history.csv"
        generations = max(0, len(history.read_text().splitlines()) - 1) if history.exists() \
            else config["generations"]
        cells = [
            method, paper,
            _score(real, "episodes") if real else real_note,
            (_score(dream, "dreams") + f", τ = {dream['temperature']:g}") if dream
            else dream_note,
            self.trained_where(where, variant, manifest),
            f"{config['temperature']:g}" if where == "dream" else "—",
            str(generations),
            self.last_check(history, config),
            _seconds(summary.get("wall_seconds")),
            _seconds(real.get("wall_seconds")) if real else "—",
        ]
        return "| " + " | ".join(cells) + " |"

    def trained_where(self, where: str, variant: str, manifest: dict) -> str:
        """Where C was trained, and whether it is stale (V or M re-made since)."""
        stale = self.stale("train-controller", manifest.get("inputs"))
        if not stale:
            return where
        options = ["--where", where] + (["--variant", variant] if variant != "zh" else [])
        return f"{where}; C {stale}: {self.command('train-controller', *options)}"

    @staticmethod
    def last_check(history: Path, config: dict) -> str:
        """The last real-env check recorded during training, if the run made any."""
        if not history.exists():
            return "—"
        from worldmodels.core.figures import read_rows

        checks = [row for row in read_rows(history) if row.get("real_best") is not None]
        if not checks:
            return "none"
        last = checks[-1]
        return (f"generation {last['generation']:.0f}: best {last['real_best']:.1f}, mean "
                f"{last['real_mean']:.1f} ({config['real_episodes']} episodes each)")

    def carracing(self) -> str:
        header = ("| method | paper: real env, 100 tracks | ours: real env | ours: dream | "
                  "trained in | train τ | generations | real checks while training (last) | "
                  "C wall time | evaluate wall time |")
        return "\n".join([
            "## CarRacing: the paper's table and ours", "",
            f"The paper's scores ({PAPER}) are for controllers trained in the real env; ours "
            "are for the controllers this experiment trained (where: the column \"trained "
            "in\"), evaluated with their best parameters. Ours: mean ± std over the episodes "
            "actually run, with their count. The paper calls a mean of 900 or more over 100 "
            "episodes solved.", "",
            header, "|" + "---|" * 10, *self.carracing_rows(), "", *self._validated(),
        ])

    def _validated(self) -> list[str]:
        lines = self.validations()
        if not lines:
            return []
        return ["Validations of the dream-trained C on other seeds' tracks or episodes than "
                "it was trained with (`evaluate --seed N`; its own figure is above):", "",
                *lines, ""]

    def comparisons(self) -> str:
        from worldmodels.scoring.compare import markdown_table

        lines = ["## Dream vs real", ""]
        paths = sorted((self.layout.experiment / "compare").glob("*.json"))
        paths = [path for path in paths if not path.name.endswith(".partial.json")]
        if not paths:
            lines += [f"not run: {self.command('compare')}", ""]
        for path in paths:
            result = read_json(path)
            where = result["trained_in"]
            trained = (f"trained in the dream at τ = {result['train_temperature']:g}"
                       if where == "dream" else "trained in the real env")
            lines += [f"### {Path(result['controller']).name} ({result['params']})", "",
                      f"Controller variant {result['variant']}, {trained}.", "",
                      markdown_table(result),
                      f"![dream vs real](compare/{path.stem}.png)", ""]
        lines += ["The paper's DoomTakeCover table, for reference (C trained in the dream):", "",
                  "| temperature | dream score | real score |", "|---|---|---|",
                  *[f"| {t} | {d} | {r} |" for t, d, r in PAPER_DOOM], ""]
        return "\n".join(lines)

    def fidelity(self) -> str:
        """`worldmodels fidelity`'s figures: where the dream pays what the track does not."""
        lines = ["## Dream fidelity: M against the controller's real episodes", ""]
        paths = sorted((self.layout.experiment / "fidelity").glob("*.json"))
        if not paths:
            return "\n".join(lines + [f"not run: {self.command('fidelity')}", ""])
        env = get_env(self.env_id() if self.env_id() in ENVS else "CarRacing-v3")
        lines += [f"| controller | real mean ± std | dream mean ± std | dreams above "
                  f"{env.max_return:,.0f} | dreams to the step limit | "
                  "M's return along the real path | reward error per step (MAE) | "
                  "chance the dream ends a real episode early | z error 1 / 10 steps ahead |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for path in paths:
            result = read_json(path)
            s = result["summary"]
            ahead = s.get("open_loop_error", {})
            errors = " / ".join(f"{ahead[k]:.2f}" for k in ("1", "10") if k in ahead) or "—"
            lines.append(
                f"| {path.stem} | {s['real_mean']:.1f} ± {s['real_std']:.1f} "
                f"({len(result['real']['returns'])}) | {s['dream_mean']:.1f} ± "
                f"{s['dream_std']:.1f} ({len(result['dream']['returns'])}) | "
                f"{100 * s['dreams_above_possible']:.0f} % | "
                f"{_percent(s.get('dreams_to_the_limit'))} | "
                f"{s['predicted_return_on_real_path']:.1f} | {s['reward_mae']:.3f} | "
                f"{100 * s['dream_ends_early']:.0f} % | {errors} |")
        lines += ["", f"No real episode returns more than {env.max_return:,.0f}: a dream above "
                  "that is M paying what the env never does; many dreams that run to the step "
                  "limit while real episodes end early is a dream the controller exploits. "
                  "z errors are divided by the variance of z "
                  "(1.0: no better than guessing the mean frame).", ""]
        for path in paths:
            s = read_json(path)["summary"]
            if "rank_correlation" in s:
                lines += [f"{path.stem}: the population CMA-ES would score next, ranked by the "
                          f"dream and by real tracks: rank correlation "
                          f"**{s['rank_correlation']:.2f}**; the dream's first choice scores "
                          f"{s['candidates_real_of_dream_choice']:.1f} real, the best candidate "
                          f"{s['candidates_real_best']:.1f}, their mean "
                          f"{s['candidates_real_mean']:.1f} (near 0 or below: the dream's "
                          "ranking says little about real driving).", ""]
            lines += _endings_table(path.stem, read_json(path))
            lines += _fixed_actions_table(path.stem, s)
        lines += [f"![fidelity](fidelity/{path.stem}.png)" for path in paths]
        return "\n".join(lines + [""])

    def selection(self) -> str:
        """`worldmodels select`'s choice and its evaluation: a result of its own, never the
        pure dream figure of the table above."""
        from worldmodels.scoring.selection import describe

        lines = ["## Dream-trained, real-selected", "",
                 "C evolved in the dream; real validation tracks (none of the test tracks) "
                 "chose among the CMA-ES means it passed through and its kept best.", ""]
        directory = self.layout.controller("dream", "zh")
        selection = _load(directory / "selection.json")
        if selection is None:
            return "\n".join(lines + [f"not run: {self.command('select')}, then "
                                      f"{self.command('evaluate', '--params', 'selected')}",
                                      ""])
        noise = get_preset(self.preset).evaluate.noise
        evaluation = _load(self.layout.evaluation("real", "dream", "zh", "selected", noise))
        evaluate = self.command("evaluate", "--params", "selected")
        chosen = selection["selected"]
        evaluated = (evaluation or {}).get("selection") or {}
        test = (f"not run: {evaluate}" if evaluation is None else
                _score(evaluation, "episodes") if all(evaluated.get(k) == chosen[k]
                                                      for k in ("generation", "kind"))
                else f"out of date (another choice since): {evaluate}")
        lines += [f"Chosen: {describe(selection)}, {chosen['mean']:.1f} ± {chosen['std']:.1f} "
                  f"on {len(selection['tracks'])} validation tracks. On the test tracks: "
                  f"{test}"]
        if "rank_correlation" in selection:
            lines += ["", f"The dream orders these candidates with rank correlation "
                      f"{selection['rank_correlation']:.2f}; its own choice drove "
                      f"{selection['real_of_dream_choice']:.1f} on the validation tracks."]
        lines += ["", "| candidate | real, validation tracks | dream |", "|---|---|---|"]
        kinds = {"mean": "CMA-ES mean", "best": "kept best"}
        lines += [f"| generation {row['generation']} {kinds[row['kind']]} | {row['mean']:.1f} ± "
                  f"{row['std']:.1f} | {_number(row.get('dream'))} |"
                  for row in selection["candidates"]]
        return "\n".join(lines + ["", "![selection](controller-dream/selection.png)", ""])

    def resolution(self) -> str:
        """`worldmodels resolution`: whether the dream ranks controllers as the road does."""
        from worldmodels.scoring.resolution import GROUPS, readable

        lines = ["## The dream's resolution: does it rank drivers as the real env does?", ""]
        directory = self.layout.controller("dream", "zh")
        result = _load(directory / "resolution.json")
        if result is None:
            return "\n".join(lines + [f"not run: {self.command('resolution')}", ""])
        lines += [f"C's checkpoints and a fresh population around its final mean, each on "
                  f"{len(result['tracks'])} validation tracks of their own and in the dream it "
                  f"was trained in (τ {result['temperature']:g}, "
                  f"{result['config']['dream_seeds']} dream seeds of "
                  f"{result['config']['dream_episodes']} dreams). Rank correlation between "
                  "the two orders (mean ± std over the dream seeds); the real order's own "
                  "split-half correlation says how much of it the validation tracks resolve, "
                  "and \"readable\" is the most this measurement could show if the dream "
                  "ordered them exactly as the road does (both sides' noise: Spearman's "
                  "correction for attenuation).",
                  "", "| candidates | n | Spearman | Kendall | real split-half | readable |",
                  "|---|---|---|---|---|---|"]
        for name in GROUPS:
            c = result["correlations"].get(name)
            if c is None:
                continue
            half = result["real_split_half"].get(name)
            half = "—" if half is None else f"{half:.2f}"
            most = readable(result, name)
            most = "—" if most is None else f"{most:.2f}"
            lines.append(f"| {name} | {c['candidates']} | {c['spearman_mean']:.2f} ± "
                         f"{c['spearman_std']:.2f} | {c['kendall_mean']:.2f} ± "
                         f"{c['kendall_std']:.2f} | {half} | {most} |")
        lines += ["", f"The dream's first choice drove {result['real_of_dream_choice']:.1f} on "
                  f"the validation tracks; the best candidate {result['real_best']:.1f}.", "",
                  "![resolution](controller-dream/resolution.png)", ""]
        return "\n".join(lines)

    def models(self) -> str:
        lines = ["## The models", ""]
        stages = (("V", self.layout.vae, "train-vae", ("loss", "reconstruction", "kl")),
                  ("M", self.layout.rnn, "train-rnn", ("loss", "mdn", "reward", "done")))
        for label, directory, stage, terms in stages:
            manifest = _load(directory / "manifest.json")
            if not manifest or manifest.get("status") != "complete":
                lines.append(f"- {label}: not run: {self.command(stage)}")
                continue
            if stale := self.stale(stage, manifest.get("inputs")):
                lines.append(f"- {label}: {stale}: {self.command(stage)}")
                continue
            summary = manifest.get("summary", {})
            losses = ", ".join(f"{term} {summary[term]:.3f}" for term in terms if term in summary)
            lines.append(f"- {label}: {summary.get('parameters', 0):,} parameters, "
                         f"{manifest['config']['epochs']} epochs; last epoch: {losses}; "
                         f"{_seconds(summary.get('wall_seconds'))}")
        return "\n".join(lines + [""])

    def timings(self) -> str:
        timings = _load(self.layout.experiment / "pipeline.json")
        lines = ["## Stage wall times (pipeline.json)", ""]
        if not timings:
            return "\n".join(lines + [f"not run: {self.command('pipeline')}", ""])
        lines += ["| stage | wall time |", "|---|---|"]
        order = ("collect", "train-vae", "encode", "train-rnn", "train-controller", "iterate",
                 "evaluate")
        stages = sorted((stage for stage in timings if stage not in ("preset", "seed")),
                        key=lambda s: (next((i for i, o in enumerate(order) if s.startswith(o)),
                                            len(order)), s))
        lines += [f"| {stage} | {_seconds(timings[stage])} |" for stage in stages]
        lines += ["", f"Preset {timings.get('preset')}; stages skipped as already complete "
                  "keep the time of the run that made them.", ""]
        return "\n".join(lines)

    def rounds(self) -> str:
        """The rounds of `worldmodels iterate`, if the experiment ran any."""
        progress = _load(self.layout.experiment / "iterate" / "rounds.json")
        if not progress or not progress["rounds"]:
            return ""
        settings = progress["settings"]
        lines = ["## Iterative training (iterate/rounds.json)", "",
                 f"Each round: {settings['episodes']} episodes driven by the controller of the "
                 f"round before plus Gaussian action noise of std {settings['noise']} (their "
                 "mean real return is in the table: a real score of that controller, with "
                 f"noise), then M {settings['rnn_epochs']} epochs further on all data and C "
                 f"{settings['generations']} generations further in the new dream.", "",
                 "| round | collected with C + noise: mean return | M before the round: "
                 "return it predicted along them | M loss | dream best | "
                 "real check: best, mean | `evaluate --round N` (real, best C) | wall time |",
                 "|---|---|---|---|---|---|---|---|"]
        for row in progress["rounds"]:
            check = (f"{row['real_best']:.1f}, {row['real_mean']:.1f}"
                     if row.get("real_best") is not None else "—")
            kept = self.layout.at_round(row["round"])
            scores = _load(kept.evaluation("real", "dream", "zh", "best"))
            evaluated = (f"{scores['mean']:.1f} ± {scores['std']:.1f} ({scores['episodes']})"
                         if scores else "not run")
            predicted = row.get("m_predicted_return")
            lines.append(f"| {row['round']} | {row['collect_return']:.1f} "
                         f"({row['collected']} episodes) | "
                         f"{'—' if predicted is None else f'{predicted:.1f}'} | "
                         f"{row['rnn_loss']:.3f} | "
                         f"{row['best_fitness']:.1f} | {check} | {evaluated} | "
                         f"{_seconds(row['wall_seconds'])} |")
        return "\n".join(lines + [""])

    def figures(self) -> str:
        experiment = self.layout.experiment
        lines = ["## Figures", ""]
        found = [(f"figures/{file}", caption) for file, caption in FIGURES
                 if (experiment / "figures" / file).exists()]
        for path in sorted((experiment / "figures").glob("dream-*.gif")):
            from worldmodels.views.show import describe_dream

            record = _load(path.with_suffix(".json"))
            found.append((f"figures/{path.name}", f"a dream episode driven by C ({path.stem}), "
                          "decoded by V" + (f": {describe_dream(record)}" if record else "")))
        for history in sorted(experiment.glob("controller-*/history.csv")):
            name = history.parent.name
            drawn = [link for link in (f"figures/{name}-training.png", f"{name}/history.png")
                     if (experiment / link).exists()]
            found += [(drawn[0], f"C ({name}): fitness per generation and real-env checks")
                      ] if drawn else []
        if not (experiment / "figures").exists():
            lines.append(f"Not drawn yet: {self.command('show')}")
            lines.append("")
        lines += [f"- [{caption}]({link})" for link, caption in found]
        lines += [""] + [f"![{caption}]({link})" for link, caption in found
                         if link.endswith(".png") or link.endswith(".gif")]
        return "\n".join(lines + [""])

    def env_id(self) -> str:
        manifest = _load(self.layout.rollouts / "manifest.json") or {}
        return manifest.get("config", {}).get("env_id", "CarRacing-v3")

    def takecover(self) -> str:
        """TakeCover: the experiment's dream-trained C in the real game, beside the paper's."""
        real, missing = self.evaluation("real", "dream", "zh")
        manifest = _load(self.layout.controller("dream") / "manifest.json") or {}
        tau = manifest.get("config", {}).get("temperature")
        ours = _score(real, "episodes") if real else missing
        return "\n".join([
            "## TakeCover: C trained only in the dream", "",
            "| | real game |", "|---|---|",
            "| paper, τ 1.15 | 1,092 ± 556 (100 episodes) |",
            f"| ours, τ {tau} | {ours} |", "", *self._validated(),
            "Solved means a mean of 750 or more over 100 episodes; a random policy survives "
            "about 210 steps. The paper's whole table: `worldmodels temperatures`.", ""])

    def temperatures(self) -> str:
        """The paper's temperature table, when `worldmodels temperatures` made it."""
        from worldmodels.scoring import temperatures

        table = _load(self.layout.runs / "temperatures" / "table.json")
        if table is None:
            return ""
        return "\n".join(["## C trained in the dream at each temperature", "",
                          temperatures.markdown(table),
                          "![the temperature table](temperatures/table.png)", ""])

    def render(self) -> str:
        return "\n".join([
            f"# Report: {self.name}", "",
            "Everything below is read from the files the stages wrote in this folder; parts "
            "not run yet say so, with the command that runs them. The paper's numbers are "
            f"from {PAPER}.", "",
            self.takecover() if self.env_id() != "CarRacing-v3" else self.carracing(),
            self.temperatures(), self.comparisons(), self.fidelity(), self.resolution(),
            self.selection(),
            self.models(), self.rounds(),
            self.timings(), self.figures(),
        ])


def write_report(layout: Layout, preset: str) -> Path:
    """Write RESULTS/NAME/REPORT.md atomically; returns its path."""
    path = layout.experiment / "REPORT.md"
    # Some sections import modules that import TensorFlow, whose start-up lines (cuInit, CPU
    # features) say nothing about the report: kept out of the terminal, anything else shown.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from worldmodels.core.workers import quiet_startup

    with quiet_startup("tensorflow" not in sys.modules):
        text = Report(layout, preset).render()
    return write_text(path, text)


def _endings_table(stem: str, result: dict) -> list[str]:
    """`fidelity`'s endings: whether the dream ends where the env's episodes ended."""
    from worldmodels.scoring.fidelity import DATA_GROUPS

    rows = []
    if result["summary"].get("endings_foreseen") is not None:
        rows.append(f"| the controller's real episodes | {len(result['real']['returns'])} | "
                    f"{100 * result['summary']['endings_foreseen']:.0f} % | | |")
    for group, e in (result.get("endings_on_data") or {}).items():
        rows.append(f"| {DATA_GROUPS[group]} | {e['endings']} | {100 * e['foreseen']:.0f} % | "
                    f"{100 * e['earlier']:.0f} % | {e['expected_endings']:.2f} |")
    if not rows:
        return []
    return [f"{stem}: the episodes' endings (deaths, leaving the playfield) read by M along "
            "them: the share the dream would end at, the chance it ends them earlier, and the "
            "endings M's calibrated done probability expects per episode (1.00 is right; "
            "below, the dream outlives the env):", "",
            "| episodes | ended | ends there | ends earlier | endings expected |",
            "|---|---|---|---|---|", *rows, ""]


def _fixed_actions_table(stem: str, summary: dict) -> list[str]:
    """`fidelity`'s constant behaviours, dream beside real, and what the controller did."""
    from worldmodels.scoring.fidelity import describe_moves

    fixed, moves = summary.get("fixed_actions"), summary.get("real_action_mean")
    if not fixed:
        return []
    lines = [f"{stem}: the env's constant behaviours in the same dream and on the first real "
             "tracks (a behaviour the dream pays far more than the game is an exploit C can "
             "find)" + (" — the controller's mean action on its real tracks: "
                        + describe_moves(moves) if moves else "") + ":",
             "", "| behaviour | dream | real |", "|---|---|---|"]
    lines += [f"| {name} | {f['dream']:.1f} | {f['real']:.1f} |" for name, f in fixed.items()]
    return lines + [""]
