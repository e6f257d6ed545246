//! The README's "compose your own agent" example runs, plans better than doing nothing (one
//! episode after the other, and all in one batched planning call per step), and is
//! shown in the README as it is in `examples/compose_agent.rs`; the book's other examples
//! (`examples/add_planner.rs`, a planner written outside the library, and `examples/minimise.rs`,
//! the solver page's) run and do what their pages say.

#[allow(dead_code)]
#[path = "../examples/add_planner.rs"]
mod add_planner;
// The compose example, as the planner example mounts it (one module per file).
use add_planner::compose_agent as example;

/// Doing nothing leaves the cart where it starts (x0 = 2, 3, 1 for the three evaluation
/// seeds): a return of -50 x0^2. Planning must at least halve that cost.
fn assert_brings_the_carts_home(returns: &[f64]) {
    let x0 = [2.0, 3.0, 1.0];
    assert_eq!(returns.len(), 3);
    for (ret, x) in returns.iter().zip(x0) {
        assert!(
            *ret > -25.0 * x * x,
            "return {ret} from x0 = {x}: {returns:?}"
        );
    }
}

#[test]
fn the_composed_agent_brings_the_cart_home() {
    assert_brings_the_carts_home(&example::run().unwrap());
}

#[test]
fn batched_planning_brings_every_cart_home() {
    let one_by_one = example::run().unwrap();
    let batched = example::run_batched().unwrap();
    assert_brings_the_carts_home(&batched);
    for (b, s) in batched.iter().zip(&one_by_one) {
        // Different noise, the same quality of plan: within 5% of the sequential return.
        assert!(
            (b - s).abs() <= 0.05 * s.abs(),
            "batched {b} vs one by one {s}"
        );
    }
}

#[test]
fn the_readme_shows_the_example_as_it_is() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let example = std::fs::read_to_string(format!("{root}/examples/compose_agent.rs")).unwrap();
    let code = example
        .split_once("\nuse ")
        .map(|(_, rest)| format!("use {rest}"))
        .unwrap();
    assert!(
        readme.contains(&code),
        "README.md does not hold examples/compose_agent.rs (from its first `use`) verbatim"
    );
}

#[test]
fn a_planner_written_outside_the_library_brings_the_cart_home() {
    assert_brings_the_carts_home(&add_planner::run().unwrap());
}

#[test]
fn the_random_shooting_planner_refuses_bad_options_by_name() {
    for (args, field) in [
        ((0, 15, -1.0, 1.0), "`n`"),
        ((10, 0, -1.0, 1.0), "`horizon`"),
        ((10, 15, 1.0, 1.0), "`low`"),
        ((10, 15, f64::NAN, 1.0), "`low`"),
    ] {
        let (n, h, lo, hi) = args;
        let err = add_planner::RandomShooting::new(n, h, lo, hi, 0)
            .err()
            .expect("refused");
        assert!(err.to_string().contains(field), "{err}");
    }
}

#[allow(dead_code)]
#[path = "../examples/minimise.rs"]
mod minimise;

#[test]
fn the_solver_page_example_finds_the_minima_and_a_gradient() {
    let (mu, grad) = minimise::run().unwrap();
    let target = [1.0, -2.0, 0.5, 0.0];
    for (m, t) in mu.iter().zip(target) {
        assert!(
            (m - t).abs() < 0.5,
            "solution {mu:?} against minima {target:?}"
        );
    }
    // The solution follows its minimum: d sum(mu) / d target is near 1 in every entry.
    for g in &grad {
        assert!(g.is_finite() && *g > 0.5 && *g < 1.5, "gradient {grad:?}");
    }
}
