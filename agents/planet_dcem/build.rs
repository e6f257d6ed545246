//! Writes the folder holding libmujoco (`MUJOCO_DYNAMIC_LINK_DIR`, set by `.cargo/config.toml`
//! to the link folder `scripts/setup_venv.sh` prepares) into the rpath of this package's
//! binaries, tests and benches (this package's, and those of `agents/ppo` and
//! `examples/mountain_car`, which use this file too): built with `--features dcem-envs/mujoco`
//! they load the library without `LD_LIBRARY_PATH`. Without that feature the entry is unused.

fn main() {
    println!("cargo::rerun-if-env-changed=MUJOCO_DYNAMIC_LINK_DIR");
    println!("cargo::rerun-if-changed=build.rs");
    if let Some(dir) = std::env::var_os("MUJOCO_DYNAMIC_LINK_DIR") {
        let dir = std::path::PathBuf::from(dir);
        println!("cargo::rustc-link-arg=-Wl,-rpath,{}", dir.display());
    }
}
