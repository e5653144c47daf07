"""Configuration as data: one frozen dataclass per stage and named presets.

Presets:
- ``smoke``: every stage on a tiny scale, for tests (the whole pipeline in about a minute).
- ``small``: issue 7's recipe scaled to a 2-core CPU (the whole pipeline in about 2 h 10 min).
- ``paper``: the paper's scale and hyperparameters, for a GPU and a large CPU machine.
- ``doom-smoke``, ``doom-small``, ``doom-paper``: the same three scales of the paper's dream
  experiment, ViZDoom's TakeCover (z of 64, an LSTM of 512, C trained only in the dream).
"""

from __future__ import annotations

import ast
import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from worldmodels.envs import ENVS, get_env
from worldmodels.errors import WorldModelsError

CONTROLLER_VARIANTS = ("zh", "zhc", "z", "z-hidden")
"""What C reads: [z, h] (the default), [z, h, c] (M's whole state, the paper's TakeCover C),
z alone, or z through a hidden layer (see worldmodels.model.controller)."""
PRESET_NAMES = ("smoke", "small", "paper", "doom-smoke", "doom-small", "doom-paper")
ENV_ID = "CarRacing-v3"
FRAME_SIZE = 64


@dataclass(frozen=True)
class CollectConfig:
    """Rollouts of the real env with an exploration policy."""

    env_id: str = ENV_ID
    """The env: CarRacing-v3 or VizdoomTakeCover-v1 (see worldmodels.envs). Chosen here, once:
    every later stage reads it from the rollouts' manifest."""
    episodes: int = 10_000
    """Number of episodes to collect."""
    max_steps: int = 1000
    """Time limit of an episode (CarRacing-v3's own limit is 1000)."""
    policy: str = "pilot"
    """Exploration policy: pilot, rally, recover (rally leaving the road and finding it
    again), biased, brownian or random on CarRacing; repeat or random on TakeCover (see
    worldmodels.envs). Policies joined by + take the episodes in turn: rally+recover gives
    episode 0 to rally, 1 to recover, 2 to rally, ..."""
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
    windows: str = "random"
    """Which steps of an episode a training sequence holds. "random": a window of
    ``sequence_length`` steps from a random start, M's memory blank at it; an episode longer
    than that has its last step in a window only once in (length - sequence_length + 1)
    epochs. "from-start": the episode from its first step (up to ``sequence_length`` steps),
    so M's memory starts where a dream's does and every ending is seen; the episodes of a batch
    have similar lengths, so little of it is padding."""
    epochs: int = 20
    """Passes over the episodes (each episode gives one sequence per epoch)."""
    reward_weight: float = 1.0
    """Weight of the reward regression loss."""
    reward_over_weight: float = 1.0
    """How much more a step where M predicts more reward than the env paid costs than one where
    it predicts less (1: plain squared error). Above 1, M learns to be stingy where it is
    unsure, so the dream pays less for what it cannot tell apart (a 2025 CarRacing-v3
    reproduction that trained C in the dream used 5). M then learns the 1/(1 + w) expectile of
    a step's reward, not its mean: with 5 on CarRacing's sparse tile rewards, the dream paid
    nothing and C learned nothing (row R2 of results/EXPERIMENTS.md)."""
    done_weight: float = 1.0
    """Weight of the done (Bernoulli) loss."""
    done_pos_weight: float = 10.0
    """Weight of the rare positive class in the done loss."""
    dropout: float = 0.0
    """Dropout rate on the LSTM output that the heads read, while training (and in the dream
    when the controller's ``dropout`` is set)."""
    checkpoint_every: int = 50
    """Batches between checkpoints (one is also written at the end of every epoch)."""
    members: int = 1
    """Ms trained on the same series, each from its own seed (an ensemble): M itself in
    RESULTS/NAME/rnn, member K > 0 in rnn/member-K from seed + 1000 K. Every dream (C's
    fitness, evaluate and compare in the dream) is dealt out among them in turn, so C is scored
    on several Ms and cannot live off the mistakes of one. Pictures and measures of M itself
    (show, fidelity's open loop) read M alone."""


def member_seed(seed: int, member: int) -> int:
    """The training seed of ensemble member ``member`` (0: M itself) of a run seeded ``seed``."""
    return (seed + 1000 * member) % (2**31 - 1)


def ensemble_size(rnn_manifest: dict, directory: Path) -> int:
    """How many Ms the trained M in ``directory`` (its manifest ``rnn_manifest``) is: its
    ``members``, 1 for an M trained before ensembles; a one-line error for anything else."""
    members = rnn_manifest.get("config", {}).get("members", 1)
    if (isinstance(members, bool) or not isinstance(members, int)
            or RANGES["members"].problem(members)):
        raise WorldModelsError(f"{Path(directory) / 'manifest.json'} holds an invalid "
                               "config.members: re-run `worldmodels train-rnn --force`")
    return members


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
    steer_penalty: float = 0.0
    """Smooth control: each dream step's score loses this times how far C's steering moved
    since the step before (|steer_t - steer_t-1|, before action noise; 0: off). A controller
    that zigzags between full left and full right (about 2 a step) pays up to twice this a
    step. Dream scores (fitness, `evaluate --where dream`, fidelity's dreams) include it; the
    real env never does."""
    recheck: int = 0
    """Each generation's top candidate is scored again on this many fresh rollouts, and that
    score, not the few trials that made it the generation's top, decides whether it replaces
    the best so far (0: off). The top of thousands of noisy scores is mostly luck (the winner's
    curse); the paper re-evaluated its best candidate on many rollouts."""
    pay_as_track: bool = False
    """The dream pays as a real track does: a step's predicted tile reward is at most one
    tile (1,000 / the collected tracks' mean tile count), tiles pay at most 1,000 in all and
    the dream ends when they reach it, so no dream returns more than a track can."""
    ensemble: str = "mean"
    """With an ensemble of Ms (``rnn.members`` > 1), what a candidate's fitness is: "mean" of
    all its dreams; "worst": the least of its mean in each member, so a C that only one
    member's dream pays well is not chosen (the mean let the member whose dream C beats decide:
    row T22 of results/EXPERIMENTS.md), but C then learns the harshest dream (row T24);
    "median": the median of its means in the members, so a C is paid what most members agree
    on (with two members, their mean)."""



@dataclass(frozen=True)
class DreamSpec:
    """How a controller was dreamt: the dream options it was trained with, read from its
    ``ControllerConfig`` or its manifest. Every default is ``ControllerConfig``'s (one home):
    a manifest that predates a field takes it from there."""

    temperature: float = ControllerConfig.temperature
    """Dream temperature C was trained at (tau)."""
    burn_in: int = ControllerConfig.burn_in
    """Real steps M reads before the dream starts (0: from a first frame, blank memory)."""
    dropout: float = ControllerConfig.dropout
    """Dropout rate on M's output at every dream step (0: off)."""
    dropout_mask: str = ControllerConfig.dropout_mask
    """"step" (a fresh mask every step) or "dream" (one mask per dream)."""
    action_noise: float = ControllerConfig.action_noise
    """Std of Gaussian noise on C's actions (0: off)."""
    steer_penalty: float = ControllerConfig.steer_penalty
    """Score lost per unit of steering change a step (0: off)."""
    pay_as_track: bool = ControllerConfig.pay_as_track
    """The dream pays as a real track does."""
    ensemble: str = ControllerConfig.ensemble
    """How an ensemble's members' scores make a candidate's fitness: "mean", "worst" or
    "median"."""
    max_steps: int = ControllerConfig.max_steps
    """Steps per dream (the burn-in counts against them)."""

    @classmethod
    def from_config(cls, config: ControllerConfig | dict) -> DreamSpec:
        """The spec of a ControllerConfig, or of a manifest's config dict (a field it lacks
        takes ControllerConfig's default)."""
        if not isinstance(config, dict):
            config = dataclasses.asdict(config)
        return cls(**{f.name: config[f.name] for f in dataclasses.fields(cls)
                      if f.name in config})

    @classmethod
    def from_manifest(cls, manifest: dict) -> DreamSpec:
        """The spec a controller's manifest records (its ``config``)."""
        return cls.from_config(manifest.get("config", {}))

    def options(self) -> dict:
        """The options DreamScorer takes beside temperature, max_steps and burn-in."""
        return {"dropout": self.dropout, "action_noise": self.action_noise,
                "pay_as_track": self.pay_as_track, "dropout_mask": self.dropout_mask,
                "steer_penalty": self.steer_penalty}


@dataclass(frozen=True)
class EvaluateConfig:
    """Evaluation of a trained agent."""

    episodes: int = 100
    """Episodes to run."""
    max_steps: int = 1000
    """Steps per episode."""
    temperature: float | None = None
    """Dream temperature (only with --where dream); None: the one C was trained at."""
    workers: int | None = None
    """Env worker processes; None means one per core."""
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
    candidate_episodes: int = 0
    """Ranking: the candidates CMA-ES would score next (one population, from C's saved state)
    are scored in the dream as in training and on this many real tracks each; the rank
    correlation says whether the dream orders controllers as the real env does (0: off)."""
    fixed_episodes: int = 8
    """Fixed actions: each of the env's constant behaviours (``EnvSpec.fixed_actions``, e.g.
    TakeCover's "always right") is scored on this many of the real tracks and in
    ``dream_episodes`` dreams, to see whether the dream knows what it earns (0: off)."""
    data_episodes: int = 100
    """Endings on the data: M is read along up to this many of the collected episodes and as
    many of `iterate`'s (the controller's own), to count the endings (deaths, leaving the
    playfield) at which the dream would end as the env did (0: off)."""
    workers: int | None = None
    """Env worker processes; None means one per core."""


@dataclass(frozen=True)
class SelectConfig:
    """Real selection (`worldmodels select`): the CMA-ES means C passed through while it evolved
    in the dream, and the best candidate it kept, scored on validation tracks disjoint from
    collection, training, evaluation and fidelity; the highest becomes ``selected``, a result
    reported apart as "dream-trained, real-selected"."""

    episodes: int = 16
    """Validation tracks each candidate drives."""
    every: int = 10
    """Generations between the CMA-ES means considered (and the last generation's)."""
    dream_episodes: int = 32
    """Dreams each candidate is also scored in (as in training, at C's temperature), to see
    whether the dream orders the candidates as the validation tracks do (0: none)."""
    noise: float = 0.0
    """Std of Gaussian noise added to C's actions (as `evaluate --noise`); 0: C alone."""
    max_steps: int = 1000
    """Steps per episode."""
    workers: int | None = None
    """Env worker processes; None means one per core."""


@dataclass(frozen=True)
class ResolutionConfig:
    """The dream's resolution (`worldmodels resolution`): how the dream C was trained in orders
    controllers against how validation tracks of their own order them (Spearman's rank
    correlation, with its spread over dream seeds)."""

    episodes: int = 6
    """Validation tracks each candidate drives."""
    every: int = 10
    """Generations between the CMA-ES means (checkpoints) considered (and the last's)."""
    population: int = 12
    """Fresh samples of CMA-ES's last search distribution around its final mean (0: none)."""
    dream_seeds: int = 3
    """Dream seeds each candidate is scored under (the correlation's spread is over these)."""
    dream_episodes: int | None = None
    """Dreams per candidate and dream seed; None means as many as one generation of the run's
    C training scored a candidate on (its --trials): the order CMA-ES saw."""
    noise: float = 0.0
    """Std of Gaussian noise added to C's actions in the real env; 0: C alone."""
    max_steps: int = 1000
    """Steps per episode, real and dreamt."""
    workers: int | None = None
    """Env worker processes; None means one per core."""
    enabled: bool = True
    """Whether `pipeline` measures it after training C."""


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
    select: SelectConfig = field(default_factory=SelectConfig)
    resolution: ResolutionConfig = field(default_factory=ResolutionConfig)
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
                                open_loop_stride=10, fixed_episodes=1, data_episodes=3,
                                workers=2),
        select=SelectConfig(episodes=1, every=1, dream_episodes=2, max_steps=60, workers=2),
        resolution=ResolutionConfig(episodes=2, every=1, population=2, dream_seeds=2,
                                    max_steps=60, workers=2),
        iterate=IterateConfig(rounds=1, episodes=2, rnn_epochs=1, generations=1),
    )


def _small() -> Preset:
    # Issue 7's recipe (results/EXPERIMENTS.md): data that covers braking and full throttle,
    # dropout in M kept on while dreaming, dreams after a burn-in, then rounds of iterative
    # training, C scored in the dream with the action noise 0.1 it is also collected with, and
    # smooth steering scored (EXPERIMENTS rows 16 and 18: above the same recipe without it on
    # two seeds, by 57.3 and 306.9 on the same 100 tracks).
    # Real checks: 4 x (2 + 2) real episodes in the first 100 generations.
    # M reads whole episodes from their first step (row R4b: with the rounds, 752.4 with
    # action noise 0.1 on seed 0, against 399.7 for random 300-step windows, row R1): the dream
    # runs 980 steps after its burn-in, past where a 300-step window's memory ever trained.
    # Each candidate is scored on 16 dreams, not 8 (row R7: seed 1 769.4 against 560.0 with
    # 8, row R5): with 8 the late search compares near neighbours on mostly dream noise (R6).
    return Preset(
        collect=CollectConfig(episodes=80, max_steps=1000, policy="rally"),
        vae=VaeConfig(epochs=2, batch_size=100),
        rnn=RnnConfig(epochs=200, batch_size=32, sequence_length=1000, windows="from-start",
                      dropout=0.1),
        controller=ControllerConfig(population=32, trials=16, generations=100, max_steps=1000,
                                    real_every=25, real_episodes=2, burn_in=20, dropout=0.1,
                                    action_noise=0.1, steer_penalty=0.5),
        evaluate=EvaluateConfig(episodes=100, noise=0.1),  # the policy scored in the dream
        compare=CompareConfig(episodes=20),
        fidelity=FidelityConfig(episodes=8, dream_episodes=100, candidate_episodes=0),
        select=SelectConfig(episodes=8, every=10, noise=0.1),
        resolution=ResolutionConfig(episodes=12, every=20, noise=0.1),
        iterate=IterateConfig(rounds=5, episodes=32, noise=0.1, rnn_epochs=50, generations=30),
    )


def _paper() -> Preset:
    return Preset()


TAKECOVER = "VizdoomTakeCover-v1"


def _doom_paper() -> Preset:
    # The paper's TakeCover: 10,000 random-policy episodes (each move held 1-10 frames) capped
    # at 2,100 steps, z of 64, LSTM 512 x 5 mixtures with a done head, C on [z, h] trained only
    # in the dream at tau 1.15 with 64 x 16 dreams, dreams from real first frames.
    return Preset(
        collect=CollectConfig(env_id=TAKECOVER, episodes=10_000, max_steps=2100,
                              policy="repeat"),
        vae=VaeConfig(z_size=64, epochs=10),
        # Whole episodes from their first step: the game shows neither health nor hits, so
        # only a memory that started with the episode can tell which fireball kills; random
        # windows of 300-500 steps held C's deaths (after 300-400 steps) in few sequences
        # and M missed most of them (rows T13-T14 of results/EXPERIMENTS.md).
        rnn=RnnConfig(hidden_size=512, sequence_length=2100, windows="from-start", epochs=20,
                      reward_weight=0.0),
        controller=ControllerConfig(population=64, trials=16, generations=200, max_steps=2100,
                                    real_every=25, real_episodes=16),
        evaluate=EvaluateConfig(episodes=100, max_steps=2100),
        compare=CompareConfig(temperatures=(0.1, 0.5, 1.0, 1.15, 1.3), episodes=100,
                              max_steps=2100),
        fidelity=FidelityConfig(episodes=16, dream_episodes=100, max_steps=2100),
        select=SelectConfig(episodes=16, every=10, max_steps=2100),
        resolution=ResolutionConfig(episodes=16, every=25, population=16, max_steps=2100),
    )


def _doom_small() -> Preset:
    # The paper's recipe on a 2-core CPU: fewer episodes, V one pass over them, shorter
    # training. M keeps the paper's LSTM of 512: on validation episodes (--seed 7) it scored
    # 825.6 and 768.2 on seeds 1 and 0, where LSTMs of 256 of the same recipe scored 280-828
    # (rows T22, T30, T32 of results/EXPERIMENTS.md); the pipeline took 91 min on a quiet CPU.
    paper = _doom_paper()
    return dataclasses.replace(
        paper,
        # Half the episodes 'wander' (held moves with a leaning, so some stay by a wall): on
        # the paper's 'repeat' data alone M never sees a wall kill and every C learned to press
        # against one (rows T10-T11 of results/EXPERIMENTS.md: real 168-221 -> 312.7).
        collect=dataclasses.replace(paper.collect, episodes=3000, policy="repeat+wander"),
        # At the paper's 1e-4, one pass over 200 episodes learns only the mean frame (no walls,
        # no fireballs: EXPERIMENTS.md, TakeCover row 1); 1e-3 makes up for the fewer steps,
        # and one pass over 600 episodes draws the close fireballs (row T3; 200: row T2).
        vae=dataclasses.replace(paper.vae, epochs=1, learning_rate=1e-3, max_episodes=600),
        rnn=dataclasses.replace(paper.rnn, batch_size=32, epochs=20),
        controller=dataclasses.replace(paper.controller, population=32, trials=8,
                                       generations=60, real_every=20, real_episodes=4),
        compare=dataclasses.replace(paper.compare, episodes=100),
        fidelity=dataclasses.replace(paper.fidelity, episodes=8),
        select=dataclasses.replace(paper.select, episodes=8),
        resolution=dataclasses.replace(paper.resolution, episodes=8, every=10, population=12),
        # No rounds by default: on M trained from the episodes' start (row T14), each round
        # lowered the real score on validation episodes (832.5 before, 814.6 / 786.8 / 750.9
        # after rounds 1-3); on T11's M three rounds had helped (312.7 -> 408.4, row T12).
        # These are the settings `worldmodels iterate --rounds N` uses.
        iterate=IterateConfig(rounds=0, episodes=100, noise=0.5, rnn_epochs=5, generations=20),
    )


def _doom_smoke() -> Preset:
    smoke = _smoke()
    return dataclasses.replace(
        smoke,
        collect=CollectConfig(env_id=TAKECOVER, episodes=4, max_steps=60, policy="repeat",
                              workers=2),
        vae=dataclasses.replace(smoke.vae, z_size=16),
        rnn=dataclasses.replace(smoke.rnn, hidden_size=32, reward_weight=0.0,
                                windows="from-start", sequence_length=64),
        compare=dataclasses.replace(smoke.compare, temperatures=(0.5, 1.15)),
    )


_PRESETS = {"smoke": _smoke, "small": _small, "paper": _paper, "doom-smoke": _doom_smoke,
            "doom-small": _doom_small, "doom-paper": _doom_paper}


def get_preset(name: str) -> Preset:
    """Return the named preset; raise WorldModelsError for an unknown name."""
    if name not in _PRESETS:
        raise WorldModelsError(f"unknown preset {name!r}; choose one of "
                               f"{', '.join(PRESET_NAMES)}")
    return _PRESETS[name]()


def override(config, **changes):
    """Return ``config`` with the non-None ``changes`` applied (CLI overrides), validated."""
    changes = {k: v for k, v in changes.items() if v is not None}
    return validate(dataclasses.replace(config, **changes))


def to_dict(config) -> dict:
    """A JSON-ready dict of a config dataclass."""
    return dataclasses.asdict(config)


# ---------------------------------------------------------------------------------------------
# Ranges: every numeric field's bounds, in one place. Sizes are bounded so that a typo is a
# one-line error instead of an out-of-memory crash; NaN and infinities are never valid.


@dataclass(frozen=True)
class Range:
    """Closed bounds [low, high]; ``above`` makes the low bound open (> low), ``below`` the
    high one (< high)."""

    low: float
    high: float
    above: bool = False
    below: bool = False

    def problem(self, value) -> str | None:
        """Why ``value`` is out of range, or None."""
        if isinstance(value, float) and not math.isfinite(value):
            return f"must be a finite number, got {value}"
        if value <= self.low if self.above else value < self.low:
            low = _plain_number(self.low)
            bound = f"greater than {low}" if self.above else f"at least {low}"
        elif value >= self.high if self.below else value > self.high:
            high = _plain_number(self.high)
            bound = f"less than {high}" if self.below else f"at most {high}"
        else:
            return None
        return f"must be in {self.describe()} ({bound}), got {value}"

    def describe(self) -> str:
        """[low, high], with ( or ) for an open bound."""
        return (f"{'(' if self.above else '['}{_plain_number(self.low)}, "
                f"{_plain_number(self.high)}{')' if self.below else ']'}")


def _plain_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


RATE = Range(0, 1, below=True)
POSITIVE = Range(0, 1e6, above=True)
WEIGHT = Range(0, 1e6)
# By field name; "section.field" keys take precedence for a field whose meaning differs.
RANGES = {
    "episodes": Range(1, 1_000_000), "max_steps": Range(1, 100_000),
    "workers": Range(1, 4096), "z_size": Range(1, 4096), "kl_tolerance": Range(0, 100),
    "learning_rate": Range(0, float("inf"), above=True, below=True),
    "batch_size": Range(1, 100_000),
    "epochs": Range(1, 1_000_000), "shuffle_episodes": Range(1, 100_000),
    "max_episodes": Range(0, 10_000_000), "checkpoint_every": Range(1, 10**9),
    "hidden_size": Range(1, 8192), "mixtures": Range(1, 1000), "grad_clip": POSITIVE,
    "sequence_length": Range(2, 10_000), "reward_weight": WEIGHT, "done_weight": WEIGHT,
    "reward_over_weight": WEIGHT,
    "done_pos_weight": WEIGHT, "dropout": RATE, "population": Range(3, 100_000),
    "trials": Range(1, 100_000), "recheck": Range(0, 100_000), "generations": Range(1, 10_000_000),
    "sigma": Range(0, 1e3, above=True), "temperature": Range(0, 100, above=True),
    "temperatures": Range(0, 100, above=True), "real_every": Range(0, 10_000_000),
    "real_episodes": Range(1, 100_000), "burn_in": Range(0, 100_000), "action_noise": RATE,
    "steer_penalty": Range(0, 1000),
    "noise": RATE, "rounds": Range(0, 100_000), "rnn_epochs": Range(1, 1_000_000),
    "seed": Range(0, 2**31 - 1), "dropouts": RATE, "dream_episodes": Range(1, 1_000_000),
    "select.dream_episodes": Range(0, 1_000_000),
    "horizons": Range(1, 100_000), "open_loop_stride": Range(1, 100_000),
    "candidate_episodes": Range(0, 10_000), "fixed_episodes": Range(0, 10_000),
    "data_episodes": Range(0, 1_000_000),
    "every": Range(1, 1_000_000), "members": Range(1, 64),
    "resolution.population": Range(0, 100_000), "dream_seeds": Range(1, 1000),
}
CHOICES = {"where": ("dream", "real"), "dropout_mask": ("step", "dream"),
           "ensemble": ("mean", "worst", "median"),
           "windows": ("random", "from-start"),
           "policy": tuple(dict.fromkeys(name for env_id in ENVS
                                         for name in get_env(env_id).policies)),
           "env_id": tuple(ENVS)}
MIXTURES = {"policy"}
"""Choice fields whose value may join several choices with + (a mixture)."""


def mixture_members(value: str) -> list[str]:
    """The choices a mixture value joins: "rally+recover" -> ["rally", "recover"]."""
    return str(value).split("+")


SECTIONS = {field.name: field.type for field in dataclasses.fields(Preset)}
"""The preset's sections (collect, vae, rnn, ...) and the names of their config classes."""
SECTION_OF_CLASS = {cls: section for section, cls in SECTIONS.items()}
STAGE_SECTIONS = {"collect": "collect", "train-vae": "vae", "train-rnn": "rnn",
                  "train-controller": "controller", "evaluate": "evaluate",
                  "compare": "compare", "fidelity": "fidelity", "select": "select",
                  "resolution": "resolution", "iterate": "iterate"}
"""The section of each stage's config (in its manifest.json)."""


def field_default(name: str):
    """The default of the config field ``name``, when every config class that has such a field
    gives it the same one (else ``dataclasses.MISSING``): what a manifest written before the
    field existed was run with."""
    defaults = {repr(field.default) for class_name in SECTIONS.values()
                for field in dataclasses.fields(globals()[class_name]) if field.name == name
                and field.default is not dataclasses.MISSING}
    if len(defaults) != 1:
        return dataclasses.MISSING
    return next(field.default for class_name in SECTIONS.values()
                for field in dataclasses.fields(globals()[class_name]) if field.name == name)


def range_of(config_class, name: str) -> Range | None:
    """The declared range of a numeric field."""
    section = SECTION_OF_CLASS.get(config_class.__name__)
    return RANGES.get(f"{section}.{name}", RANGES.get(name))


def validate(config):
    """``config`` itself when every field has its declared type (strictly: no true/false or
    null where a number belongs) and is within its declared range or choices (and the fields
    agree with each other); a one-line WorldModelsError otherwise."""
    kinds = {f.name: f.type for f in dataclasses.fields(config)}
    for name, value in to_dict(config).items():
        problem = field_problem(type(config), name, value, kinds[name])
        if problem:
            raise WorldModelsError(f"{name} {problem}")
    if isinstance(config, ControllerConfig) and config.burn_in >= config.max_steps:
        raise WorldModelsError(f"the burn-in ({config.burn_in}) must be shorter than --max-steps "
                               f"(max_steps, {config.max_steps})")
    if isinstance(config, CompareConfig) and not config.temperatures:
        raise WorldModelsError("temperatures must hold at least one temperature")
    return config


def field_problem(config_class, name: str, value, kind: str | None = None) -> str | None:
    """Why ``value`` cannot be the field ``name`` of ``config_class`` (its type, range or
    choices), or None."""
    kind = kind or {f.name: f.type for f in dataclasses.fields(config_class)}[name]
    problem = type_problem(kind, value)
    if problem or value is None:
        return problem
    bounds, choices = range_of(config_class, name), CHOICES.get(name)
    for item in value if isinstance(value, (tuple, list)) else (value,):
        if isinstance(item, str):
            parts = mixture_members(item) if name in MIXTURES else [item]
            if choices and any(part not in choices for part in parts):
                joined = " (or several joined by +)" if name in MIXTURES else ""
                return f"must be one of {', '.join(choices)}{joined}, got {_short(item)}"
        elif not isinstance(item, bool):
            if bounds:
                problem = bounds.problem(item)
            elif isinstance(item, float) and not math.isfinite(item):
                problem = f"must be a finite number, got {item}"
            if problem:
                return problem
    return None


def type_problem(kind: str, value) -> str | None:
    """Why ``value`` is not of the declared ``kind`` ("int", "float | None", "tuple[int, ...]",
    ...), or None; strict: a bool is no number, None only where the field allows it."""
    if value is None:
        return None if "None" in kind else f"expects {kind}, got null"
    base = kind.split("|")[0].strip()
    if base.startswith("tuple"):
        if not isinstance(value, (tuple, list)):
            return f"expects a list ({kind}), got {_short(value)}"
        item = "int" if base.startswith("tuple[int") else "float"
        return next((f"expects {kind}, got an item {_short(v)}" for v in value
                     if type_problem(item, v)), None)
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = {"bool": isinstance(value, bool), "int": number and isinstance(value, int),
          "float": number, "str": isinstance(value, str)}.get(base, True)
    return None if ok else f"expects {kind}, got {_short(value)}"


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


MANIFEST_NUMBERS = ("z_size", "hidden_size", "action_size", "episodes", "frames")
"""The numbers of a manifest's inputs that size what a later stage builds: checked as the
config's are."""
SIZE_RANGES = {"action_size": Range(1, 64), "frames": Range(1, 10**10)}


def manifest_problem(manifest: dict) -> str | None:
    """Why a stage's manifest (its config and inputs) cannot be trusted to build from: a
    setting of the wrong type or out of range ("config.hidden_size must be in [1, 8192] ...",
    "inputs.z_size expects int, got null"), or None."""
    stage, config = manifest.get("stage"), manifest.get("config") or {}
    section = STAGE_SECTIONS.get(stage)
    if section is not None:
        config_class = globals()[SECTIONS[section]]
        kinds = {f.name: f.type for f in dataclasses.fields(config_class)}
        for name, value in config.items():
            if name in kinds and (problem := field_problem(config_class, name, value)):
                return f"config.{name} {problem}"
    for part, values in (("config", config), ("inputs", manifest.get("inputs") or {})):
        for name in MANIFEST_NUMBERS:
            if name in values and (section is None or part == "inputs"):
                value = values[name]
                problem = type_problem("int", value) or \
                    (SIZE_RANGES.get(name) or RANGES[name]).problem(value)
                if problem:
                    return f"{part}.{name} {problem}"
    return None


@cache
def field_docs(config_class) -> dict[str, str]:
    """The docstring under each field of a config class, read from this module's source (Python
    keeps no docstrings of attributes): the CLI's help texts."""
    tree = ast.parse(Path(__file__).read_text())
    docs = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == config_class.__name__:
            for field_node, doc in zip(node.body, node.body[1:]):
                if (isinstance(field_node, ast.AnnAssign)
                        and isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant)):
                    docs[field_node.target.id] = " ".join(doc.value.value.split())
    return docs


# ---------------------------------------------------------------------------------------------
# Settings beyond a preset: files (a preset's sections, or a manifest) and "section.field=value"


def parse_value(config_class, name: str, text: str):
    """A field's value from text ("5", "0.1", "none", "0.5,1.0"), typed as the field is."""
    kind = {f.name: f.type for f in dataclasses.fields(config_class)}[name]
    try:
        if text.strip().lower() in ("none", "null") and "None" in kind:
            return None
        if kind.startswith("tuple"):
            item = int if kind.startswith("tuple[int") else float
            return tuple(item(part) for part in text.split(",") if part.strip())
        if kind == "bool":
            if text.strip().lower() not in ("true", "false", "1", "0"):
                raise ValueError(text)
            return text.strip().lower() in ("true", "1")
        if kind.startswith("int"):
            return int(text)
        if kind.startswith("float"):
            return float(text)
    except ValueError:
        raise WorldModelsError(f"{name} expects {kind}, got {text!r}") from None
    return text


def _typed(config_class, name: str, value):
    """A file's value as the field's type (text parsed, whole numbers made floats where a
    float belongs); a value of another type is a one-line error (``type_problem``)."""
    kind = {f.name: f.type for f in dataclasses.fields(config_class)}[name]
    if isinstance(value, str) and not kind.startswith("str"):
        return parse_value(config_class, name, value)
    problem = type_problem(kind, value)
    if problem:
        raise WorldModelsError(f"{name} {problem}")
    floats = "float" in kind.split("|")[0]
    if kind.startswith("tuple") and isinstance(value, list):
        return tuple(float(v) if floats else v for v in value)
    if floats and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def apply_sections(preset: Preset, sections: dict, origin: str) -> Preset:
    """``preset`` with ``sections`` ({"rnn": {"dropout": 0.1}, ...}) applied and validated."""
    changes = {}
    for section, values in sections.items():
        if section not in SECTIONS:
            raise WorldModelsError(f"{origin}: unknown section {_short(section)}; sections "
                                   f"are {', '.join(SECTIONS)}")
        if not isinstance(values, dict):
            raise WorldModelsError(f"{origin}: section {section} must be a table of settings, "
                                   f"got {type(values).__name__}")
        config = getattr(preset, section)
        known = {f.name for f in dataclasses.fields(config)}
        unknown = sorted(map(str, set(values) - known))
        if unknown:
            raise WorldModelsError(f"{origin}: {section} has no setting {unknown[0]!r}; it has "
                                   f"{', '.join(sorted(known))}")
        try:
            typed = {k: _typed(type(config), k, v) for k, v in values.items()}
            changes[section] = validate(dataclasses.replace(config, **typed))
        except WorldModelsError as error:
            raise WorldModelsError(f"{origin}: {section}.{error}") from None
    return dataclasses.replace(preset, **changes)


def _load_yaml(path: Path, text: str):
    """YAML's data (PyYAML's safe loader: no tags that build objects), or a one-line error."""
    try:
        import yaml
    except ImportError:
        raise WorldModelsError(f"{path}: reading YAML needs PyYAML (pip install pyyaml); "
                               "or give the settings as JSON or TOML") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:  # the base of PyYAML's parse and scan errors
        reason = " ".join(str(error).split())[:120]
        raise WorldModelsError(f"cannot read settings from {path}: {reason}") from None


def read_config_file(path: Path) -> dict:
    """The sections of a settings file: JSON or TOML ({"rnn": {...}, ...}), YAML when PyYAML is
    installed, or a stage's manifest.json (its resolved config, for that stage's section)."""
    path = Path(path)
    try:
        text = _read_small_file(path)
        if path.suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            data = _load_yaml(path, text)
        else:
            data = json.loads(text)
    except (OSError, ValueError) as error:  # tomllib's and json's errors are ValueErrors
        reason = " ".join(str(error).split())[:120]
        raise WorldModelsError(f"cannot read settings from {path}: {reason}") from None
    except RecursionError:
        raise WorldModelsError(f"cannot read settings from {path}: nested too deeply") from None
    if not isinstance(data, dict):
        raise WorldModelsError(f"{path}: expected a table of sections, got {type(data).__name__}")
    if "stage" in data and "config" in data:  # a manifest: its stage's resolved config
        if data["stage"] not in STAGE_SECTIONS:
            raise WorldModelsError(f"{path}: the {data['stage']} stage has no settings")
        return {STAGE_SECTIONS[data["stage"]]: data["config"]}
    return data


MAX_CONFIG_BYTES = 1_000_000
"""The largest settings file read (a preset's sections take a few kB)."""


def _read_small_file(path: Path) -> str:
    """The text of a regular file of at most MAX_CONFIG_BYTES; a device (/dev/zero), a FIFO
    (which would block) or a larger file is refused before anything is read."""
    import stat

    info = os.stat(path)  # follows a link to what it names, which is checked
    if not stat.S_ISREG(info.st_mode):
        raise WorldModelsError(f"cannot read settings from {path}: not a regular file")
    if info.st_size > MAX_CONFIG_BYTES:
        raise WorldModelsError(f"cannot read settings from {path}: {info.st_size:,} bytes, "
                               f"more than the {MAX_CONFIG_BYTES:,} a settings file may hold")
    with open(path, "rb") as file:
        data = file.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise WorldModelsError(f"cannot read settings from {path}: more than "
                               f"{MAX_CONFIG_BYTES:,} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise WorldModelsError(f"cannot read settings from {path}: not UTF-8 text") from None


def parse_setting(text: str) -> dict:
    """"rnn.done_pos_weight=5" -> {"rnn": {"done_pos_weight": "5"}} (typed when applied)."""
    key, equals, value = text.partition("=")
    section, dot, name = key.strip().partition(".")
    if not (equals and dot and section and name):
        raise WorldModelsError(f"expected SECTION.FIELD=VALUE (e.g. rnn.done_pos_weight=5), "
                               f"got {text!r}")
    return {section: {name: value.strip()}}


def resolve(preset_name: str, files=(), settings=()) -> Preset:
    """The named preset, then each settings file in order, then each "section.field=value"."""
    preset = get_preset(preset_name)
    for path in files:
        preset = apply_sections(preset, read_config_file(path), str(path))
    for text in settings:
        preset = apply_sections(preset, parse_setting(text), f"--set {text}")
    return preset
