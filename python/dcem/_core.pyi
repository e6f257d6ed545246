"""Type stubs of the Rust extension module (python/src/lib.rs): `dcem._core`, and
`dcem._core_mujoco`, the same with the MuJoCo tasks and `use_dm_control_suite`."""
from typing import Any, Callable, Optional

import numpy as np
import numpy.typing as npt

__version__: str

SpaceDesc = tuple[Any, ...]

def env_ids() -> list[str]: ...
def lml(x: npt.NDArray[np.float64], k: float, tau: float) -> npt.NDArray[np.float64]: ...
def use_dm_control_suite(suite: str) -> None: ...  # _core_mujoco only

class RustEnv:
    def __init__(self, name: str, g: Optional[float] = None) -> None: ...
    @property
    def name(self) -> str: ...
    def observation_space(self) -> SpaceDesc: ...
    def action_space(self) -> SpaceDesc: ...
    def reset(self, seed: Optional[int] = None) -> npt.NDArray[np.float64]: ...
    def step(self, action: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], float, bool, bool]: ...

class RustVecEnv:
    def __init__(self, name: str, n: int, g: Optional[float] = None) -> None: ...
    @property
    def num_envs(self) -> int: ...
    def observation_space(self) -> SpaceDesc: ...
    def action_space(self) -> SpaceDesc: ...
    def reset(self, seed: Optional[int] = None) -> npt.NDArray[np.float64]: ...
    def reset_each(self, seeds: list[Optional[int]]) -> npt.NDArray[np.float64]: ...
    def step(
        self, actions: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]: ...

def solve(
    f: Callable[[npt.NDArray[np.float64]], npt.ArrayLike],
    nx: int,
    *,
    n_batch: int,
    n_sample: int,
    n_elite: int,
    n_iter: int,
    tau: float,
    init_mu: Optional[npt.NDArray[np.float64]],
    init_sigma: float,
    lb: Optional[float],
    ub: Optional[float],
    normalize: bool,
    iter_eps: float,
    sigma_floor: float,
    seed: int,
    noise_beta: float,
    time_steps: Optional[int],
    keep_elites: float,
    population_decay: float,
    add_mean_last: bool,
    return_best: bool,
    noise: Optional[npt.NDArray[np.float64]],
) -> dict[str, Any]: ...
