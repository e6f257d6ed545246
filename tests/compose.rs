//! The README's "compose your own agent" example runs, plans better than doing nothing (one
//! episode after the other, and all in one batched planning call per step), and is
//! shown in the README as it is in `examples/compose_agent.rs`.

#[allow(dead_code)]
#[path = "../examples/compose_agent.rs"]
mod example;

#[test]
fn the_composed_agent_brings_the_cart_home() {
    let returns = example::run().unwrap();
    // Doing nothing leaves the cart where it starts (x0 = 2, 3, 1 for the three evaluation
    // seeds): a return of -50 x0^2. Planning must at least halve that cost.
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
fn batched_planning_brings_every_cart_home() {
    let one_by_one = example::run().unwrap();
    let batched = example::run_batched().unwrap();
    assert_eq!(batched.len(), 3);
    let x0 = [2.0, 3.0, 1.0];
    for ((b, s), x) in batched.iter().zip(&one_by_one).zip(x0) {
        assert!(*b > -25.0 * x * x, "return {b} from x0 = {x}: {batched:?}");
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
