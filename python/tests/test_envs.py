"""The Rust environments as Gymnasium envs: the checker, seeding, pickling, rendering, errors."""
import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import dcem

PENDULUM_NOTE = "symmetric and normalized space"


def checker_warnings(env, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, **kwargs)
    return [str(w.message) for w in caught]


@pytest.mark.parametrize("env_id", dcem.envs.IDS)
def test_check_env_passes_without_warnings(env_id):
    got = checker_warnings(gym.make(env_id).unwrapped)
    if env_id == "dcem/Pendulum-v1":
        # Pendulum-v1's torque range is [-2, 2]; the checker recommends [-1, 1] for every Box
        # action space, and says the same of Gymnasium's own Pendulum-v1 (checked here).
        own = checker_warnings(gym.make("Pendulum-v1").unwrapped, skip_render_check=True)
        assert [w for w in got if PENDULUM_NOTE not in w] == []
        assert any(PENDULUM_NOTE in w for w in own) and any(PENDULUM_NOTE in w for w in got)
    else:
        assert got == []


def test_registered_ids():
    assert set(dcem.envs.IDS) >= {
        "dcem/CartPole-v1",
        "dcem/CartPoleContinuous-v1",
        "dcem/CartpoleSwingup-v0",
        "dcem/Pendulum-v1",
    }
    for env_id in dcem.envs.IDS:
        assert gym.spec(env_id).vector_entry_point is not None


def rollout(env, seed, steps=30):
    obs, _ = env.reset(seed=seed)
    out = [obs]
    env.action_space.seed(seed)
    for _ in range(steps):
        obs, r, term, trunc, _ = env.step(env.action_space.sample())
        out.append(np.append(obs, r))
        if term or trunc:
            break
    return out


@pytest.mark.parametrize("env_id", dcem.envs.IDS)
def test_seeded_determinism(env_id):
    a, b = gym.make(env_id), gym.make(env_id)
    ra, rb = rollout(a, 3), rollout(b, 3)
    assert len(ra) == len(rb)
    for x, y in zip(ra, rb):
        np.testing.assert_array_equal(x, y)
    # reset() without a seed continues the stream: a new start state.
    first, _ = a.reset(seed=3)
    second, _ = a.reset()
    assert not np.array_equal(first, second)


def test_fresh_arrays_and_types():
    env = gym.make("dcem/CartpoleSwingup-v0")
    o1, info = env.reset(seed=0)
    o2, r, term, trunc, info = env.step(np.array([0.5]))
    assert o1 is not o2 and not np.shares_memory(o1, o2)
    assert o2.dtype == np.float64 and o2.shape == (5,)
    assert isinstance(r, float) and isinstance(term, bool) and isinstance(trunc, bool)
    assert info == {}


def test_close_twice_and_pickle():
    env = gym.make("dcem/CartPole-v1")
    env.reset(seed=1)
    env.close()
    env.close()
    clone = pickle.loads(pickle.dumps(env.unwrapped))
    obs, _ = clone.reset(seed=1)
    assert obs.shape == (4,)


@pytest.mark.parametrize("env_id", ["dcem/CartPole-v1", "dcem/CartpoleSwingup-v0"])
def test_render_rgb_array(env_id):
    env = gym.make(env_id, render_mode="rgb_array")
    env.reset(seed=0)
    env.step(env.action_space.sample())
    frame = env.render()
    assert frame.shape == (400, 600, 3) and frame.dtype == np.uint8
    assert frame.min() < 255  # something is drawn


def test_bad_input_is_a_clear_error():
    env = gym.make("dcem/CartpoleSwingup-v0").unwrapped
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.array([0.0]))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.array([np.nan]))
    with pytest.raises(ValueError, match="expected 1 value"):
        env.step(np.array([0.0, 1.0]))
    # TypeError, which SB3's make_vec_env catches to retry without rendering.
    with pytest.raises(TypeError, match="render_mode"):
        dcem.envs.PendulumEnv(render_mode="human")
    with pytest.raises(ValueError, match="unknown environment"):
        dcem._rust.RustEnv("nope")


def test_gymnasium_conventions_spaces_and_episode_lengths():
    lengths = {"dcem/CartPole-v1": 500, "dcem/CartPoleContinuous-v1": 500,
               "dcem/CartpoleSwingup-v0": 100, "dcem/Pendulum-v1": 200,
               "dcem/CheetahRun-v0": 1000, "dcem/WalkerWalk-v0": 1000}
    for env_id in dcem.envs.IDS:
        env = gym.make(env_id)
        assert env.spec.max_episode_steps == lengths[env_id]
        if isinstance(env.action_space, gym.spaces.Box):
            # float32 actions, as Gymnasium's own continuous envs (and SB3) have them.
            assert env.action_space.dtype == np.float32
            env.reset(seed=0)
            env.step(env.action_space.sample())
    # Gymnasium's own Pendulum-v1 has the same action space.
    assert gym.make("dcem/Pendulum-v1").action_space == gym.make("Pendulum-v1").action_space


def test_episodes_end_at_the_registered_length():
    env = gym.make("dcem/CartpoleSwingup-v0")
    env.reset(seed=0)
    steps, done = 0, False
    while not done:
        _, _, term, trunc, _ = env.step(np.zeros(1, np.float32))
        steps += 1
        done = term or trunc
    assert steps == env.spec.max_episode_steps and trunc


@pytest.mark.parametrize("g", [10.0, 4.0, 15.5])
def test_pendulum_gravity_matches_gymnasium(g):
    ours = gym.make("dcem/Pendulum-v1", g=g)
    ref = gym.make("Pendulum-v1", g=g).unwrapped
    obs, _ = ours.reset(seed=5)
    ref.reset(seed=5)
    rng = np.random.default_rng(5)
    for _ in range(40):
        # Start the reference from our state (observations are float32-rounded: tolerance).
        ref.state = np.array([np.arctan2(obs[1], obs[0]), obs[2]])
        a = rng.uniform(-2, 2, size=1).astype(np.float32)
        obs, r, *_ = ours.step(a)
        ref_obs, ref_r, *_ = ref.step(a)
        np.testing.assert_allclose(obs, ref_obs, atol=1e-5)
        assert r == pytest.approx(ref_r, abs=1e-5)
    # The kwarg reaches the vector env and survives pickling.
    venv = gym.make_vec("dcem/Pendulum-v1", 2, vectorization_mode="vector_entry_point", g=g)
    assert pickle.loads(pickle.dumps(venv.unwrapped))._kwargs["g"] == g
    assert pickle.loads(pickle.dumps(ours.unwrapped))._core_kwargs == {"g": g}


def test_env_kwargs_are_checked():
    with pytest.raises(TypeError, match="unexpected keyword|got an unexpected"):
        gym.make("dcem/CartpoleSwingup-v0", g=3.0)
    with pytest.raises(ValueError, match="finite"):
        gym.make("dcem/Pendulum-v1", g=float("nan"))
    with pytest.raises(TypeError, match="number"):
        gym.make("dcem/Pendulum-v1", g="9.8")
    with pytest.raises(TypeError, match="takes"):
        gym.make_vec("dcem/CartpoleSwingup-v0", 2, vectorization_mode="vector_entry_point", g=3.0)


def test_cartpole_sutton_barto_reward_as_gymnasium():
    for make in (lambda: gym.make("dcem/CartPole-v1", sutton_barto_reward=True),
                 lambda: gym.make("CartPole-v1", sutton_barto_reward=True)):
        env = make()
        env.reset(seed=0)
        rewards, done = [], False
        while not done:
            _, r, term, trunc, _ = env.step(1)
            rewards.append(r)
            done = term or trunc
        assert term and rewards[-1] == -1.0 and set(rewards[:-1]) == {0.0}
    venv = gym.make_vec("dcem/CartPole-v1", 2, vectorization_mode="vector_entry_point",
                        sutton_barto_reward=True)
    venv.reset(seed=0)
    seen = set()
    for _ in range(30):
        _, r, term, _, _ = venv.step(np.ones(2, dtype=np.int64))
        seen |= set(r.tolist())
        assert np.all(r[term] == -1.0)
    assert seen <= {0.0, -1.0} and -1.0 in seen


def test_pendulum_renders_like_gymnasium():
    env = gym.make("dcem/Pendulum-v1", render_mode="rgb_array")
    env.reset(seed=0)
    env.step(np.zeros(1, np.float32))
    frame = env.render()
    assert frame.shape == (500, 500, 3) and frame.dtype == np.uint8
    red = np.all(frame == (204, 77, 77), axis=-1)
    assert red.sum() > 1000  # the rod
    assert np.all(frame[250, 250] == 0)  # the pivot
    # Upright: the rod is above the pivot; hanging down: below.
    up = dcem._rust.render("pendulum", np.array([1.0, 0.0, 0.0]))
    down = dcem._rust.render("pendulum", np.array([-1.0, 0.0, 0.0]))
    assert np.all(up[150, 250] == (204, 77, 77)) and np.all(up[350, 250] == 255)
    assert np.all(down[350, 250] == (204, 77, 77)) and np.all(down[150, 250] == 255)
    with pytest.raises(ValueError, match="no drawing"):
        dcem._rust.render("cheetah-run", np.zeros(17))
    with pytest.raises(ValueError, match="3 finite values"):
        dcem._rust.render("pendulum", np.array([np.nan, 0.0, 0.0]))
