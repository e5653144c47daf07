"""World Models (Ha & Schmidhuber, 2018) on gymnasium CarRacing-v3.

V (ConvVAE), M (MDN-RNN with reward and done heads) and C (linear controller evolved with
CMA-ES inside M's dream). Importing this package does not import TensorFlow.

- ``worldmodels.load_agent(name)``: a trained agent that acts on raw frames (``worldmodels.api``).
- ``worldmodels.stages``: every stage of the CLI as a function.
"""

__version__ = "0.1.0"


def load_agent(name: str, results_dir="results", data_dir="data", round: int | None = None,
               params: str = "best", **options):
    """The trained agent (V + M + C) of experiment ``name`` under ``results_dir`` and
    ``data_dir``: ``agent.reset(seed)``, ``agent.act(observation)`` on the env's raw frame,
    ``agent.episode(seed)``, ``agent.dream()``. ``round``: the M and C `iterate` kept after that
    round; ``params``: "best" or "mean". See ``worldmodels.api.load_agent`` for ``options``."""
    from worldmodels.api import load_agent as load

    return load(name, results_dir, data_dir, round, params, **options)
