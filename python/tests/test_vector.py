"""make_vec in every mode, and the Rust vector env against N single envs."""
import gymnasium as gym
import numpy as np
import pytest

import dcem  # noqa: F401  (registers the ids)


@pytest.mark.parametrize("mode", ["sync", "async", "vector_entry_point"])
def test_make_vec_modes(mode):
    envs = gym.make_vec("dcem/CartpoleSwingup-v0", num_envs=3, vectorization_mode=mode)
    obs, info = envs.reset(seed=0)
    assert obs.shape == (3, 5)
    for _ in range(5):
        obs, rew, term, trunc, info = envs.step(envs.action_space.sample())
        assert obs.shape == (3, 5) and rew.shape == (3,)
        assert term.dtype == np.bool_ and trunc.dtype == np.bool_
    envs.close()


def test_rust_vector_env_equals_single_envs():
    n = 4
    venv = gym.make_vec("dcem/CartPole-v1", num_envs=n, vectorization_mode="vector_entry_point")
    venv.reset(seed=10)
    base = venv.unwrapped
    # The vector env seeds env i with (a draw from its np_random) + i; replay that with
    # single Rust envs of the core.
    rng = np.random.default_rng(0)
    singles = [dcem._rust.RustEnv("cartpole") for _ in range(n)]
    start = base._core.reset(12345)
    for i, s in enumerate(singles):
        np.testing.assert_array_equal(s.reset(12345 + i), start[i])
    done = np.zeros(n, dtype=bool)
    episodes_ended = 0
    for t in range(300):
        actions = rng.integers(0, 2, size=n)
        obs, rew, term, trunc = base._core.step(actions.reshape(n, 1).astype(np.float64))
        for i, s in enumerate(singles):
            if done[i]:
                # Next-step autoreset: the action is ignored, the env resets (continuing its
                # stream), reward 0 and both flags false.
                o = s.reset(None)
                r, te, tr = 0.0, False, False
            else:
                o, r, te, tr = s.step(np.array([float(actions[i])]))
            np.testing.assert_array_equal(obs[i], o)
            assert (rew[i], term[i], trunc[i]) == (r, te, tr)
            done[i] = te or tr
            episodes_ended += int(done[i])
    assert episodes_ended > n, "random CartPole episodes last tens of steps: autoresets were exercised"


def test_vector_env_errors():
    venv = gym.make_vec("dcem/CartPole-v1", num_envs=2, vectorization_mode="vector_entry_point")
    venv.reset(seed=0)
    with pytest.raises(ValueError):
        venv.unwrapped._core.step(np.zeros((3, 1)))
    with pytest.raises(ValueError, match="num_envs"):
        dcem._rust.RustVecEnv("cartpole", 0)
    with pytest.raises(ValueError, match="num_envs must be at most"):
        dcem._rust.RustVecEnv("cartpole", 2**40)


def test_vector_envs_pickle_and_refuse_rendering_with_type_error():
    import pickle

    venv = gym.make_vec("dcem/CartPoleContinuous-v1", num_envs=3, vectorization_mode="vector_entry_point")
    clone = pickle.loads(pickle.dumps(venv.unwrapped))
    assert clone.num_envs == 3
    a, _ = venv.reset(seed=5)
    b, _ = clone.reset(seed=5)
    np.testing.assert_array_equal(a, b)
    assert clone.single_action_space.dtype == np.float32
    with pytest.raises(TypeError, match="render"):
        dcem.envs.CartPoleVectorEnv(num_envs=2, render_mode="rgb_array")


def test_a_seed_list_seeds_each_env_as_a_single_env():
    venv = gym.make_vec("dcem/CartpoleSwingup-v0", num_envs=3, vectorization_mode="vector_entry_point")
    obs, _ = venv.reset(seed=[4, 9, 4])
    for i, s in enumerate([4, 9, 4]):
        single, _ = gym.make("dcem/CartpoleSwingup-v0").reset(seed=s)
        np.testing.assert_array_equal(obs[i], single)
    obs2, _ = venv.reset(seed=[None, 9, None])
    np.testing.assert_array_equal(obs2[1], obs[1])
    with pytest.raises(ValueError, match="2 seeds for 3 envs"):
        venv.reset(seed=[1, 2])
    with pytest.raises(TypeError, match="int or None"):
        venv.reset(seed=[1, 2.5, 3])
