"""The envs wing: one module per env, each defining an ``EnvSpec`` (``base``). The env of an
experiment is chosen once, at `collect`, recorded in the rollouts' manifest, and every later
stage reads it from there (``models.load_world``). A third env is one new module here, a line
in ``ENVS`` and a preset."""

from __future__ import annotations

from functools import cache

from worldmodels.envs.base import EnvSpec, Policy
from worldmodels.errors import WorldModelsError

ENVS = {"CarRacing-v3": "carracing", "VizdoomTakeCover-v1": "takecover"}
"""Every env the suite knows: its id -> the module in this package that defines it."""

__all__ = ["ENVS", "EnvSpec", "Policy", "check_env_id", "get_env", "make_env"]


def check_env_id(env_id) -> None:
    """Raise a one-line error unless ``env_id`` is an env the suite knows."""
    if not isinstance(env_id, str) or env_id not in ENVS:
        raise WorldModelsError(f"unknown env {env_id!r}: this suite runs "
                               f"{' and '.join(ENVS)}")


@cache
def get_env(env_id: str) -> EnvSpec:
    """The ``EnvSpec`` of ``env_id``."""
    from importlib import import_module

    check_env_id(env_id)
    return import_module(f"worldmodels.envs.{ENVS[env_id]}").SPEC


def make_env(env_id: str, max_steps: int, render_mode: str | None = None):
    """A new env of ``env_id`` with a time limit of ``max_steps``."""
    return get_env(env_id).make(max_steps, render_mode)
