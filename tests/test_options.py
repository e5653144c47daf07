"""The CLI's options come from the config dataclasses: every field can be set (option,
--set, --config), ranges are declared once, help gives each preset's default."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.conftest import common, invoke
from worldmodels.config import (
    SECTIONS,
    field_docs,
    get_preset,
    read_config_file,
    resolve,
)
from worldmodels.envs import ENVS, get_env


def _error(*args) -> str:
    result = invoke(*args, expect_ok=False)
    assert result.exit_code != 0 and "Traceback" not in result.output, result.output
    return [line for line in result.output.splitlines() if line.strip()][-1]


def test_every_field_has_a_docstring_and_an_option():
    preset = get_preset("paper")
    for section in SECTIONS:
        config = getattr(preset, section)
        docs = field_docs(type(config))
        assert set(docs) == set(vars(config)), section
    output = invoke("train-rnn", "--help").output
    for option in ("--done-pos-weight", "--grad-clip", "--hidden-size", "--mixtures"):
        assert option in output
    assert "--kl-tolerance" in invoke("train-vae", "--help").output


def test_help_gives_each_presets_default():
    output = " ".join(invoke("train-controller", "--help").output.split())
    assert "[smoke: 0.0, small: 0.1, paper: 0.0, doom-smoke: 0.0, doom-small: 0.0, doom-paper: " \
        "0.0]" in output  # --dropout
    assert "[smoke: 0, small: 20, paper: 0, doom-smoke: 0, doom-small: 0, doom-paper: 0]" \
        in output  # --burn-in


def test_settings_files_and_set(tmp_path):
    toml = tmp_path / "mine.toml"
    toml.write_text('[rnn]\ndone_pos_weight = 5\n[compare]\ntemperatures = [0.5, 1.0]\n')
    preset = resolve("smoke", [toml], ["rnn.dropout=0.2", "collect.workers=none"])
    assert preset.rnn.done_pos_weight == 5.0 and preset.rnn.dropout == 0.2
    assert preset.compare.temperatures == (0.5, 1.0) and preset.collect.workers is None
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"stage": "train-rnn", "config": {"epochs": 3}}))
    assert read_config_file(manifest) == {"rnn": {"epochs": 3}}


def test_a_manifests_config_is_accepted_back(smoke_run):
    root, _ = smoke_run
    manifest = root / "results" / "smoke" / "rnn" / "manifest.json"
    assert "complete" in invoke("train-rnn", *common(root), "--config", manifest).output


def test_bad_settings_are_one_line(tmp_path):
    args = common(tmp_path)
    assert "no setting 'nope'" in _error("train-rnn", *args, "--set", "rnn.nope=1")
    assert "SECTION.FIELD=VALUE" in _error("train-rnn", *args, "--set", "dropout")
    assert "finite" in _error("train-rnn", *args, "--set", "rnn.learning_rate=nan")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert "cannot read settings" in _error("train-rnn", *args, "--config", bad)
    assert not (tmp_path / "data").exists() and not (tmp_path / "results").exists()


def test_a_broken_yaml_file_is_one_line(tmp_path):
    pytest.importorskip("yaml")  # PyYAML comes with ray, of the test extra
    bad = tmp_path / "bad.yaml"
    bad.write_text("rnn: {epochs: [1,\n")
    assert "cannot read settings from" in _error("train-rnn", *common(tmp_path), "--config", bad)
    good = tmp_path / "good.yaml"
    good.write_text("rnn:\n  epochs: 3\n")
    assert read_config_file(good) == {"rnn": {"epochs": 3}}


def test_not_numbers_and_absurd_sizes_are_refused(tmp_path):
    args = common(tmp_path)
    for stage, option, value in (("train-controller", "--temperature", "nan"),
                                 ("train-controller", "--sigma", "nan"),
                                 ("train-rnn", "--learning-rate", "inf"),
                                 ("collect", "--episodes", "99999999999"),
                                 ("train-vae", "--z-size", "99999999"),
                                 ("train-rnn", "--sequence-length", "100000"),
                                 ("compare", "--temperatures", "0.5,nan")):
        assert option in _error(stage, *args, option, value), (stage, option)
    assert not (tmp_path / "data").exists() and not (tmp_path / "results").exists()


def test_policy_choices_are_the_policies():
    from worldmodels.config import CHOICES

    assert set(CHOICES["policy"]) == {name for env_id in ENVS for name in get_env(env_id).policies}
    assert set(CHOICES["env_id"]) == set(ENVS)


def test_an_experiment_remembers_its_preset_and_folders(smoke_run, tmp_path):
    root, _ = smoke_run
    record = json.loads((root / "results" / "smoke" / "experiment.json").read_text())
    assert record["preset"] == "smoke" and record["env_id"] == "CarRacing-v3"
    assert record["data_dir"] == str(root / "data")
    # Without --preset or --data-dir, a command runs the experiment's own: smoke, complete.
    own = ["--name", "smoke", "--results-dir", root / "results"]
    assert "complete" in invoke("train-vae", *own).output
    # A conflicting --preset is a one-line error that says how to go on; nothing is written.
    before = sorted(p.stat().st_mtime_ns for p in (root / "results").rglob("*") if p.is_file())
    refused = invoke("train-vae", *own, "--preset", "small", expect_ok=False)
    assert refused.exit_code != 0 and len(refused.output.strip().splitlines()) == 1
    assert "was made with the smoke preset" in refused.output and "--force" in refused.output
    assert before == sorted(p.stat().st_mtime_ns for p in (root / "results").rglob("*")
                            if p.is_file())
    # A new experiment records the preset it is made with.
    invoke("collect", "--preset", "smoke", "--name", "other", "--results-dir",
           tmp_path / "results", "--data-dir", tmp_path / "data", "--episodes", "1",
           "--max-steps", "20")
    other = json.loads((tmp_path / "results" / "other" / "experiment.json").read_text())
    assert other["preset"] == "smoke" and other["data_dir"] == str(tmp_path / "data")


def test_the_record_is_there_while_a_command_runs_and_taken_back_on_a_refusal(tmp_path):
    from worldmodels.core.experiment import read_record, recording
    from worldmodels.errors import WorldModelsError

    experiment = tmp_path / "results" / "doom"
    with recording(experiment, "doom-small", tmp_path / "data", "VizdoomTakeCover-v1"):
        # a command running (or killed, even by kill -9, here) tells others its preset
        assert read_record(experiment).preset == "doom-small"
    assert read_record(experiment).preset == "doom-small"
    with pytest.raises(WorldModelsError):  # a refusal before any work: the old record back
        with recording(experiment, "doom-paper", tmp_path / "data", "VizdoomTakeCover-v1"):
            raise WorldModelsError("refused")
    assert read_record(experiment).preset == "doom-small"
    fresh = tmp_path / "results" / "fresh"
    with pytest.raises(WorldModelsError):  # a refused first command leaves nothing
        with recording(fresh, "small", tmp_path / "data", "CarRacing-v3"):
            raise WorldModelsError("refused")
    assert not fresh.exists()


def test_printed_hints_are_complete_commands(smoke_run, tmp_path):
    root, _ = smoke_run
    results = tmp_path / "results"
    # an experiment with V but no M: train-controller names `train-rnn` with its options
    shutil.copytree(root / "results" / "smoke", results / "smoke", ignore=shutil.ignore_patterns(
        "rnn", "controller-*", "evaluations"))
    refused = invoke("train-controller", "--name", "smoke", "--results-dir", results,
                     "--seed", "3", expect_ok=False)
    assert (f"`worldmodels train-rnn --name smoke --results-dir {results} --seed 3`"
            in refused.output), refused.output
