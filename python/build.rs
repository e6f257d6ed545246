//! With the `mujoco` feature, writes the folder holding libmujoco into the extension module's
//! rpath (as envs/build.rs does for that crate's binaries), so `import dcem` finds it.

fn main() {
    println!("cargo::rerun-if-env-changed=MUJOCO_DYNAMIC_LINK_DIR");
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_MUJOCO").is_none() {
        return;
    }
    if let Some(dir) = std::env::var_os("MUJOCO_DYNAMIC_LINK_DIR") {
        let dir = std::path::PathBuf::from(dir);
        println!("cargo::rustc-link-arg-cdylib=-Wl,-rpath,{}", dir.display());
    }
}
