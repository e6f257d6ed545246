//! Malformed variants of the shipped configs (`dcem::fuzz`: hostile values, removed fields,
//! unknown keys, 1,000 in all) through the config loader: each is refused with an error naming
//! the field, or loads; none panics or aborts.

use ppo_agent::PpoAgentConfig;

#[test]
fn malformed_configs_are_refused_by_name() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let cases = dcem::fuzz::check_config_files(&root, &[("ppo_cartpole.toml", 1000)], |p| {
        PpoAgentConfig::load(p)
            .map(|_| ())
            .map_err(|e| format!("{e:#}"))
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(cases >= 1000, "{cases} cases");
}
