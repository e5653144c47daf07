"""TensorBoard event files: every stage writes its curves next to its other outputs, in
RESULTS/NAME/STAGE/tensorboard/, so `tensorboard --logdir results/NAME` shows a whole run.

Writing events draws no random numbers and is read by no stage: results, resumes and the
"complete" checks are the same with them. A training run that starts over (no checkpoint or
CMA-ES state) removes its old events; a resumed one appends, its steps counting on from the
checkpoint's (steps written after the last checkpoint of a killed run are written again, and
``read_scalars`` keeps the later value)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

FOLDER = "tensorboard"


def events_dir(directory: Path) -> Path:
    """Where the events of the stage writing to ``directory`` go."""
    return Path(directory) / FOLDER


def clear(directory: Path) -> None:
    """Remove the events of a stage that starts over."""
    shutil.rmtree(events_dir(directory), ignore_errors=True)


class Board:
    """A stage's event writer: named scalars, images and histograms at a step."""

    def __init__(self, directory: Path):
        from worldmodels.core.device import start_tensorflow

        start_tensorflow()
        import tensorflow as tf

        self.tf = tf
        self.writer = tf.summary.create_file_writer(str(events_dir(directory)))

    def scalars(self, values: dict, step: int, prefix: str = "") -> None:
        """Each number of ``values`` as the scalar PREFIX + name; empty cells are skipped.
        Written as ``simple_value`` summaries, the form every reader takes as a scalar
        (``tf.summary.scalar`` writes a tensor, which TensorBoard's ``EventAccumulator.Scalars``
        and older readers do not find)."""
        from tensorboard.compat.proto.summary_pb2 import Summary

        cells = [Summary.Value(tag=prefix + name, simple_value=float(value))
                 for name, value in values.items() if value is not None and value != ""]
        if not cells:
            return
        with self.writer.as_default():
            self.tf.summary.experimental.write_raw_pb(
                Summary(value=cells).SerializeToString(), step=int(step))

    def image(self, name: str, image: np.ndarray, step: int) -> None:
        """One image (H, W, 3) in [0, 1] or uint8."""
        assert image.ndim == 3 and image.shape[-1] == 3, f"expected (H, W, 3), got {image.shape}"
        if image.dtype != np.uint8:
            image = (np.clip(image, 0, 1) * 255).astype(np.uint8)
        with self.writer.as_default():
            self.tf.summary.image(name, image[None], step=int(step))

    def histogram(self, name: str, values, step: int) -> None:
        with self.writer.as_default():
            self.tf.summary.histogram(name, np.asarray(values, np.float64), step=int(step))

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()

    def __enter__(self) -> Board:
        return self

    def __exit__(self, *_) -> None:
        self.close()


def event_files(directory: Path) -> list[Path]:
    """The event files of the stage writing to ``directory``, oldest first (their names hold
    the time they were opened)."""
    files = events_dir(directory).glob("events.out.tfevents.*")
    return sorted(files, key=lambda path: (int(path.name.split(".")[3]), path.name))


def stage_folders(directory: Path) -> list[Path]:
    """The folders under ``directory`` (a stage's, or an experiment's, or any above them) that
    hold events, ``directory`` itself first when it is a stage's."""
    directory = Path(directory)
    found = [directory] if events_dir(directory).is_dir() else []
    found += sorted(path.parent.parent for path in directory.rglob(f"{FOLDER}/events.out.*")
                    if path.parent.parent != directory)
    return list(dict.fromkeys(found))


def read_events(directory: Path, kind: str = "scalar") -> dict[str, dict[int, object]]:
    """Tag -> {step: value} of the stage's scalars (floats), histograms or images (the values
    as TensorFlow wrote them: a histogram's (left, right, count) rows, an image's encoded PNG).
    A step written twice (a resumed run) keeps its later value. ``directory`` may also be an
    experiment (or any folder above stages): the tags of a stage below it are then prefixed
    with its path, e.g. ``rnn/M/loss`` or ``iterate/round-1/rnn/M/loss``."""
    directory = Path(directory)
    if not events_dir(directory).is_dir():
        found: dict[str, dict[int, object]] = {}
        for stage in stage_folders(directory):
            prefix = stage.relative_to(directory).as_posix() + "/"
            for tag, steps in _read_stage(stage, kind).items():
                found[prefix + tag] = steps
        return found
    return _read_stage(directory, kind)


def _read_stage(directory: Path, kind: str) -> dict[str, dict[int, object]]:
    from worldmodels.core.device import start_tensorflow

    start_tensorflow()
    import tensorflow as tf

    plugins = {"scalar": "scalars", "histogram": "histograms", "image": "images"}
    found: dict[str, dict[int, object]] = {}
    kinds: dict[str, str] = {}  # tag -> plugin (a writer may name it only once per tag)
    for path in event_files(directory):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.WhichOneof("value") == "simple_value":
                    if kind == "scalar":
                        found.setdefault(value.tag, {})[int(event.step)] = value.simple_value
                    continue
                plugin = value.metadata.plugin_data.plugin_name
                kinds[value.tag] = plugin or kinds.get(value.tag, "")
                if kinds[value.tag] != plugins[kind]:
                    continue
                array = tf.make_ndarray(value.tensor)
                found.setdefault(value.tag, {})[int(event.step)] = (
                    float(array) if kind == "scalar" else array)
    return found


def read_scalars(directory: Path) -> dict[str, dict[int, float]]:
    """Tag -> {step: value} of the scalars of a stage folder, or of every stage under an
    experiment folder (tags prefixed with the stage's path, see ``read_events``)."""
    return read_events(directory, "scalar")
