"""The framework's Rust environments as Gymnasium 1.x environments.

Importing ``dcem`` registers them under the ``dcem/`` namespace:

====================================  ====================================================
id                                    environment
====================================  ====================================================
``dcem/CartPole-v1``                  Gymnasium's CartPole-v1 dynamics, discrete actions
``dcem/CartPoleContinuous-v1``        the same, force in [-1, 1] x 10 N
``dcem/CartpoleSwingup-v0``           the DCEM paper's cartpole swing-up (100 steps)
``dcem/Pendulum-v1``                  Gymnasium's Pendulum-v1 dynamics
``dcem/CheetahRun-v0``                dm_control cheetah.run (builds with MuJoCo only)
``dcem/WalkerWalk-v0``                dm_control walker.walk (builds with MuJoCo only)
====================================  ====================================================

Observations are float64 arrays, fresh at every call; continuous actions are float32 boxes (as
Gymnasium's Pendulum-v1 and MuJoCo tasks have them); ``spec.max_episode_steps`` is each
environment's episode length. Each id also has a vector env stepped in
Rust threads (``gymnasium.make_vec(id, n, vectorization_mode="vector_entry_point")``) with
Gymnasium's next-step autoreset.
"""
from __future__ import annotations

from typing import Any, Optional

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from ._native import core as _core
from ._native import mujoco_unavailable

__all__ = ["RustEnv", "RustVectorEnv", "IDS"]


def _require(core_id: str, gym_id: str) -> None:
    """Raises Gymnasium's DependencyNotInstalled when this install cannot make ``core_id`` (the
    MuJoCo tasks without the ``mujoco`` extra)."""
    if core_id not in _core.env_ids():
        raise gym.error.DependencyNotInstalled(f"{gym_id} needs MuJoCo: {mujoco_unavailable}")


def _float(name: str, value) -> float:
    """``value`` as a finite float (a TypeError for anything but a real number)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return float(value)


def _space(desc, dtype=np.float64) -> gym.Space:
    """A Gymnasium space from the Rust description. Unbounded coordinates become +-(largest
    float), as Gymnasium's own environments do, since its checker warns about infinities."""
    if desc[0] == "discrete":
        return gym.spaces.Discrete(int(desc[1]))
    _, low, high, shape = desc
    big = np.finfo(dtype).max
    return gym.spaces.Box(
        low=np.clip(np.asarray(low, dtype=np.float64), -big, big).astype(dtype).reshape(shape),
        high=np.clip(np.asarray(high, dtype=np.float64), -big, big).astype(dtype).reshape(shape),
        dtype=dtype,
    )


def _action_space(desc) -> gym.Space:
    """Continuous actions as float32 boxes, as Gymnasium's Pendulum-v1 and MuJoCo tasks have
    them (what SB3 expects); the Rust side receives them as float64."""
    return _space(desc, np.float32)


class RustEnv(gym.Env):
    """Base class: a ``gymnasium.Env`` around one Rust environment (``_core.RustEnv``).

    ``reset(seed=...)`` seeds ``self.np_random`` through ``super().reset`` and seeds the Rust
    environment from it, so the same seed gives the same episode and ``reset()`` without a seed
    continues the stream. Pickling keeps the constructor arguments (an unpickled env must be
    reset). ``close()`` releases nothing and may be called any number of times.
    """

    _core_id: str = ""
    _gym_id: str = ""
    metadata: dict[str, Any] = {"render_modes": [], "render_fps": 50}
    #: What ``render`` draws before the first reset (a resting pose), for the envs that render.
    _rest_obs: tuple = ()

    def __init__(self, render_mode: Optional[str] = None, *, _core_kwargs: Optional[dict] = None):
        core_kwargs = dict(_core_kwargs or {})
        _require(self._core_id, self._gym_id or type(self).__name__)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            # TypeError, as an unexpected keyword would be: what SB3's make_vec_env and other
            # callers catch to retry without rendering.
            raise TypeError(
                f"render_mode={render_mode!r} is not supported by {type(self).__name__}; "
                f"supported: {self.metadata['render_modes']}"
            )
        self.render_mode = render_mode
        self._core_kwargs = core_kwargs
        self._core = _core.RustEnv(self._core_id, **core_kwargs)
        self.observation_space = _space(self._core.observation_space())
        self.action_space = _action_space(self._core.action_space())
        self._discrete = isinstance(self.action_space, gym.spaces.Discrete)
        self._last_obs: Optional[np.ndarray] = None

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        super().reset(seed=seed)
        obs = self._core.reset(int(self.np_random.integers(0, 2**63 - 1)))
        if self.render_mode is not None:
            self._last_obs = obs.copy()
        return obs, {}

    def step(self, action):
        if self._discrete:
            a = np.array([float(action)], dtype=np.float64)
        else:
            a = np.ascontiguousarray(np.asarray(action, dtype=np.float64).reshape(-1))
        obs, reward, terminated, truncated = self._core.step(a)
        if self.render_mode is not None:
            self._last_obs = obs.copy()
        return obs, reward, terminated, truncated, {}

    def render(self):
        """The ``rgb_array`` frame of the last observation (drawn by ``dcem_envs::render``), or
        None without a render mode."""
        if self.render_mode != "rgb_array":
            return None
        obs = np.asarray(self._rest_obs, dtype=np.float64) if self._last_obs is None else self._last_obs
        return _core.render(self._core_id, obs)

    def close(self):
        pass

    def __getstate__(self):
        return {"render_mode": self.render_mode, **self._init_kwargs()}

    def __setstate__(self, state):
        self.__init__(**state)

    def _init_kwargs(self) -> dict:
        """The keyword arguments this env was made with (besides ``render_mode``)."""
        return dict(self._core_kwargs)


class CartPoleEnv(RustEnv):
    """Gymnasium CartPole-v1 in Rust: obs (x, x', theta, theta'), actions {0, 1}.

    ``sutton_barto_reward=True`` gives Gymnasium's alternative reward: 0 for each step that does
    not end the episode and -1 for the one that does.
    """

    _core_id = "cartpole"
    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}
    _rest_obs = (0.0, 0.0, 0.0, 0.0)

    def __init__(self, render_mode: Optional[str] = None, sutton_barto_reward: bool = False):
        super().__init__(render_mode=render_mode)
        self._sutton_barto_reward = bool(sutton_barto_reward)

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        if self._sutton_barto_reward:
            reward = -1.0 if terminated else 0.0
        return obs, reward, terminated, truncated, info

    def _init_kwargs(self) -> dict:
        return {"sutton_barto_reward": self._sutton_barto_reward}


class CartPoleContinuousEnv(CartPoleEnv):
    """CartPole-v1 with a continuous force in [-1, 1] x 10 N (out-of-range values clipped)."""

    _core_id = "cartpole-continuous"


class CartpoleSwingupEnv(RustEnv):
    """The DCEM paper's cartpole swing-up: obs (x, x', cos th, sin th, th'), force in [-1, 1]."""

    _core_id = "swingup"
    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}
    _rest_obs = (0.0, 0.0, 1.0, 0.0, 0.0)


class PendulumEnv(RustEnv):
    """Gymnasium Pendulum-v1 in Rust: obs (cos th, sin th, th'), torque in [-2, 2]; ``g`` is the
    gravity (default 10, as Gymnasium's)."""

    _core_id = "pendulum"
    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}
    _rest_obs = (1.0, 0.0, 0.0)

    def __init__(self, render_mode: Optional[str] = None, g: float = 10.0):
        super().__init__(render_mode=render_mode, _core_kwargs={"g": _float("g", g)})


class CheetahRunEnv(RustEnv):
    """dm_control cheetah.run on MuJoCo 3.17.0, equal to dm_control step for step (needs the
    ``mujoco`` extra)."""

    _core_id = "cheetah-run"
    _gym_id = "dcem/CheetahRun-v0"


class WalkerWalkEnv(RustEnv):
    """dm_control walker.walk on MuJoCo 3.17.0, equal to dm_control step for step (needs the
    ``mujoco`` extra)."""

    _core_id = "walker-walk"
    _gym_id = "dcem/WalkerWalk-v0"


class RustVectorEnv(VectorEnv):
    """Base class: ``num_envs`` Rust environments stepped in parallel by Rust threads, with
    Gymnasium's next-step autoreset (the step after an episode ends resets that environment,
    ignoring its action, and returns reward 0 and both flags false)."""

    _core_id: str = ""
    _gym_id: str = ""
    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.NEXT_STEP}

    _episode_steps: int = 0
    #: The keyword arguments of the environment (as its single env takes them), with defaults.
    _env_kwargs: dict[str, Any] = {}

    def __init__(self, num_envs: int = 1, render_mode: Optional[str] = None,
                 max_episode_steps: Optional[int] = None, **kwargs):
        if render_mode is not None:
            raise TypeError("the Rust vector envs do not render; use a single env to render")
        unknown = sorted(set(kwargs) - set(self._env_kwargs))
        if unknown:
            raise TypeError(
                f"unexpected arguments {unknown}; {type(self).__name__} takes "
                f"{sorted(self._env_kwargs) or 'none'}"
            )
        _require(self._core_id, self._gym_id or type(self).__name__)
        # gymnasium.make_vec passes the registered length; the Rust envs end episodes there.
        if max_episode_steps is not None and max_episode_steps != self._episode_steps:
            raise ValueError(
                f"max_episode_steps={max_episode_steps}: the Rust vector env ends episodes after "
                f"{self._episode_steps} steps, other lengths are not supported"
            )
        self._kwargs = {**self._env_kwargs, **kwargs}
        core_kwargs = {}
        if "g" in self._kwargs:
            core_kwargs["g"] = _float("g", self._kwargs["g"])
        self._sutton_barto_reward = bool(self._kwargs.get("sutton_barto_reward", False))
        self._core = _core.RustVecEnv(self._core_id, int(num_envs), **core_kwargs)
        self.num_envs = int(num_envs)
        self.render_mode = None
        self.single_observation_space = _space(self._core.observation_space())
        self.single_action_space = _action_space(self._core.action_space())
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)

    def reset(self, *, seed=None, options: Optional[dict] = None):
        """``seed``: an int (seeds the vector env's generator, which seeds every env), or one
        seed (int or None) per env, as Gymnasium's vector envs take: env ``i`` then starts the
        episode a single env reset with ``seed[i]`` starts (None: it continues its stream)."""
        if isinstance(seed, (list, tuple)):
            if len(seed) != self.num_envs:
                raise ValueError(f"seed: {len(seed)} seeds for {self.num_envs} envs")
            if not all(s is None or isinstance(s, (int, np.integer)) for s in seed):
                raise TypeError(f"seed: each seed must be an int or None, got {seed!r}")
            # What RustEnv.reset(seed=s) gives its Rust env: a draw from a generator seeded
            # with s.
            core = [None if s is None else int(gym.utils.seeding.np_random(int(s))[0].integers(0, 2**63 - 1))
                    for s in seed]
            return self._core.reset_each(core), {}
        if seed is not None and not isinstance(seed, (int, np.integer)):
            raise TypeError(f"seed must be an int, a list of one per env, or None, got {seed!r}")
        super().reset(seed=seed)
        base = int(self.np_random.integers(0, 2**62))
        return self._core.reset(base), {}

    def step(self, actions):
        a = np.asarray(actions, dtype=np.float64).reshape(self.num_envs, -1)
        obs, reward, terminated, truncated = self._core.step(np.ascontiguousarray(a))
        if self._sutton_barto_reward:
            reward = np.where(terminated, -1.0, 0.0)
        return obs, reward, terminated, truncated, {}

    def close_extras(self, **kwargs):
        pass

    def __getstate__(self):
        return {"num_envs": self.num_envs, **self._kwargs}

    def __setstate__(self, state):
        self.__init__(**state)


def _vector(name: str, core_id: str, steps: int, gym_id: str, **env_kwargs) -> type:
    return type(name, (RustVectorEnv,), {"_core_id": core_id, "_gym_id": gym_id,
                                         "_episode_steps": steps, "_env_kwargs": env_kwargs,
                                         "__doc__": f"Rust vector env of {gym_id}."})


CartPoleVectorEnv = _vector("CartPoleVectorEnv", "cartpole", 500, "dcem/CartPole-v1",
                            sutton_barto_reward=False)
CartPoleContinuousVectorEnv = _vector("CartPoleContinuousVectorEnv", "cartpole-continuous", 500,
                                      "dcem/CartPoleContinuous-v1", sutton_barto_reward=False)
CartpoleSwingupVectorEnv = _vector("CartpoleSwingupVectorEnv", "swingup", 100, "dcem/CartpoleSwingup-v0")
PendulumVectorEnv = _vector("PendulumVectorEnv", "pendulum", 200, "dcem/Pendulum-v1", g=10.0)
CheetahRunVectorEnv = _vector("CheetahRunVectorEnv", "cheetah-run", 1000, "dcem/CheetahRun-v0")
WalkerWalkVectorEnv = _vector("WalkerWalkVectorEnv", "walker-walk", 1000, "dcem/WalkerWalk-v0")

# id, env class, vector env class (which knows the Rust id and the episode length: the Rust env
# truncates there, and it is registered so that ``spec.max_episode_steps`` says it).
_TABLE = [
    ("dcem/CartPole-v1", "CartPoleEnv", CartPoleVectorEnv),
    ("dcem/CartPoleContinuous-v1", "CartPoleContinuousEnv", CartPoleContinuousVectorEnv),
    ("dcem/CartpoleSwingup-v0", "CartpoleSwingupEnv", CartpoleSwingupVectorEnv),
    ("dcem/Pendulum-v1", "PendulumEnv", PendulumVectorEnv),
    ("dcem/CheetahRun-v0", "CheetahRunEnv", CheetahRunVectorEnv),
    ("dcem/WalkerWalk-v0", "WalkerWalkEnv", WalkerWalkVectorEnv),
]

#: The Gymnasium ids this install can make (the MuJoCo ones only with the ``mujoco`` extra;
#: they are registered either way, and without it ``gymnasium.make`` raises
#: ``DependencyNotInstalled`` naming the fix).
IDS: list[str] = []

for _gym_id, _cls, _vec in _TABLE:
    if _vec._core_id in _core.env_ids():
        IDS.append(_gym_id)
    if _gym_id not in gym.registry:
        gym.register(
            id=_gym_id,
            entry_point=f"dcem.envs:{_cls}",
            vector_entry_point=f"dcem.envs:{_vec.__name__}",
            max_episode_steps=_vec._episode_steps,
        )
