//! Build script of dcem-envs. With the `mujoco` feature: checks that libmujoco 3.17.0 can be
//! found (the folder in `MUJOCO_DYNAMIC_LINK_DIR`, set by `.cargo/config.toml` to the link folder
//! `scripts/setup_venv.sh` prepares) and writes that folder into the rpath of this package's
//! test binaries (unit and integration), examples and benches so that they load the library
//! without `LD_LIBRARY_PATH`.
//! Without the feature it does nothing.

use std::path::PathBuf;

const FIX: &str = "run `scripts/setup_venv.sh` from the repository root (it installs the pinned \
                   PyPI mujoco==3.17.0 into .venv and prepares .venv/mujoco-link), or export \
                   MUJOCO_DYNAMIC_LINK_DIR=/abs/folder/with/libmujoco.so (MuJoCo 3.17.0)";

fn main() {
    println!("cargo::rerun-if-env-changed=MUJOCO_DYNAMIC_LINK_DIR");
    println!("cargo::rerun-if-changed=build.rs");
    #[cfg(feature = "python")]
    {
        // Binaries embedding Python (GymEnv) load the libpython they were linked against,
        // not whichever one the loader would find first.
        pyo3_build_config::add_libpython_rpath_link_args();
    }
    if std::env::var_os("CARGO_FEATURE_MUJOCO").is_none() {
        return;
    }
    let Some(dir) = std::env::var_os("MUJOCO_DYNAMIC_LINK_DIR").map(PathBuf::from) else {
        panic!(
            "the `mujoco` feature needs libmujoco 3.17.0 and MUJOCO_DYNAMIC_LINK_DIR is not set: {FIX}"
        );
    };
    let lib = dir.join("libmujoco.so");
    if !lib.exists() {
        panic!(
            "the `mujoco` feature needs libmujoco 3.17.0, and {} does not exist: {FIX}",
            lib.display()
        );
    }
    // The wheel's library is named for its version (libmujoco.so.3.17.0); refuse another one
    // here rather than at run time.
    if let Ok(real) = std::fs::canonicalize(&lib) {
        let name = real
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if let Some(version) = name.strip_prefix("libmujoco.so.")
            && version != "3.17.0"
        {
            panic!(
                "{} is MuJoCo {version}, but dcem-envs needs 3.17.0 (the version mujoco-rs \
                 7.0.0 binds): {FIX}",
                lib.display()
            );
        }
    }
    println!("cargo::rerun-if-changed={}", lib.display());
    // Every linked target of this package: its unit-test binary, integration tests, examples
    // and benches (the library itself is an rlib and links nothing).
    println!("cargo::rustc-link-arg=-Wl,-rpath,{}", dir.display());
}
