import h5py
import numpy as np

from worldmodels.data.store import (
    SeriesWriter,
    episode_path,
    list_episodes,
    read_episode,
    read_windows,
    stream_frames,
    write_episode,
)


def _episode(T, value=0):
    rng = np.random.default_rng(value)
    return {
        "frames": rng.integers(0, 256, (T + 1, 64, 64, 3), dtype=np.uint8),
        "actions": rng.uniform(-1, 1, (T, 3)).astype(np.float32),
        "rewards": rng.normal(size=T).astype(np.float32),
        "terminations": (np.arange(T) == T - 1).astype(np.uint8),
    }


def test_episode_round_trip_is_exact_and_compressed(tmp_path):
    episode = _episode(12)
    path = episode_path(tmp_path, 3)
    write_episode(path, **episode, seed=42, policy="pilot")
    assert list_episodes(tmp_path) == [path]
    assert not list(tmp_path.glob("*.tmp*"))
    loaded = read_episode(path)
    for key in ("frames", "actions", "rewards", "terminations"):
        np.testing.assert_array_equal(loaded[key], episode[key])
    assert loaded["attrs"]["seed"] == 42
    with h5py.File(path) as file:
        assert file["frames"].compression == "gzip" and file["frames"].chunks is not None


def test_stream_frames_yields_every_frame_once(tmp_path):
    paths = []
    for i, T in enumerate((5, 9, 3)):
        episode = _episode(T, i)
        episode["frames"][:] = 0
        episode["frames"][:, 0, 0, 0] = np.arange(T + 1) + 20 * i  # a unique tag per frame
        paths.append(episode_path(tmp_path, i))
        write_episode(paths[-1], **episode)
    tags = [int(f[0, 0, 0]) for f in stream_frames(paths, 2, np.random.default_rng(0))]
    expected = sorted(t + 20 * i for i, T in enumerate((5, 9, 3)) for t in range(T + 1))
    assert sorted(tags) == expected
    assert tags != expected  # shuffled


def _write_series(path, lengths, T_max, seed=0):
    rng = np.random.default_rng(seed)
    writer = SeriesWriter(path, len(lengths), T_max, 4, vae_run_id="abc")
    for i, T in enumerate(lengths):
        mu = rng.normal(size=(T + 1, 4)).astype(np.float32)
        writer.write(i, mu, -mu, rng.uniform(-1, 1, (T, 3)), rng.normal(size=T),
                     np.arange(T) == T - 1, f"episode_{i}.h5")
    writer.close()


def test_copied_rows_hold_what_was_written_whether_chunks_match_or_not(tmp_path):
    _write_series(tmp_path / "old.h5", (10, 6, 9), 10)
    sources = [f"episode_{i}.h5" for i in range(4)]
    # The same longest episode (stored chunks copied as they are), then a longer one (the
    # rows decompressed and written again): both read back as the old rows.
    for T_max in (10, 14):
        path = tmp_path / f"new-{T_max}.h5"
        writer = SeriesWriter(path, 4, T_max, 4, vae_run_id="abc")
        writer.copy_rows(tmp_path / "old.h5", range(0, 3), sources, block=2)
        assert writer.encoded == 3
        writer.write(3, np.ones((5, 4)), np.ones((5, 4)), np.ones((4, 3)), np.ones(4),
                     np.zeros(4), sources[3])
        writer.close()
        with h5py.File(tmp_path / "old.h5") as old, h5py.File(path) as new:
            for key in ("mu", "logvar", "actions", "rewards", "terminations"):
                width = old[key].shape[1]
                np.testing.assert_array_equal(new[key][:3, :width], old[key][()])
                assert not new[key][:3, width:].any()
            assert new["lengths"][()].tolist() == [10, 6, 9, 4]
            assert [s.decode() for s in new["sources"][()]] == sources


def test_series_windows_are_padded_and_masked(tmp_path):
    path = tmp_path / "series.h5"
    writer = SeriesWriter(path, 2, 10, 4, vae_run_id="abc")
    lengths = (10, 6)
    for i, T in enumerate(lengths):
        mu = np.arange((T + 1) * 4, dtype=np.float32).reshape(T + 1, 4) + 100 * i
        writer.write(i, mu, -mu, np.ones((T, 3)), np.arange(T), np.zeros(T))
    writer.close()
    with h5py.File(path) as series:
        assert series.attrs["vae_run_id"] == "abc" and series.attrs["z_size"] == 4
        window = read_windows(series, [0, 1], [2, 3], 5)
    assert window["mask"].tolist() == [[1] * 5, [1, 1, 1, 0, 0]]
    np.testing.assert_array_equal(window["mu"][0, 0], np.arange(8, 12))
    np.testing.assert_array_equal(window["rewards"][1], [3, 4, 5, 0, 0])
    assert window["mu"][1, 3].tolist() == (np.arange(24, 28) + 100).tolist()
    assert (window["mu"][1, 4:] == 0).all()
