//! Malformed variants of the shipped configs (`dcem::fuzz`: hostile values, removed fields,
//! unknown keys, 1,050 in all) through the config loader: each is refused with an error naming
//! the field, or loads; none panics or aborts.

use planet_dcem::PlanetConfig;

#[test]
fn malformed_configs_are_refused_by_name() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let cases = dcem::fuzz::check_config_files(
        &root,
        &[
            ("planet_swingup.toml", 350),
            ("planet_swingup_ensemble_latent.toml", 350),
            ("planet_swingup_ppo.toml", 350),
        ],
        |p| {
            PlanetConfig::load(p)
                .map(|_| ())
                .map_err(|e| format!("{e:#}"))
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(cases >= 1000, "{cases} cases");
}
