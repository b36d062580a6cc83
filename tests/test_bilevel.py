"""rewardlab.bilevel: outer gradients against finite differences and the exact implicit gradient; bad input."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rewardlab.bilevel import (
    BarfiConfig,
    BlendParams,
    TabularBilevelProblem,
    barfi,
    blend_rewards,
    check_blend,
    implicit_gradient,
    inner_objective,
    linear_blend,
    network_blend,
    primary_return,
    table_blend,
    tabular_problem,
    unrolled_gradient,
)


def _small_problem(seed: int = 0) -> TabularBilevelProblem:
    """3 states × 2 actions, dense random transitions, float64 (built inside enable_x64)."""
    rng = np.random.default_rng(seed)
    transitions = rng.dirichlet(np.ones(3), size=(3, 2))
    return TabularBilevelProblem(
        jnp.asarray(transitions),
        jnp.asarray([0.6, 0.4, 0.0]),
        jnp.asarray(rng.normal(size=(3, 2))),
        jnp.asarray(rng.normal(size=(3, 2))),
        jnp.arange(6).reshape(3, 2),
        jnp.asarray(0.9),
    )


CONFIG = BarfiConfig(l2_penalty=0.2, horizon=15, learning_rate=0.5)


def _flat_hessian_solve(problem, blend, theta, phi):
    """The exact implicit gradient: full Hessian and mixed Jacobian, one linear solve (small MDP, test only)."""

    def f(t, p):
        return inner_objective(t, p, problem, blend, CONFIG)

    hessian = jax.hessian(f)(theta, phi).reshape(6, 6)
    grad_outer = jax.grad(lambda t: primary_return(jax.nn.softmax(t, -1), problem, CONFIG.horizon))(theta).reshape(6)
    p = jnp.linalg.solve(-hessian, grad_outer).reshape(3, 2)
    return jax.grad(lambda q: jnp.vdot(jax.grad(f)(theta, q), p))(phi)


def _solve_inner(problem, blend, phi, theta0):
    """θ*(φ) to machine precision: gradient ascent, then Newton's method on the full Hessian (test only)."""

    def f(t):
        return inner_objective(t, phi, problem, blend, CONFIG)

    def ascent(t, _):
        return t + 0.5 * jax.grad(f)(t), None

    def newton(t, _):
        step = jnp.linalg.solve(jax.hessian(f)(t).reshape(6, 6), jax.grad(f)(t).reshape(6))
        return t - step.reshape(3, 2), None

    theta = jax.lax.scan(ascent, theta0, None, length=2000)[0]
    return jax.lax.scan(newton, theta, None, length=8)[0]


def _flatten(tree):
    return jnp.concatenate([jnp.ravel(x) for x in jax.tree.leaves(tree)])


def test_outer_gradients_match_finite_differences_of_the_converged_inner_problem(capsys):
    with jax.enable_x64(True):
        problem = _small_problem()
        blend = table_blend(6)
        rng = np.random.default_rng(1)
        phi = BlendParams(
            jnp.asarray(np.array([0.0, 1.0, 1.0]) + 0.3 * rng.normal(size=(6, 3))), jnp.asarray(np.log(0.85 / 0.15))
        )
        solve_inner = jax.jit(lambda p, t0: _solve_inner(problem, blend, p, t0))
        theta = solve_inner(phi, jnp.zeros((3, 2)))
        assert float(jnp.max(jnp.abs(jax.grad(inner_objective)(theta, phi, problem, blend, CONFIG)))) < 1e-12

        def outer_of_phi(p):
            return primary_return(jax.nn.softmax(solve_inner(p, theta), -1), problem, CONFIG.horizon)

        exact = _flatten(jax.jit(lambda t, p: _flat_hessian_solve(problem, blend, t, p))(theta, phi))
        direction = jax.tree.map(lambda x: jnp.asarray(rng.normal(size=np.shape(x))), phi)
        eps = 1e-5
        plus = outer_of_phi(jax.tree.map(lambda x, d: x + eps * d, phi, direction))
        minus = outer_of_phi(jax.tree.map(lambda x, d: x - eps * d, phi, direction))
        finite_difference = (plus - minus) / (2 * eps)
        assert float(jnp.dot(exact, _flatten(direction))) == pytest.approx(float(finite_difference), rel=1e-6, abs=1e-9)

        def f(t, p):
            return inner_objective(t, p, problem, blend, CONFIG)

        def outer(t, p):
            return primary_return(jax.nn.softmax(t, -1), problem, CONFIG.horizon)

        settings = {
            "cg, 6 iterations (= dim θ)": dict(method="cg", iterations=6),
            "cg, 2 iterations": dict(method="cg", iterations=2),
            "neumann, 0 terms": dict(terms=0, step=0.5),
            "neumann, 5 terms": dict(terms=5, step=0.5),
            "neumann, 50 terms": dict(terms=50, step=0.5),
            "neumann, 300 terms": dict(terms=300, step=0.5),
            "unrolled, 5 steps": dict(steps=5, learning_rate=0.5),
            "unrolled, 300 steps": dict(steps=300, learning_rate=0.5),
        }

        @jax.jit
        def gradients(t, p):
            return {
                name: (unrolled_gradient if "unrolled" in name else implicit_gradient)(f, outer, t, p, **options)
                for name, options in settings.items()
            }

        approximations = gradients(theta, phi)
        errors = {
            name: float(jnp.linalg.norm(_flatten(g) - exact) / jnp.linalg.norm(exact))
            for name, g in approximations.items()
        }
    with capsys.disabled():
        print("\nrelative error of each outer gradient against the exact implicit gradient:")
        for name, error in errors.items():
            print(f"  {name:30s} {error:.2e}")
    assert errors["cg, 6 iterations (= dim θ)"] < 1e-8
    assert errors["neumann, 300 terms"] < 1e-6
    assert errors["unrolled, 300 steps"] < 1e-6
    # more terms, smaller error; the truncated versions are biased
    assert (
        errors["neumann, 0 terms"]
        > errors["neumann, 5 terms"]
        > errors["neumann, 50 terms"]
        > errors["neumann, 300 terms"]
    )
    assert errors["unrolled, 5 steps"] > errors["unrolled, 300 steps"]
    assert errors["neumann, 0 terms"] > 1e-2


def _two_state_problem(aux_for_staying: float = 0.2) -> TabularBilevelProblem:
    # state 0: action 0 stays (the auxiliary reward pays for it), action 1 collects the primary reward and ends
    return tabular_problem(
        jnp.array([[0, 1], [1, 1]]),
        jnp.array([1.0, 0.0]),
        jnp.array([[0.0, 1.0], [0.0, 0.0]]),
        jnp.array([[aux_for_staying, 0.0], [0.0, 0.0]]),
        0.9,
    )


SMALL = BarfiConfig(outer_iterations=40, inner_steps=10, learning_rate=2.0, outer_learning_rate=0.1, horizon=30)
FIXED = dataclasses.replace(SMALL, hypergradient="none")


def test_barfi_recovers_the_primary_return_that_the_naive_sum_loses():
    problem = _two_state_problem()
    keys = jax.random.split(jax.random.key(0), 2)
    naive = barfi(problem, FIXED, keys)
    primary_only = barfi(problem, FIXED, keys, blend_params=jnp.broadcast_to(jnp.array([0.0, 1.0, 0.0]), (4, 3)))
    learned = barfi(problem, SMALL, keys)
    assert float(naive.primary_return[:, -1].max()) < 0.2  # the naive sum stays for the auxiliary reward
    assert float(primary_only.primary_return[:, -1].min()) > 0.8
    assert not bool(learned.diverged.any())
    assert float(learned.primary_return[:, -1].min()) > 0.8
    # the outer loop lowered the weight of the auxiliary reward on the state-action it pays for
    assert float(learned.params.blend[:, 0, 2].max()) < 1.0
    np.testing.assert_allclose(naive.coefficients[:, -1], [[0.0, 1.0, 1.0]] * 2, rtol=1e-5)  # φ fixed: the baselines


@pytest.mark.slow
@pytest.mark.parametrize("method", ["cg", "unrolled"])
def test_every_outer_gradient_recovers_the_primary_return(method):
    keys = jax.random.split(jax.random.key(0), 2)
    learned = barfi(_two_state_problem(), dataclasses.replace(SMALL, hypergradient=method), keys)
    assert not bool(learned.diverged.any())
    assert float(learned.primary_return[:, -1].min()) > 0.8


def test_seeds_under_vmap_equal_one_run_per_seed():
    problem = _two_state_problem()
    config = SMALL
    keys = jax.random.split(jax.random.key(3), 2)
    batched = barfi(problem, config, keys)
    for index in range(2):
        single = barfi(problem, config, keys[index])
        np.testing.assert_allclose(batched.primary_return[index], single.primary_return, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(batched.params.blend[index], single.params.blend, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_feature_blends_run_the_same_loop():
    problem = _two_state_problem()
    features = jnp.stack([jnp.eye(2)[jnp.array([0, 1])]] * 2)  # [S, A, F]: action one-hot
    problem = problem._replace(blend_inputs=features)
    result = barfi(problem, SMALL, 0, blend=network_blend(2, (4,)))
    assert np.all(np.isfinite(result.primary_return)) and result.coefficients.shape == (SMALL.outer_iterations, 3)
    assert float(result.primary_return[-1]) > 0.8
    linear = linear_blend(2)
    check_blend(linear, linear.init(None), features, (2, 2))


# --- bad input ---------------------------------------------------------------------------------------------


def test_mismatched_component_shapes_are_named():
    transitions = jnp.array([[0, 1], [1, 1]])
    with pytest.raises(ValueError, match=r"auxiliary: expected shape \[S\]=\(2,\)"):
        tabular_problem(transitions, jnp.array([1.0, 0.0]), jnp.zeros((2, 2)), jnp.zeros((3, 2)), 0.9)
    with pytest.raises(ValueError, match="primary: expected shape"):
        tabular_problem(transitions, jnp.array([1.0, 0.0]), jnp.zeros((2, 2, 3)), jnp.zeros((2, 2)), 0.9)
    with pytest.raises(ValueError, match="auxiliary: expected the shape of primary"):
        blend_rewards(jnp.ones((2, 3)), jnp.ones(2), jnp.ones(3))
    with pytest.raises(ValueError, match="initial_state_dist"):
        tabular_problem(transitions, jnp.array([1.0]), jnp.zeros((2, 2)), jnp.zeros((2, 2)), 0.9)
    with pytest.raises(ValueError, match="auxiliary: expected finite rewards"):
        tabular_problem(transitions, jnp.array([1.0, 0.0]), jnp.zeros(2), jnp.array([0.0, np.nan]), 0.9)
    with pytest.raises(ValueError, match="blend: expected coefficients of shape"):
        barfi(
            _two_state_problem(),
            BarfiConfig(outer_iterations=1),
            0,
            blend=table_blend(4),
            blend_params=jnp.ones((4, 2)),
        )


def test_component_functions_of_indices_are_accepted_and_failures_named():
    transitions = jnp.array([[0, 1], [1, 1]])
    problem = tabular_problem(
        transitions, jnp.array([1.0, 0.0]), lambda s, a, s_next: (s_next == 1) & (s == 0), jnp.zeros(2), 0.9
    )
    assert problem.primary.tolist() == [[0.0, 1.0], [0.0, 0.0]]

    def host_only(s, a, s_next):
        raise RuntimeError("needs a simulator")

    with pytest.raises(TypeError, match="primary: the reward-component function failed"):
        tabular_problem(transitions, jnp.array([1.0, 0.0]), host_only, jnp.zeros(2), 0.9)
    with pytest.raises(TypeError, match="auxiliary: expected real reward values"):
        tabular_problem(transitions, jnp.array([1.0, 0.0]), jnp.zeros(2), np.array(["a", "b"]), 0.9)


class _RoundedBlend:
    """Coefficients rounded to integers: piecewise constant, zero gradient everywhere."""

    def init(self, key):
        return jnp.broadcast_to(jnp.array([0.0, 1.0, 1.0]), (4, 3))

    def coefficients(self, params, inputs):
        return jnp.round(params[inputs])


class _HostBlend(_RoundedBlend):
    def coefficients(self, params, inputs):
        return jnp.asarray(np.asarray(params)[np.asarray(inputs)])


class _IntegerBlend(_RoundedBlend):
    def coefficients(self, params, inputs):
        return params[inputs].astype(jnp.int32)


def test_non_differentiable_rewards_are_refused():
    problem = _two_state_problem()
    with pytest.raises(ValueError, match="zero gradient everywhere"):
        barfi(problem, SMALL, 0, blend=_RoundedBlend())
    with pytest.raises(TypeError, match="pure JAX function"):
        barfi(problem, SMALL, 0, blend=_HostBlend())
    with pytest.raises(TypeError, match="expected float coefficients"):
        barfi(problem, SMALL, 0, blend=_IntegerBlend())
    with pytest.raises(TypeError, match="BlendParameterisation"):
        check_blend(object(), None, jnp.zeros(2), (2,))


def test_a_diverging_inner_loop_is_reported_and_leaves_no_nan():
    problem = _two_state_problem()
    keys = jax.random.split(jax.random.key(0), 2)
    # an inner step far too large: the objective falls instead of rising
    result = barfi(
        problem,
        BarfiConfig(outer_iterations=10, inner_steps=5, learning_rate=1e4, horizon=20, initial_policy_scale=1.0),
        keys,
    )
    assert bool(result.diverged.all())
    assert (np.asarray(result.diverged_at) >= 0).all()
    # an outer step that blows φ up to inf
    blown = barfi(problem, BarfiConfig(outer_iterations=5, inner_steps=2, outer_learning_rate=1e38, horizon=20), keys)
    assert bool(blown.diverged.all())
    for outcome in (result, blown):
        for leaf in jax.tree.leaves(outcome):
            assert np.all(np.isfinite(np.asarray(leaf, np.float64))), leaf
    healthy = barfi(problem, SMALL, keys)
    assert not bool(healthy.diverged.any()) and (np.asarray(healthy.diverged_at) == -1).all()


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="hypergradient: expected one of"):
        BarfiConfig(hypergradient="exact")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unroll_steps"):
        BarfiConfig(hypergradient="unrolled", inner_steps=3, unroll_steps=5)
    with pytest.raises(ValueError, match="learning_rate"):
        BarfiConfig(learning_rate=-1.0)
    with pytest.raises(TypeError, match="key: expected an int seed or typed PRNG keys"):
        barfi(_two_state_problem(), SMALL, jax.random.PRNGKey(0))


# --- the sampled inner learner and the study ------------------------------------------------------------------


class _Chain:
    """A pure JAX chain on [0, 1]: action 1 moves right by 0.25, action 0 left; the episode ends at 1."""

    def initial(self, rng):
        return jnp.zeros(())

    def transition(self, state, action, rng):
        return jnp.clip(state + jnp.where(action == 1, 0.25, -0.25), 0.0, 1.0)

    def observation(self, state, rng):
        return jnp.stack([state])

    def terminal(self, state, rng):
        return state >= 1.0


def _chain_components(scale=1.0):
    """r_p = 1 on reaching the chain's end; the auxiliary reward pays 0.1 for going left; both × scale."""

    def components(obs, action, next_obs):
        return scale * (next_obs[0] >= 1.0).astype(jnp.float32), scale * 0.1 * (action == 0)

    return components


def _run_on_chain(keys, scale=1.0, **settings):
    from rewardlab.bilevel import ActorCriticConfig, barfi_actor_critic

    config = ActorCriticConfig(num_actions=2, horizon=12, **settings)
    return barfi_actor_critic(_Chain(), _chain_components(scale), config, keys, blend=linear_blend(1))


def test_actor_critic_loop_runs_over_seeds_and_checks_its_components():
    from rewardlab.bilevel import ActorCriticConfig, barfi_actor_critic

    components = _chain_components()
    config = ActorCriticConfig(num_actions=2, outer_iterations=3, inner_steps=2, num_episodes=4, horizon=12)
    keys = jax.random.split(jax.random.key(0), 2)
    result = barfi_actor_critic(_Chain(), components, config, keys, blend=linear_blend(1))
    assert result.primary_return.shape == (2, 3) and result.coefficients.shape == (2, 3, 3)
    assert not bool(result.diverged.any())
    assert all(np.all(np.isfinite(np.asarray(leaf, np.float64))) for leaf in jax.tree.leaves(result))
    with pytest.raises(ValueError, match=r"components: expected two scalars"):
        barfi_actor_critic(_Chain(), lambda o, a, n: (o, o), config, keys, blend=linear_blend(1))
    with pytest.raises(TypeError, match=r"blend: coefficients\(params, inputs\) must be a pure JAX function"):
        barfi_actor_critic(_Chain(), components, config, keys, blend=linear_blend(3))  # 3 features, observations [1]


def test_actor_critic_outer_gradient_has_its_own_batch_size():
    from rewardlab.bilevel import ActorCriticConfig

    keys = jax.random.split(jax.random.key(1), 2)

    def run(hypergradient, outer_episodes):
        return _run_on_chain(
            keys,
            outer_iterations=3,
            inner_steps=2,
            num_episodes=4,
            outer_episodes=outer_episodes,
            hypergradient=hypergradient,
        )

    same, default = run("neumann", 4), run("neumann", None)
    for a, b in zip(jax.tree.leaves(same), jax.tree.leaves(default), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # φ fixed: the inner updates never see the outer batch, so the policy is the same whatever its size
    np.testing.assert_array_equal(np.asarray(run("none", 32).policy_params), np.asarray(run("none", 4).policy_params))
    # the outer batch is what moves φ
    moved = jax.tree.leaves(run("neumann", 32).params)
    assert not all(
        np.allclose(np.asarray(a), np.asarray(b)) for a, b in zip(moved, jax.tree.leaves(same.params), strict=True)
    )
    with pytest.raises(ValueError, match="outer_episodes: expected an integer >= 1"):
        ActorCriticConfig(num_actions=2, outer_episodes=0)


def test_actor_critic_normalised_advantages_ignore_the_reward_scale_and_entropy_keeps_the_policy_soft():
    from rewardlab.bilevel import ActorCriticConfig

    keys = jax.random.split(jax.random.key(2), 2)

    def policy(scale, normalize_advantages=False, entropy_coefficient=0.0, learning_rate=0.01):
        result = _run_on_chain(
            keys,
            scale,
            outer_iterations=4,
            inner_steps=3,
            num_episodes=8,
            hypergradient="none",
            learning_rate=learning_rate,
            normalize_advantages=normalize_advantages,
            entropy_coefficient=entropy_coefficient,
        )
        return np.asarray(result.policy_params)

    # r_φ ×10: the critic and the advantages scale by 10, the normalised step does not
    np.testing.assert_allclose(policy(10.0, True), policy(1.0, True), atol=1e-5)
    assert not np.allclose(policy(10.0), policy(1.0), atol=1e-3)

    def entropy(theta):  # mean entropy of π over the chain's states
        logits = jnp.stack([jnp.array([x, 1.0]) @ theta for x in np.linspace(0.0, 1.0, 5)], axis=-2)
        log_pi = jax.nn.log_softmax(logits)
        return float(-(jnp.exp(log_pi) * log_pi).sum(-1).mean())

    greedy, soft = policy(1.0, learning_rate=1.0), policy(1.0, entropy_coefficient=1.0, learning_rate=1.0)
    assert entropy(soft) > entropy(greedy)
    with pytest.raises(ValueError, match="entropy_coefficient"):
        ActorCriticConfig(num_actions=2, entropy_coefficient=-0.1)


def test_the_study_parses_from_the_command_line_and_the_sweep_file():
    from experiments import barfi as study
    from rewardlab.sweeps import load_sweep, parse_args

    args = parse_args(
        study.Args, ["--auxiliary", "bad", "--seeds", "2", "--outer-iterations", "3", "--inner-steps", "2"]
    )
    assert args == study.Args(auxiliary="bad", seeds=2, outer_iterations=3, inner_steps=2)
    assert len(load_sweep("experiments/barfi.toml").runs()) == 6
    with pytest.raises(ValueError, match="auxiliary: expected one of"):
        study.Args(auxiliary="ugly")  # type: ignore[arg-type]
    assert parse_args(study.Args, ["--env", "cartpole", "--episodes", "4"]).env == "cartpole"
    for env in ("cartpole", "mountaincar"):
        runs = load_sweep(f"experiments/barfi_{env}.toml").runs()
        assert len(runs) == 2 and {run.args.env for run in runs} == {env}
    with pytest.raises(ValueError, match="preference_pairs: PARL runs on the detour gridworld only"):
        study.Args(env="cartpole", preference_pairs=8)


def test_control_tasks_pay_their_heuristics_with_the_stated_signs():
    from rewardlab_envs import MountainCarFunctional, cart_pole_task, mountain_car_task

    env = MountainCarFunctional()
    state = jnp.array([-0.5, 0.0])
    # v' = 0 + (2 − 1)·0.001 − cos(−1.5)·0.0025, x' = −0.5 + v'
    velocity = 0.001 - np.cos(-1.5) * 0.0025
    np.testing.assert_allclose(env.transition(state, 2), [-0.5 + velocity, velocity], rtol=1e-5)
    state, steps = env.initial(jax.random.key(0)), 0
    while not bool(env.terminal(state)) and steps < 300:  # pushing along the velocity pumps energy
        state, steps = env.transition(state, jnp.where(state[1] >= 0, 2, 0)), steps + 1
    assert bool(env.terminal(state)) and steps < 200
    fast, goal = jnp.array([0.0, 0.5]), jnp.array([(0.5 + 0.3) / 0.9, 0.2])
    good, bad = mountain_car_task("good"), mountain_car_task("bad")
    assert [float(x) for x in good.components(fast, 0, fast)] == [0.0, 0.5]
    assert [float(x) for x in bad.components(fast, 0, fast)] == [0.0, -0.5]
    assert [float(x) for x in bad.components(fast, 0, goal)] == [1.0, 0.0]  # the flag: primary pays, h = 0
    upright, fallen = jnp.zeros(4), jnp.array([0.0, 0.0, 0.3, 0.0])
    assert [float(x) for x in cart_pole_task("good").components(upright, 0, upright)] == [1.0, 0.5]
    assert [float(x) for x in cart_pole_task("bad").components(upright, 0, upright)] == [1.0, -2.0]
    assert [float(x) for x in cart_pole_task("bad").components(upright, 0, fallen)] == [0.0, 0.0]
    with pytest.raises(ValueError, match="auxiliary: expected 'good' or 'bad'"):
        mountain_car_task("ugly")


def test_simulated_preferences_label_segments_by_their_primary_return():
    from experiments import barfi as study
    from rewardlab_envs import detour_gridworld

    task = detour_gridworld("bad")
    args = study.Args(preference_pairs=64, segment_length=6, preference_temperature=0.1)
    pairs = study.simulated_preferences(task, args)
    assert pairs.states.shape == (64, 2, 6) and pairs.labels.shape == (64,)
    transitions = np.asarray(task.mdp.transitions)
    states, actions = np.asarray(pairs.states), np.asarray(pairs.actions)
    assert np.all(transitions[states[..., :-1], actions[..., :-1], states[..., 1:]] > 0)  # segments follow T
    primary = np.einsum("sat,sat->sa", transitions, np.asarray(task.mdp.reward))
    returns = primary[states, actions].sum(-1)
    expected = 1.0 / (1.0 + np.exp(-(returns[:, 0] - returns[:, 1]) / 0.1))
    np.testing.assert_allclose(pairs.labels, expected, rtol=1e-5)


@pytest.mark.slow
def test_the_study_runs_with_a_tiny_budget(tmp_path):
    from experiments import barfi as study

    args = study.Args(auxiliary="bad", seeds=2, outer_iterations=3, inner_steps=2)
    summary = study.main(dataclasses.replace(args, out_dir=tmp_path, horizon=20, figures=False))
    assert {"bad/barfi/primary_fraction", "bad/naive/primary_fraction", "bad/shaping/primary_fraction"} <= set(summary)
    assert (tmp_path / args.name / "table.md").read_text().count("| bad |") == 4
    parl = dataclasses.replace(args, preference_pairs=8, out_dir=tmp_path, horizon=20, figures=False)
    assert "bad/parl/primary_fraction" in study.main(parl)
    on_policy = dataclasses.replace(parl, preference_labels="on_policy")
    assert on_policy.name.endswith("-parl8-onpolicy-seeds0-1")
    assert "bad/parl/primary_fraction" in study.main(on_policy)


@pytest.mark.slow
@pytest.mark.parametrize("env", ["mountaincar", "cartpole"])
def test_the_control_study_runs_with_a_tiny_budget(tmp_path, env):
    from experiments import barfi as study

    args = study.Args(env=env, auxiliary="bad", seeds=2, outer_iterations=2, inner_steps=1, episodes=2)
    summary = study.main(dataclasses.replace(args, episode_horizon=10, out_dir=tmp_path, figures=False))
    assert {f"bad/{method}/primary_fraction" for method in study.METHODS} <= set(summary)
    assert all(summary[f"bad/{method}/diverged"] == 0 for method in study.METHODS)


@pytest.mark.slow
def test_barfi_on_cartpole_turns_the_bad_heuristic_down_and_the_good_one_up():
    from experiments import barfi as study

    args = study.Args(
        env="cartpole",
        seeds=4,
        outer_iterations=30,
        inner_steps=5,
        outer_episodes=64,
        actor_learning_rate=0.1,
        outer_learning_rate=0.03,
    )
    phi3 = {}
    for auxiliary in ("good", "bad"):
        result = study.run_control(dataclasses.replace(args, auxiliary=auxiliary), auxiliary)["barfi"]
        assert not bool(np.asarray(result.diverged).any())
        phi3[auxiliary] = np.asarray(result.coefficients)[:, -5:, 2].mean(axis=1)  # visited-average φ3 per seed
    assert np.all(phi3["bad"] < 0.8), phi3  # it starts at 1 (the naive sum)
    assert np.all(phi3["bad"] < phi3["good"]), phi3


def test_parl_preference_upper_objective_learns_from_labels_alone():
    from rewardlab.bilevel import TabularPreferences, preference_objective

    problem = _two_state_problem()
    # oracle labels on one-step segments from state 0: going (primary 1) beats staying (primary 0, aux 0.2)
    pairs = TabularPreferences(
        states=jnp.zeros((2, 2, 1), jnp.int32),
        actions=jnp.array([[[1], [0]], [[0], [1]]]),
        labels=jnp.array([1.0, 0.0]),
    )
    keys = jax.random.split(jax.random.key(0), 2)
    parl = barfi(problem, SMALL, keys, outer_objective=preference_objective, outer_data=pairs)
    assert not bool(parl.diverged.any())
    start = float(
        preference_objective(
            jnp.zeros((2, 2)),
            parl.params._replace(blend=jnp.broadcast_to(jnp.array([0.0, 1.0, 1.0]), (4, 3))),
            problem,
            table_blend(4),
            pairs,
        )
    )
    final = jax.vmap(lambda theta, params: preference_objective(theta, params, problem, table_blend(4), pairs))(
        parl.policy_logits, parl.params
    )
    assert float(final.min()) > start  # the labels' likelihood under r_φ went up
    assert float(parl.primary_return[:, -1].min()) > 0.8  # and the policy it induces leaves for the primary reward


@pytest.mark.parametrize("form", ["dense", "successor"])
def test_the_loops_gather_occupancy_equals_the_dense_one(form):
    from rewardlab.bilevel._gather import gather_form, occupancy
    from rewardlab.tabular import occupancy_measure

    rng = np.random.default_rng(0)
    if form == "dense":  # stochastic, with some zero transitions
        transitions = rng.random((5, 3, 5)) * (rng.random((5, 3, 5)) < 0.5)
        transitions[..., 0] += 0.05
        transitions = jnp.asarray(transitions / transitions.sum(-1, keepdims=True), jnp.float32)
    else:
        transitions = jnp.asarray(rng.integers(0, 5, (5, 3)))
    d0 = jnp.array([0.5, 0.5, 0.0, 0.0, 0.0])
    form = gather_form(transitions)

    def objective(theta, occupancy):
        return jnp.sum(jnp.sin(occupancy(jax.nn.softmax(theta, -1))))

    def dense(policy):
        return occupancy_measure(transitions, policy, d0, 20, discount=0.9)

    def gather(policy):
        return occupancy(form, policy, d0, 20, jnp.asarray(0.9))

    theta = jnp.asarray(rng.normal(size=(5, 3)), jnp.float32)
    policy = jax.nn.softmax(theta, -1)
    np.testing.assert_allclose(gather(policy), dense(policy), atol=1e-6)
    np.testing.assert_allclose(jax.grad(objective)(theta, gather), jax.grad(objective)(theta, dense), atol=1e-5)
    np.testing.assert_allclose(jax.hessian(objective)(theta, gather), jax.hessian(objective)(theta, dense), atol=1e-4)


def _sparse_transitions(form):
    rng = np.random.default_rng(1)
    if form == "dense":  # stochastic, with some zero transitions
        transitions = rng.random((5, 3, 5)) * (rng.random((5, 3, 5)) < 0.5)
        transitions[..., 0] += 0.05
        return jnp.asarray(transitions / transitions.sum(-1, keepdims=True), jnp.float32)
    return jnp.asarray(rng.integers(0, 5, (5, 3)))


@pytest.mark.parametrize("form", ["dense", "successor"])
def test_the_seed_batched_return_has_the_plain_ones_values_and_derivatives(form):
    """expected_return (seed-last adjoint kernels under vmap) against autodiff through the plain gather recursion."""
    from rewardlab.bilevel._gather import expected_return, gather_form, occupancy, state_visits

    gather = gather_form(_sparse_transitions(form))
    d0 = jnp.array([0.5, 0.5, 0.0, 0.0, 0.0])

    def fast(theta, reward, discount):
        return expected_return(gather, d0, jax.nn.softmax(theta, -1), reward, discount, 20) - 0.01 * jnp.sum(theta**2)

    def plain(theta, reward, discount):
        occupancy_ = occupancy(gather, jax.nn.softmax(theta, -1), d0, 20, discount)
        return jnp.sum(occupancy_ * reward) - 0.01 * jnp.sum(theta**2)

    def derivatives(f, theta, reward, discount, v):  # what the bilevel loop takes, and ∂f/∂(r, γ)
        gradient = jax.grad(f)
        return (
            f(theta, reward, discount),
            gradient(theta, reward, discount),
            jax.jvp(lambda t: gradient(t, reward, discount), (theta,), (v,))[1],  # Hessian-vector product
            jax.grad(lambda r, g: jnp.vdot(gradient(theta, r, g), v), argnums=(0, 1))(reward, discount),  # mixed
            jax.grad(f, argnums=(1, 2))(theta, reward, discount),
        )

    rng = np.random.default_rng(0)
    theta, reward, v = (jnp.asarray(rng.normal(size=(3, 5, 3)), jnp.float32) for _ in range(3))
    discount = jnp.asarray([0.8, 0.9, 0.99], jnp.float32)
    reference = jax.jit(jax.vmap(lambda *a: derivatives(plain, *a)))(theta, reward, discount, v)
    one_seed = jax.jit(lambda *a: derivatives(fast, *a))(theta[0], reward[0], discount[0], v[0])  # plain kernels
    for got, want in zip(jax.tree.leaves(one_seed), jax.tree.leaves(reference), strict=True):
        np.testing.assert_array_equal(got, want[0])
    batched = jax.jit(jax.vmap(lambda *a: derivatives(fast, *a)))(theta, reward, discount, v)
    for got, want in zip(jax.tree.leaves(batched), jax.tree.leaves(reference), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-5)
    shared_reward = jax.jit(jax.vmap(lambda t, g, w: derivatives(fast, t, reward[0], g, w)))(theta, discount, v)
    expected = jax.jit(jax.vmap(lambda t, g, w: derivatives(plain, t, reward[0], g, w)))(theta, discount, v)
    for got, want in zip(jax.tree.leaves(shared_reward), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-5)
    starts = jnp.stack([d0, d0[::-1], jnp.full(5, 0.2)])  # several MDPs in one batch: vmap of the plain kernel
    visits = jax.vmap(lambda t, start: state_visits(gather, jax.nn.softmax(t, -1), start, 20, discount[0]))(
        theta, starts
    )
    occupancies = jax.vmap(lambda t, start: occupancy(gather, jax.nn.softmax(t, -1), start, 20, discount[0]))(
        theta, starts
    )
    np.testing.assert_allclose(visits, occupancies.sum(-1), rtol=1e-5, atol=1e-6)


def _grid_problem() -> TabularBilevelProblem:
    """3 × 3 grid, 4 moves (walls keep the agent in place), goal in a corner: sparse enough for the gather form."""
    states = np.arange(9).reshape(3, 3)
    moves = [(-1, 0), (1, 0), (0, -1), (0, 1)]
    successors = np.array(
        [[states[min(max(r + dr, 0), 2), min(max(c + dc, 0), 2)] for dr, dc in moves] for r, c in np.ndindex(3, 3)]
    )
    primary = np.zeros((9, 4))
    primary[8] = 1.0
    auxiliary = np.zeros((9, 4))
    auxiliary[:, 0] = 0.3  # pays for moving up, away from the goal
    return tabular_problem(successors, np.eye(9)[0], primary, auxiliary, 0.9)


@pytest.mark.parametrize("hypergradient", ["neumann", "unrolled"])
def test_seeds_under_vmap_equal_one_run_per_seed_on_a_sparse_mdp(hypergradient):
    from rewardlab.bilevel._gather import gather_form_if_sparse

    problem = _grid_problem()
    assert gather_form_if_sparse(problem.transitions) is not None  # the seed-last kernels are the path under test
    config = BarfiConfig(
        outer_iterations=4, inner_steps=4, neumann_terms=3, unroll_steps=2, horizon=10, hypergradient=hypergradient
    )
    keys = jax.random.split(jax.random.key(5), 3)
    batched = barfi(problem, config, keys)
    assert not bool(batched.diverged.any())
    for index in range(3):
        single = barfi(problem, config, keys[index])
        np.testing.assert_allclose(batched.primary_return[index], single.primary_return, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(batched.params.blend[index], single.params.blend, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(batched.hypergradient_norm[index], single.hypergradient_norm, rtol=1e-4)


def test_on_policy_pairs_follow_the_policy_the_dynamics_and_the_teacher():
    from rewardlab.bilevel import OnPolicyPreferences
    from rewardlab.preferences import bradley_terry_probability

    problem = _small_problem(1)._replace(
        primary=jnp.asarray([[0.0, 1.0], [0.5, -1.0], [2.0, 0.0]], jnp.float32),
        transitions=jnp.asarray(
            [[[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]], [[0.0, 0.0, 1.0], [0.2, 0.8, 0.0]], [[0, 0, 1.0]] * 2]
        ),
    )
    sampler = OnPolicyPreferences(pairs=200, segment_length=6, temperature=0.5)
    pairs = sampler(jax.random.key(0), jnp.zeros((3, 2)), problem, None)
    states, actions = np.asarray(pairs.states), np.asarray(pairs.actions)
    assert states.shape == actions.shape == (200, 2, 6) and pairs.labels.shape == (200,)
    assert set(np.unique(states[..., 0])) == {0, 1}  # episode starts drawn from d0 = (0.6, 0.4, 0)
    transitions = np.asarray(problem.transitions)
    assert np.all(transitions[states[..., :-1], actions[..., :-1], states[..., 1:]] > 0)  # segments follow T
    assert 0.4 < actions.mean() < 0.6  # a uniform policy takes both actions
    returns = np.asarray(problem.primary)[states, actions].sum(-1)
    expected = bradley_terry_probability(jnp.asarray(returns[:, 0]), jnp.asarray(returns[:, 1]), 0.5)
    np.testing.assert_allclose(pairs.labels, expected, rtol=1e-5)
    # a near-deterministic policy takes its action; another key draws other pairs
    greedy = sampler(jax.random.key(0), jnp.array([[0.0, 30.0]] * 3), problem, None)
    assert np.all(np.asarray(greedy.actions) == 1)
    assert not np.array_equal(np.asarray(sampler(jax.random.key(1), jnp.zeros((3, 2)), problem, None).states), states)
    # the teacher may judge by its own reward
    teacher = -np.asarray(problem.primary)
    flipped = sampler(jax.random.key(0), jnp.zeros((3, 2)), problem, teacher)
    np.testing.assert_allclose(flipped.labels, 1.0 - np.asarray(pairs.labels), rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="outer_data"):
        sampler(jax.random.key(0), jnp.zeros((3, 2)), problem, np.zeros(3))
    with pytest.raises(ValueError, match="pairs"):
        OnPolicyPreferences(pairs=0)
    with pytest.raises(ValueError, match="temperature"):
        OnPolicyPreferences(temperature=0.0)


def test_the_on_policy_objective_is_the_mean_loss_with_a_likelihood_ratio_policy_gradient():
    from rewardlab.bilevel import OnPolicyPreferences, on_policy_preference_objective
    from rewardlab.preferences import bradley_terry_loss

    problem = _small_problem(2)
    problem = problem._replace(
        **{
            name: jnp.asarray(getattr(problem, name), jnp.float32)
            for name in ("transitions", "initial_state_dist", "primary", "auxiliary")
        }
    )
    blend = table_blend(6)
    params = BlendParams(blend.init(None) + 0.3 * jax.random.normal(jax.random.key(1), (6, 3)), jnp.asarray(2.0))
    theta = jax.random.normal(jax.random.key(2), (3, 2))
    pairs = OnPolicyPreferences(pairs=32, segment_length=4)(jax.random.key(3), theta, problem, None)
    reward = blend_rewards(blend.coefficients(params.blend, problem.blend_inputs), problem.primary, problem.auxiliary)
    returns = reward[pairs.states, pairs.actions].sum(-1)
    losses = jax.vmap(bradley_terry_loss)(returns[:, 0], returns[:, 1], pairs.labels)
    value = on_policy_preference_objective(theta, params, problem, blend, pairs)
    np.testing.assert_allclose(value, -losses.mean(), rtol=1e-5)

    def log_prob(t):
        return jnp.sum(jax.nn.log_softmax(t, -1)[pairs.states, pairs.actions], axis=(1, 2))

    expected = jnp.einsum("b,bsa->sa", losses.mean() - losses, jax.jacobian(log_prob)(theta)) / 32
    gradient = jax.grad(on_policy_preference_objective)(theta, params, problem, blend, pairs)
    np.testing.assert_allclose(gradient, expected, rtol=1e-4, atol=1e-6)


def test_barfi_draws_the_outer_objectives_data_from_the_current_policy_each_iteration():
    from rewardlab.bilevel import OnPolicyPreferences, on_policy_preference_objective

    problem = _two_state_problem()
    sampler = OnPolicyPreferences(pairs=16, segment_length=3)
    config = dataclasses.replace(SMALL, outer_iterations=10)
    keys = jax.random.split(jax.random.key(4), 2)
    batched = barfi(problem, config, keys, outer_objective=on_policy_preference_objective, outer_sampler=sampler)
    assert not bool(batched.diverged.any()) and np.all(np.isfinite(np.asarray(batched.coefficients)))
    assert float(jnp.abs(batched.params.blend - jnp.array([0.0, 1.0, 1.0])).max()) > 1e-3  # φ moved
    for index in range(2):  # the draws follow each seed's key, under vmap as alone
        single = barfi(
            problem, config, keys[index], outer_objective=on_policy_preference_objective, outer_sampler=sampler
        )
        np.testing.assert_allclose(batched.params.blend[index], single.params.blend, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="outer_sampler"):
        barfi(problem, config, keys, outer_sampler=sampler)
    with pytest.raises(TypeError, match="outer_sampler"):
        barfi(problem, config, keys, outer_objective=on_policy_preference_objective, outer_sampler=3)
