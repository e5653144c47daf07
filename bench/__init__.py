"""`worldmodels bench`: each performance target as a ratio measured side by side in one run.

Installed as ``worldmodels_bench`` (setup.cfg); it sits beside the library, imports it and
times it. Every figure is paired with a baseline measured in the same run on the same machine:

- collect (``data``): frames/s of `collect` (policy, preprocessing, HDF5 writing) against K
  processes stepping the same policy on the same tracks and writing nothing.
- train-vae-stream, train-rnn-stream (``data``): samples/s of the training loop streaming from
  HDF5 against the same compiled step fed batches already in memory.
- vae-memory (``data``): peak resident memory of `worldmodels train-vae` on 10x more episodes
  against the smaller set (each run in its own process).
- dream (``dream``): one generation of the paper's setting (64 x 16 agents x 1,000 steps)
  against the 15 s budget, and its agent-steps/s against a loop that steps one rollout at a
  time.
- real (``real``): V + M + C in the real env against K processes replaying the very same
  actions on the same tracks without any model (so the env does exactly the same work).
- startup (``startup``): `worldmodels --help` and every stage's `--help`.

``run`` measures the targets, each in a fresh process (``python -m worldmodels_bench TARGET
WORKERS ROOT [--quick]``), and writes bench.json; ``rows`` holds the row every target returns.
"""
