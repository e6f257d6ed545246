//! Malformed variants of the shipped configs (`dcem::fuzz`: hostile values, removed fields,
//! unknown keys, 1,000 in all) through the config loader: each is refused with an error naming
//! the field, or loads; none panics or aborts.

use std::path::Path;

use cartpole_embed::EmbedConfig;

#[test]
fn malformed_configs_are_refused_by_name() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let dir = std::env::temp_dir().join(format!("cartpole-embed-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch folder");
    let path = dir.join("config.toml");
    let (mut cases, mut failures) = (0, Vec::new());
    for (seed, (name, n)) in [("cartpole_embed.toml", 1000)].into_iter().enumerate() {
        let text = std::fs::read_to_string(root.join(name)).expect("shipped config");
        let mutants = dcem::fuzz::mutants(&text, n, seed as u64).expect("mutants");
        cases += mutants.len();
        failures.extend(dcem::fuzz::failures(&mutants, |text| {
            std::fs::write(&path, text).map_err(|e| e.to_string())?;
            EmbedConfig::load(&path)
                .map(|_| ())
                .map_err(|e| format!("{e:#}"))
        }));
    }
    std::fs::remove_dir_all(&dir).ok();
    assert!(cases >= 1000, "{cases} cases");
    assert!(
        failures.is_empty(),
        "{} of {cases} malformed configs:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
