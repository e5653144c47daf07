"""A trained world: V and M loaded together, checked to fit each other, with where their
dreams start (``World``, ``load_world``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from worldmodels.core.artifacts import Layout, require_manifest
from worldmodels.errors import WorldModelsError

if TYPE_CHECKING:
    from worldmodels.envs.base import EnvSpec
    from worldmodels.model.rnn import MDNRNN
    from worldmodels.model.vae import ConvVAE


@dataclass(frozen=True, eq=False)
class World:
    """A trained V and M, the env their data came from, and where their dreams start. How a
    controller dreams in it (temperature, dropout, ...) is not the world's: see
    ``config.DreamSpec``."""

    env: EnvSpec
    """The env the rollouts were collected in (every later stage runs it)."""
    vae_manifest: dict
    rnn_manifest: dict
    z_size: int
    hidden_size: int
    rnn: MDNRNN
    vae: ConvVAE | None
    """None when loaded without V (a dream needs only M)."""
    mu0: np.ndarray
    """V's posterior of every collected episode's first frame: (episodes, Z) ..."""
    logvar0: np.ndarray
    """... and its log-variance: dreams from a blank memory start there."""
    tile_value: float
    """What one new tile pays on the collected tracks (CarRacing; see
    ``envs.carracing.tile_value``)."""
    burn_in: int = 0
    """Real steps M reads before a dream starts (0: from a first frame)."""
    starts: dict | None = None
    """With a burn-in: mu and logvar of its first burn_in + 1 steps and its first burn_in
    actions, of every collected episode longer than that."""
    members: tuple = ()
    """The other Ms of an ensemble (``RnnConfig.members``), trained on the same series from
    their own seeds; dreams are dealt out among ``rnns``."""

    @property
    def rnns(self) -> tuple:
        """Every M that dreams: M itself, then the ensemble's other members."""
        return (self.rnn, *self.members)

    @property
    def env_id(self) -> str:
        return self.env.id


def check_world(layout: Layout) -> tuple[dict, dict]:
    """The manifests of the trained V and M, refusing an M trained on another V or for another
    z size, or missing series (the dream starts from it); loads no model."""
    vae_manifest = require_manifest(layout.vae, "trained V", "train-vae")
    rnn_manifest = require_manifest(layout.rnn, "trained M", "train-rnn")
    require_manifest(layout.series_dir, "series", "encode")
    for manifest, directory, command, fields in (
            (vae_manifest, layout.vae, "train-vae", (("config", "z_size"),)),
            (rnn_manifest, layout.rnn, "train-rnn",
             (("inputs", "vae"), ("inputs", "z_size"), ("config", "hidden_size"),
              ("config", "mixtures")))):
        for part, key in fields:
            value = manifest[part].get(key)
            if value is None or (key != "vae" and not _whole(value)):
                raise WorldModelsError(
                    f"{directory / 'manifest.json'} lacks a valid {part}.{key}: re-run "
                    f"`worldmodels {command} --force`")
    if rnn_manifest["inputs"]["vae"] != vae_manifest["run_id"]:
        raise WorldModelsError(
            f"M in {layout.rnn} was trained on the series of another V than {layout.vae}: "
            "re-run `worldmodels encode` and `worldmodels train-rnn`"
        )
    if int(rnn_manifest["inputs"]["z_size"]) != int(vae_manifest["config"]["z_size"]):
        raise WorldModelsError(
            f"M in {layout.rnn} was built for z of {rnn_manifest['inputs']['z_size']} but V in "
            f"{layout.vae} has z of {vae_manifest['config']['z_size']}: re-run "
            "`worldmodels encode` and `worldmodels train-rnn`"
        )
    return vae_manifest, rnn_manifest


def experiment_env(layout: Layout):
    """The ``EnvSpec`` of an experiment: the env its rollouts were collected in (recorded by
    `collect` in their manifest), which every later stage runs."""
    from worldmodels.config import ENV_ID
    from worldmodels.envs import check_env_id, get_env

    manifest = require_manifest(layout.rollouts, "rollouts", "collect")
    env_id = manifest.get("config", {}).get("env_id", ENV_ID)
    try:
        check_env_id(env_id)
    except WorldModelsError as error:
        raise WorldModelsError(f"{layout.rollouts / 'manifest.json'}: {error}") from None
    return get_env(env_id)


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 100_000


def load_world(layout: Layout, need_vae: bool = True, burn_in: int = 0) -> World:
    """The trained V (optional) and M of an experiment, after ``check_world``, with the
    first-frame posteriors of the series (dream starts), and with ``burn_in`` > 0 the starts
    of dreams after a burn-in (``World.starts``)."""
    vae_manifest, rnn_manifest = check_world(layout)
    from worldmodels.config import ensemble_size
    from worldmodels.core.device import start_tensorflow

    start_tensorflow()
    from worldmodels.data.store import require_series
    from worldmodels.envs.carracing import tile_value
    from worldmodels.model.rnn import load_rnn
    from worldmodels.model.vae import load_vae

    z_size = int(rnn_manifest["inputs"]["z_size"])
    env = experiment_env(layout)
    action_size = rnn_manifest["inputs"].get("action_size", 3)
    if action_size != env.action_size:
        raise WorldModelsError(
            f"M in {layout.rnn} reads actions of size {action_size} but the rollouts in "
            f"{layout.rollouts} are {env.id}'s (size {env.action_size}): re-run "
            "`worldmodels encode` and `worldmodels train-rnn`")
    members = ensemble_size(rnn_manifest, layout.rnn)
    with require_series(layout.series, vae_manifest["run_id"], z_size) as series:
        starts = _burn_in_starts(series, burn_in) if burn_in else None
        return World(
            env=env, vae_manifest=vae_manifest, rnn_manifest=rnn_manifest, z_size=z_size,
            hidden_size=int(rnn_manifest["config"]["hidden_size"]),
            rnn=load_rnn(layout.rnn, z_size, rnn_manifest["config"], env.action_size),
            members=tuple(load_rnn(layout.rnn_member(k), z_size, rnn_manifest["config"],
                                   env.action_size) for k in range(1, members)),
            vae=load_vae(layout.vae, z_size) if need_vae else None,
            mu0=np.asarray(series["mu"][:, 0]), logvar0=np.asarray(series["logvar"][:, 0]),
            tile_value=tile_value(series["rewards"], series["lengths"][()]),
            burn_in=burn_in, starts=starts)


def _burn_in_starts(series, burn_in: int) -> dict:
    long_enough = np.flatnonzero(series["lengths"][()] > burn_in)
    if len(long_enough) == 0:
        raise WorldModelsError(f"no collected episode is longer than the burn-in of "
                               f"{burn_in} steps: use a shorter --burn-in")
    return {"mu": np.asarray(series["mu"][:, : burn_in + 1])[long_enough],
            "logvar": np.asarray(series["logvar"][:, : burn_in + 1])[long_enough],
            "actions": np.asarray(series["actions"][:, :burn_in])[long_enough]}
