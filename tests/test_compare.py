"""compare's pure parts: names of its files, the key a finished comparison is reused by, and
its table."""

from __future__ import annotations

from worldmodels.config import CompareConfig
from worldmodels.scoring.compare import comparison_key, markdown_table, output_stem


def test_output_stem_and_key():
    assert output_stem("dream", "zh", "best") == "dream-best"
    assert output_stem("real", "z-hidden", "mean") == "real-z-hidden-mean"
    config = CompareConfig(temperatures=(0.5, 1.0), episodes=2, workers=1)
    key = comparison_key({"run_id": "abc"}, "best", "zh", config, 3)
    assert key["config"]["temperatures"] == [0.5, 1.0] and "workers" not in key["config"]
    # worker counts do not change results, so they do not change the key
    other = CompareConfig(temperatures=(0.5, 1.0), episodes=2, workers=4)
    assert comparison_key({"run_id": "abc"}, "best", "zh", other, 3) == key


def test_markdown_table_marks_the_training_temperature():
    row = {"dream_mean": 1.0, "dream_std": 0.5, "dream_median_length": 10,
           "dream_mean_length": 11, "real_mean": 2.0, "real_std": 0.1, "episodes": 2}
    result = {"trained_in": "dream", "variant": "zh", "params": "best",
              "train_temperature": 1.15, "episodes": 2,
              "rows": [dict(row, temperature=1.0), dict(row, temperature=1.15)]}
    table = markdown_table(result)
    assert "| 1.15 (trained at) |" in table and "| 1 |" in table
    assert "[^real-dream-best]:" in table
