//! Malformed variants of the shipped configs (`dcem::fuzz`: hostile values, removed fields,
//! unknown keys, 1,000 in all) through the config loader: each is refused with an error naming
//! the field, or loads; none panics or aborts.

use std::path::Path;

use ppo_agent::PpoAgentConfig;

#[test]
fn malformed_configs_are_refused_by_name() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let dir = std::env::temp_dir().join(format!("ppo-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch folder");
    let configs = [("ppo_cartpole.toml", 1000)];
    let configs: Vec<_> = configs.iter().map(|(f, n)| (root.join(f), *n)).collect();
    let (cases, failures) = dcem::fuzz::check_loader(&configs, &dir.join("config.toml"), |p| {
        PpoAgentConfig::load(p)
            .map(|_| ())
            .map_err(|e| format!("{e:#}"))
    })
    .expect("shipped configs");
    std::fs::remove_dir_all(&dir).ok();
    assert!(cases >= 1000, "{cases} cases");
    assert!(
        failures.is_empty(),
        "{} of {cases} malformed configs:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
