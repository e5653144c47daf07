"""The rollout store and the encoded series: HDF5 on disk, streamed in batches.

Schema (the one place it is defined):

Episode file ``DATA/NAME/rollouts/episode_NNNNN.h5`` (an episode of T steps):
    frames        (T+1, 64, 64, 3) uint8   observation before each action, and the last one
    actions       (T, A) float32           the env's actions: CarRacing's (steer, gas, brake),
                                           TakeCover's move (-1 left, 0 stay, 1 right)
    rewards       (T,) float32             reward after each action
    terminations  (T,) uint8               1 where the env terminated (CarRacing: off the
                                           playfield, lap done; TakeCover: the death step)
    attrs: env_id, seed, policy, return, length
All datasets are chunked and gzip-compressed; the file is written under a temporary name and
renamed, so a file with the final name is always whole.

Series file ``DATA/NAME/series/series.h5`` (N episodes, padded to the longest T):
    mu, logvar    (N, T_max+1, z) float32  V's posterior of every frame
    actions       (N, T_max, A) float32
    rewards       (N, T_max) float32
    terminations  (N, T_max) uint8
    lengths       (N,) int32               T of each episode
    attrs: vae_run_id, z_size
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import h5py
import numpy as np

from worldmodels.config import ENV_ID, FRAME_SIZE
from worldmodels.core.artifacts import atomic_path, refuse_link
from worldmodels.envs import ENVS, get_env
from worldmodels.errors import WorldModelsError

EPISODE_GLOB = "episode_*.h5"
EPISODE_NAME = re.compile(r"episode_\d{5,}\.h5")
SERIES_KEYS = ("mu", "logvar", "actions", "rewards", "terminations", "lengths")
SOURCE_BYTES = 120
SOURCE_DTYPE = f"S{SOURCE_BYTES}"
COMPRESSION = {"compression": "gzip", "compression_opts": 4}


def episode_path(directory: Path, index: int) -> Path:
    return Path(directory) / f"episode_{index:05d}.h5"


def write_episode(path: Path, frames, actions, rewards, terminations,
                  gzip_level: int = COMPRESSION["compression_opts"], **attrs) -> None:
    """Write one episode atomically, its arrays compressed at ``gzip_level``."""
    T = len(actions)
    assert frames.shape == (T + 1, FRAME_SIZE, FRAME_SIZE, 3), f"frames {frames.shape}, T={T}"
    assert actions.ndim == 2 and len(actions) == T, f"actions {actions.shape} for T={T}"
    compression = {"compression": "gzip", "compression_opts": gzip_level}
    with atomic_path(path, "") as tmp:
        with h5py.File(tmp, "w") as file:
            file.create_dataset(
                "frames", data=frames, chunks=(min(T + 1, 100), FRAME_SIZE, FRAME_SIZE, 3),
                **compression,
            )
            for key, value, dtype in (("actions", actions, np.float32),
                                      ("rewards", rewards, np.float32),
                                      ("terminations", terminations, np.uint8)):
                file.create_dataset(key, data=np.asarray(value, dtype), **compression)
            for key, value in attrs.items():
                file.attrs[key] = value


CORRUPT_ADVICE = ("delete it and re-run `worldmodels collect` with the same options to collect "
                  "it again, or add --skip-corrupt to leave it out")


def corrupt_episode(path: Path, problem: str) -> WorldModelsError:
    """The one-line error for a damaged episode file, with advice that works when followed."""
    return WorldModelsError(f"episode file {path} is corrupt ({problem}): {CORRUPT_ADVICE}")


def read_episode(path: Path) -> dict:
    """All arrays and attributes of one episode file, checked against the schema."""
    problem = check_episode(path)
    if problem is None:
        try:
            with h5py.File(path, "r") as file:
                episode = {key: file[key][()] for key in file.keys()}
                episode["attrs"] = dict(file.attrs)
            return episode
        except (OSError, KeyError, ValueError, RuntimeError) as error:
            problem = f"unreadable ({_first_line(error)})"
    raise corrupt_episode(path, problem)


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:80] if text else type(error).__name__


def list_episodes(directory: Path) -> list[Path]:
    """The whole episode files of a rollout directory, in index order (files whose names only
    look like episodes are not)."""
    return sorted(path for path in Path(directory).glob(EPISODE_GLOB)
                  if EPISODE_NAME.fullmatch(path.name))


def episode_length(path: Path) -> int:
    """T of an episode file, read from its header."""
    try:
        with h5py.File(path, "r") as file:
            return int(file["actions"].shape[0])
    except (OSError, KeyError, ValueError, RuntimeError) as error:
        raise corrupt_episode(path, f"unreadable ({_first_line(error)})") from None


def require_episodes(directory: Path) -> list[Path]:
    """The episode files, or a one-line error naming the command that makes them."""
    paths = list_episodes(directory)
    if not paths:
        raise WorldModelsError(
            f"no rollouts in {directory}: run `worldmodels collect` first"
        )
    return paths


def check_episode(path: Path) -> str | None:
    """None if the episode file is whole and well formed (every chunk of it read once, its
    actions and rewards finite numbers), else what is wrong with it."""
    try:
        with h5py.File(path, "r") as file:
            missing = {"frames", "actions", "rewards", "terminations"} - set(file.keys())
            if missing:
                return f"missing {', '.join(sorted(missing))}"
            frames, actions = file["frames"].shape, file["actions"].shape
            T = actions[0] if actions else 0
            if frames != (T + 1, FRAME_SIZE, FRAME_SIZE, 3):
                return f"frames of shape {frames}, expected {(T + 1, FRAME_SIZE, FRAME_SIZE, 3)}"
            env_id = file.attrs.get("env_id", ENV_ID)
            env_id = env_id.decode() if isinstance(env_id, bytes) else str(env_id)
            if env_id not in ENVS:
                return f"of an env this suite does not know ({env_id!r})"
            A = get_env(env_id).action_size
            expected = {"actions": (T, A), "rewards": (T,), "terminations": (T,)}
            for key, shape in expected.items():
                if file[key].shape != shape:
                    return f"{key} of shape {file[key].shape}, expected {shape}"
            for key in expected:
                if not np.all(np.isfinite(file[key][()])):
                    return f"{key} holding NaN or inf"
            _read_every_chunk(file["frames"])  # a damaged or truncated chunk fails here
    except (OSError, KeyError, ValueError, RuntimeError, TypeError) as error:
        return f"unreadable ({_first_line(error)})"
    return None


def _read_every_chunk(dataset) -> None:
    """Read (and so decompress and check) every chunk of ``dataset`` once, a chunk's worth of
    rows at a time, so memory stays that of a chunk."""
    step = dataset.chunks[0] if dataset.chunks else max(1, len(dataset))
    for start in range(0, len(dataset), step):
        dataset[start : start + step]


def validate_episodes(paths: list[Path], skip_corrupt: bool, warn=print) -> list[Path]:
    """The episode files that are whole; a bad one is an error naming it, unless
    ``skip_corrupt``, which leaves bad files out with a warning."""
    good = []
    for path in paths:
        problem = check_episode(path)
        if problem is None:
            good.append(path)
        elif skip_corrupt:
            warn(f"skipping {path}: {problem}")
        else:
            raise corrupt_episode(path, problem)
    if not good:
        raise WorldModelsError("no readable episode files: run `worldmodels collect` first")
    return good


def stream_frames(paths: list[Path], shuffle_episodes: int, rng: np.random.Generator):
    """Yield every frame of ``paths`` once, in a shuffled order, holding at most
    ``shuffle_episodes`` episodes in memory at a time."""
    order = rng.permutation(len(paths))
    for start in range(0, len(order), shuffle_episodes):
        group = [paths[i] for i in order[start : start + shuffle_episodes]]
        frames = np.concatenate([read_episode(path)["frames"] for path in group])
        for i in rng.permutation(len(frames)):
            yield frames[i]


class SeriesWriter:
    """Appends encoded episodes to a series file. It is written as ``series.h5.partial``,
    which records how many episodes it holds, so a killed run continues where it stopped, and
    renamed to its final name when complete."""

    def __init__(self, path: Path, episodes: int, max_length: int, z_size: int,
                 action_size: int = 3, **attrs):
        self.path, self.action_size = Path(path), action_size
        self.tmp = self.path.with_name(self.path.name + ".partial")
        refuse_link(self.path), refuse_link(self.tmp)  # written under encode's lock only
        N, T, Z = episodes, max_length, z_size
        if self.tmp.exists():
            try:
                self.file = h5py.File(self.tmp, "r+")
                same = all(self.file.attrs.get(k) == v for k, v in attrs.items())
                if not same or self.file["mu"].shape != (N, T + 1, Z) or \
                        self.file["actions"].shape[2] != action_size or \
                        "sources" not in self.file:
                    self.file.close()
                    self.tmp.unlink()
            except OSError:
                self.tmp.unlink()  # killed while the file itself was being created
        if not self.tmp.exists():
            self._create(N, T, Z, attrs)
        self.file = h5py.File(self.tmp, "r+")
        for key in ("mu", "logvar", "actions", "rewards", "terminations", "lengths", "sources"):
            setattr(self, key, self.file[key])

    def _create(self, N, T, Z, attrs):
        with h5py.File(self.tmp, "w") as file:
            make = file.create_dataset
            make("mu", (N, T + 1, Z), np.float32, chunks=(1, T + 1, Z), **COMPRESSION)
            make("logvar", (N, T + 1, Z), np.float32, chunks=(1, T + 1, Z), **COMPRESSION)
            A = self.action_size
            make("actions", (N, T, A), np.float32, chunks=(1, T, A))
            make("rewards", (N, T), np.float32, chunks=(1, T))
            make("terminations", (N, T), np.uint8, chunks=(1, T))
            make("lengths", (N,), np.int32)
            make("sources", (N,), SOURCE_DTYPE)  # which episode file each row encodes
            for key, value in dict(attrs, z_size=Z, encoded=0).items():
                file.attrs[key] = value

    @property
    def encoded(self) -> int:
        """Episodes already written (in order)."""
        return int(self.file.attrs["encoded"])

    def write(self, index: int, mu, logvar, actions, rewards, terminations,
              source: str = "") -> None:
        T = len(actions)
        assert mu.shape == (T + 1, self.mu.shape[2]), f"mu {mu.shape} for T={T}"
        assert index == self.encoded, f"episode {index} written after {self.encoded}"
        self.mu[index, : T + 1] = mu
        self.logvar[index, : T + 1] = logvar
        self.actions[index, :T] = actions
        self.rewards[index, :T] = rewards
        self.terminations[index, :T] = terminations
        self.lengths[index] = T
        self.sources[index] = source.encode()[:SOURCE_BYTES]
        self.file.attrs["encoded"] = index + 1
        self.file.flush()

    def copy_rows(self, old_path: Path, rows: range, sources: list[str],
                  block: int = 256) -> None:
        """Rows ``rows`` (from the next one to write on) of the complete series at
        ``old_path``, copied as they are; the count written is recorded once a block, not once
        a row as ``write`` does, so a killed copy resumes at the last whole block."""
        assert rows.start == self.encoded, f"rows from {rows.start} after {self.encoded}"
        with h5py.File(old_path, "r") as old:
            # A row is one chunk of each dataset: where both files chunk a dataset alike (the
            # same longest episode), its stored bytes are copied as they are, not
            # decompressed and compressed again (3,000 TakeCover rows: seconds, not minutes).
            raw = {key for key in ROW_KEYS if _same_chunks(old[key], getattr(self, key))}
            lengths = old["lengths"][()]
            for index in rows:
                T = int(lengths[index])
                for key, width in zip(ROW_KEYS, (T + 1, T + 1, T, T, T)):
                    new = getattr(self, key)
                    if key in raw:
                        offset = (index,) + (0,) * (new.ndim - 1)
                        mask, chunk = old[key].id.read_direct_chunk(offset)
                        new.id.write_direct_chunk(offset, chunk, mask)
                    else:
                        new[index, :width] = old[key][index, :width]
                self.lengths[index] = T
                self.sources[index] = sources[index].encode()[:SOURCE_BYTES]
                if (index + 1 - rows.start) % block == 0 or index + 1 == rows.stop:
                    self.file.attrs["encoded"] = index + 1
                    self.file.flush()

    def close(self, complete: bool = True) -> None:
        self.file.close()
        if complete:
            os.replace(self.tmp, self.path)


ROW_KEYS = ("mu", "logvar", "actions", "rewards", "terminations")  # one chunk a row each


def _same_chunks(old: h5py.Dataset, new: h5py.Dataset) -> bool:
    """Whether a stored chunk of ``old`` is, byte for byte, a valid chunk of ``new``."""
    return (old.chunks == new.chunks and old.dtype == new.dtype
            and old.compression == new.compression
            and old.compression_opts == new.compression_opts and old.shuffle == new.shuffle)


def episode_source(path: Path) -> str:
    """What identifies an episode file in a series: its name and size (episode files are
    written once, whole, and never changed)."""
    return f"{Path(path).name} {Path(path).stat().st_size}"


def reusable_rows(series_path: Path, vae_run_id: str, sources: list[str],
                  lengths: list[int]) -> int:
    """How many leading rows of the complete series at ``series_path`` were encoded by the V
    of ``vae_run_id`` from the same episode files (``sources``, ``lengths``): rows an encode of
    more episodes (`iterate`'s) can copy instead of encoding again. 0 for a missing, damaged or
    older series (one without sources), or one of another V."""
    if not Path(series_path).exists():
        return 0
    try:
        with require_series(series_path, vae_run_id) as old:
            if "sources" not in old:
                return 0
            stored = [s.decode() for s in old["sources"][()]]
            stored_lengths = old["lengths"][()].tolist()
    except (WorldModelsError, OSError, KeyError, ValueError, TypeError, UnicodeDecodeError):
        return 0
    rows = 0
    for before, now, t_before, t_now in zip(stored, sources, stored_lengths, lengths):
        if before != now or t_before != t_now:
            break
        rows += 1
    return rows


def require_series(path: Path, vae_run_id: str | None = None,
                   z_size: int | None = None) -> h5py.File:
    """The open series file, checked against the schema (and, when given, made by the V of
    ``vae_run_id`` for z of ``z_size``), or a one-line error naming the command that makes it
    again."""
    path = Path(path)
    if not path.exists():
        raise WorldModelsError(f"no series at {path}: run `worldmodels encode` first")
    redo = "re-run `worldmodels encode --force`"
    try:
        series = h5py.File(path, "r")
    except OSError as error:
        raise WorldModelsError(f"cannot read series file {path} ({_first_line(error)}): "
                               f"{redo}") from None
    try:
        problem = _series_problem(series, vae_run_id, z_size)
    except (OSError, KeyError, ValueError, RuntimeError, TypeError) as error:
        problem = f"unreadable ({_first_line(error)})"
    if problem is not None:
        series.close()
        raise WorldModelsError(f"series file {path} {problem}: {redo}")
    return series


def _series_problem(series: h5py.File, vae_run_id, z_size) -> str | None:
    missing = [key for key in SERIES_KEYS if key not in series]
    if missing:
        return f"lacks {', '.join(missing)}"
    N, T1, Z = series["mu"].shape
    A = series["actions"].shape[-1] if series["actions"].ndim == 3 else -1
    if A not in (1, 3):
        return f"has actions of shape {series['actions'].shape}"
    expected = {"logvar": (N, T1, Z), "actions": (N, T1 - 1, A),
                "rewards": (N, T1 - 1), "terminations": (N, T1 - 1), "lengths": (N,)}
    for key, shape in expected.items():
        if series[key].shape != shape:
            return f"has {key} of shape {series[key].shape}, expected {shape}"
    lengths = series["lengths"][()]
    if N == 0 or lengths.min() < 1 or lengths.max() > T1 - 1:
        return f"has episode lengths outside [1, {T1 - 1}]"
    if int(series.attrs.get("z_size", -1)) != Z:
        return f"says z of {series.attrs.get('z_size')} but holds z of {Z}"
    if z_size is not None and Z != int(z_size):
        return f"holds z of {Z}, not the {z_size} of V and M"
    made_by = series.attrs.get("vae_run_id")
    if isinstance(made_by, bytes):
        made_by = made_by.decode()
    if vae_run_id is not None and made_by != vae_run_id:
        return f"was encoded by V {made_by}, not by the trained V {vae_run_id}"
    for key in SERIES_KEYS[:-1]:
        series[key][-1]  # reads the last chunk: a truncated file fails here
    return None


def read_windows(series: h5py.File, indices, starts, length: int) -> dict:
    """Windows of ``length`` steps from episodes ``indices`` starting at ``starts``, zero-padded
    past each episode's end, with a mask of the real steps."""
    B, Z = len(indices), series["mu"].shape[2]
    batch = {
        "mu": np.zeros((B, length + 1, Z), np.float32),
        "logvar": np.zeros((B, length + 1, Z), np.float32),
        "actions": np.zeros((B, length, series["actions"].shape[2]), np.float32),
        "rewards": np.zeros((B, length), np.float32),
        "terminations": np.zeros((B, length), np.float32),
        "mask": np.zeros((B, length), np.float32),
    }
    lengths = series["lengths"]
    for row, (index, start) in enumerate(zip(indices, starts)):
        steps = int(min(length, lengths[index] - start))
        for key in ("mu", "logvar"):
            batch[key][row, : steps + 1] = series[key][index, start : start + steps + 1]
        for key in ("actions", "rewards", "terminations"):
            batch[key][row, :steps] = series[key][index, start : start + steps]
        batch["mask"][row, :steps] = 1.0
    return batch


def missing_episodes(directory: Path, manifest: dict) -> list[Path]:
    """Episodes of a complete collection that are gone: they are deterministic, so one deleted
    (for being corrupt) is collected again by re-running the collection."""
    try:
        episodes = int(manifest["config"]["episodes"])
    except (KeyError, TypeError, ValueError):
        return []
    return [path for path in (episode_path(directory, i) for i in range(episodes))
            if not path.exists()]
