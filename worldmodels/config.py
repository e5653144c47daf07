"""Configuration as data: one frozen dataclass per stage and named presets.

Presets:
- ``smoke``: every stage on a tiny scale, for tests (the whole pipeline in about a minute).
- ``small``: issue 7's recipe scaled to a 2-core CPU (the whole pipeline in about 2 h 10 min).
- ``paper``: the paper's scale and hyperparameters, for a GPU and a large CPU machine.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

PRESET_NAMES = ("smoke", "small", "paper")
ENV_ID = "CarRacing-v3"
FRAME_SIZE = 64
ACTION_SIZE = 3


@dataclass(frozen=True)
class CollectConfig:
    """Rollouts of the real env with an exploration policy."""

    env_id: str = ENV_ID
    """Gymnasium id of the environment."""
    episodes: int = 10_000
    """Number of episodes to collect."""
    max_steps: int = 1000
    """Time limit of an episode (CarRacing-v3's own limit is 1000)."""
    policy: str = "pilot"
    """Exploration policy: pilot, biased, brownian or random (see worldmodels.policies)."""
    workers: int | None = None
    """Worker processes; None means one per core."""


@dataclass(frozen=True)
class VaeConfig:
    """The ConvVAE (V) and its training."""

    z_size: int = 32
    """Size of the latent vector z."""
    kl_tolerance: float = 0.5
    """KL is floored at kl_tolerance * z_size ("free bits")."""
    learning_rate: float = 1e-4
    """Adam learning rate."""
    batch_size: int = 100
    """Frames per batch."""
    epochs: int = 10
    """Passes over the rollouts."""
    shuffle_episodes: int = 20
    """Episodes read and shuffled together when streaming (bounds memory)."""
    max_episodes: int = 0
    """Use at most this many episodes for training (0: all)."""
    checkpoint_every: int = 200
    """Batches between checkpoints (one is also written at the end of every epoch)."""


@dataclass(frozen=True)
class RnnConfig:
    """The MDN-RNN (M) with reward and done heads, and its training."""

    hidden_size: int = 256
    """LSTM units."""
    mixtures: int = 5
    """Gaussians per latent dimension."""
    learning_rate: float = 1e-3
    """Adam learning rate."""
    grad_clip: float = 1.0
    """Gradient clipping by global norm."""
    batch_size: int = 100
    """Sequences per batch."""
    sequence_length: int = 999
    """Steps per training sequence (the paper trains on whole episodes)."""
    epochs: int = 20
    """Passes over the episodes (each episode gives one random window per epoch)."""
    reward_weight: float = 1.0
    """Weight of the reward regression loss."""
    done_weight: float = 1.0
    """Weight of the done (Bernoulli) loss."""
    done_pos_weight: float = 10.0
    """Weight of the rare positive class in the done loss."""
    dropout: float = 0.0
    """Dropout rate on the LSTM output that the heads read, while training (and in the dream
    when the controller's ``dropout`` is set)."""
    checkpoint_every: int = 50
    """Batches between checkpoints (one is also written at the end of every epoch)."""


@dataclass(frozen=True)
class ControllerConfig:
    """CMA-ES over the linear controller, scored in the dream or in the real env."""

    where: str = "dream"
    """Where candidates are scored: dream (inside M) or real (the gymnasium env)."""
    population: int = 64
    """CMA-ES population size."""
    trials: int = 16
    """Rollouts per candidate; fitness is their mean return."""
    generations: int = 1800
    """Number of CMA-ES generations."""
    sigma: float = 0.1
    """Initial CMA-ES step size (the search starts at zeros)."""
    max_steps: int = 1000
    """Steps per rollout."""
    temperature: float = 1.15
    """Dream temperature used for training (tau)."""
    workers: int | None = None
    """Env worker processes when scoring in the real env; None means one per core."""
    env_id: str = ENV_ID
    """Gymnasium id of the environment (real scoring)."""
    real_every: int = 25
    """In the dream, run the best and mean candidates in the real env every this many
    generations (0: never); the paper re-evaluated its best every 25 generations."""
    real_episodes: int = 16
    """Real-env episodes for each of the best and the mean at each such check."""
    burn_in: int = 0
    """Dreams start after M has read the first burn_in real steps (z and actions) of a
    collected episode; 0 starts them from an episode's first frame with a blank memory."""
    dropout: float = 0.0
    """Dropout rate on M's output at every dream step (0: off). Dropout kept on while dreaming
    makes the dream random where M knows little, so C cannot exploit M's mistakes as
    easily."""
    action_noise: float = 0.0
    """Std of Gaussian noise added to C's actions at every dream step (clipped to the action
    box; 0: off), and in the real checks: C is scored as it drives with `evaluate --noise`."""
    dropout_mask: str = "step"
    """With dream dropout: "step" draws a fresh mask at every dream step; "dream" draws one
    mask per dream and keeps it (one model sampled per dream, as Dropout's Dream Land)."""
    pay_as_track: bool = False
    """The dream pays as a real track does: a step's predicted tile reward is at most one
    tile (1,000 / the collected tracks' mean tile count), tiles pay at most 1,000 in all and
    the dream ends when they reach it, so no dream returns more than a track can."""


@dataclass(frozen=True)
class EvaluateConfig:
    """Evaluation of a trained agent."""

    episodes: int = 100
    """Episodes to run."""
    max_steps: int = 1000
    """Steps per episode."""
    temperature: float = 1.15
    """Dream temperature (only with --where dream)."""
    workers: int | None = None
    """Env worker processes; None means one per core."""
    env_id: str = ENV_ID
    """Gymnasium id of the environment."""
    noise: float = 0.0
    """Std of Gaussian noise added to C's actions in the real env (clipped to the action box),
    as `iterate` collects; 0: C alone."""


@dataclass(frozen=True)
class CompareConfig:
    """Dream vs real: one trained controller scored in the dream at several temperatures and
    in the real env, the same number of episodes each."""

    temperatures: tuple[float, ...] = (0.5, 0.75, 1.0, 1.15, 1.3)
    """Dream temperatures of the sweep (not the temperature C was trained at)."""
    dropouts: tuple[float, ...] = ()
    """Dream dropout rates of a second sweep, at the temperature C was trained at (empty: no
    such sweep): how hard the dream must be for its score to match the real one."""
    episodes: int = 100
    """Episodes in the dream at each temperature, and in the real env."""
    max_steps: int = 1000
    """Steps per episode."""
    workers: int | None = None
    """Env worker processes; None means one per core."""
    env_id: str = ENV_ID
    """Gymnasium id of the environment."""


@dataclass(frozen=True)
class FidelityConfig:
    """Dream fidelity (`worldmodels fidelity`): M measured against the trained controller's own
    real episodes, on tracks disjoint from collection, training and evaluation."""

    episodes: int = 16
    """Real episodes of the controller that M is measured along."""
    dream_episodes: int = 100
    """Dreams of the same controller, for the dream's return distribution."""
    max_steps: int = 1000
    """Steps per episode (real and dream)."""
    horizons: tuple[int, ...] = (1, 5, 10, 20, 50)
    """Steps ahead at which M's open-loop z prediction is scored."""
    open_loop_stride: int = 25
    """Open-loop predictions start at every this many real steps."""
    workers: int | None = None
    """Env worker processes; None means one per core."""
    env_id: str = ENV_ID
    """Gymnasium id of the environment."""


@dataclass(frozen=True)
class IterateConfig:
    """Iterative training (`worldmodels iterate`): rounds of collection with the controller plus
    noise, then more training of M and C on old + new data."""

    rounds: int = 0
    """Rounds in all (0: `pipeline` does not iterate)."""
    episodes: int = 32
    """Episodes collected with C + noise per round."""
    noise: float = 0.1
    """Standard deviation of the Gaussian noise added to every action of C."""
    rnn_epochs: int = 50
    """Further epochs of M per round."""
    generations: int = 30
    """Further CMA-ES generations of C per round."""


@dataclass(frozen=True)
class Preset:
    """All stage configs of one preset."""

    collect: CollectConfig = field(default_factory=CollectConfig)
    vae: VaeConfig = field(default_factory=VaeConfig)
    rnn: RnnConfig = field(default_factory=RnnConfig)
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    compare: CompareConfig = field(default_factory=CompareConfig)
    fidelity: FidelityConfig = field(default_factory=FidelityConfig)
    iterate: IterateConfig = field(default_factory=IterateConfig)


def _smoke() -> Preset:
    return Preset(
        collect=CollectConfig(episodes=4, max_steps=60, workers=2),
        vae=VaeConfig(epochs=1, batch_size=32, shuffle_episodes=2),
        rnn=RnnConfig(epochs=2, batch_size=4, sequence_length=30),
        controller=ControllerConfig(
            population=4, trials=2, generations=2, max_steps=40, workers=2, real_every=0,
            real_episodes=1,
        ),
        evaluate=EvaluateConfig(episodes=2, max_steps=60, workers=2),
        compare=CompareConfig(episodes=2, max_steps=60, workers=2),
        fidelity=FidelityConfig(episodes=2, dream_episodes=4, max_steps=60, horizons=(1, 5),
                                open_loop_stride=10, workers=2),
        iterate=IterateConfig(rounds=1, episodes=2, rnn_epochs=1, generations=1),
    )


def _small() -> Preset:
    # Issue 7's recipe (results/EXPERIMENTS.md): data that covers braking and full throttle,
    # dropout in M kept on while dreaming, dreams after a burn-in, then rounds of iterative
    # training, C scored in the dream with the action noise 0.1 it is also collected with.
    # Real checks: 4 x (2 + 2) real episodes in the first 100 generations.
    return Preset(
        collect=CollectConfig(episodes=80, max_steps=1000, policy="rally"),
        vae=VaeConfig(epochs=2, batch_size=100),
        rnn=RnnConfig(epochs=200, batch_size=32, sequence_length=300, dropout=0.1),
        controller=ControllerConfig(population=32, trials=8, generations=100, max_steps=1000,
                                    real_every=25, real_episodes=2, burn_in=20, dropout=0.1,
                                    action_noise=0.1),
        evaluate=EvaluateConfig(episodes=100),
        compare=CompareConfig(episodes=20),
        fidelity=FidelityConfig(episodes=8, dream_episodes=100),
        iterate=IterateConfig(rounds=5, episodes=32, noise=0.1, rnn_epochs=50, generations=30),
    )


def _paper() -> Preset:
    return Preset()


_PRESETS = {"smoke": _smoke, "small": _small, "paper": _paper}


def get_preset(name: str) -> Preset:
    """Return the named preset; raise ValueError for an unknown name."""
    if name not in _PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESET_NAMES)}")
    return _PRESETS[name]()


def override(config, **changes):
    """Return ``config`` with the non-None ``changes`` applied (CLI overrides)."""
    changes = {k: v for k, v in changes.items() if v is not None}
    return dataclasses.replace(config, **changes)


def to_dict(config) -> dict:
    """A JSON-ready dict of a config dataclass."""
    return dataclasses.asdict(config)


def controller_param_count(z_size: int, hidden_size: int) -> int:
    """Parameters of a controller on [z, h]: 867 for the paper's sizes."""
    from worldmodels.controller import param_count

    return param_count(z_size + hidden_size)
