//! Finding dm_control's model files: the `suite` folder of the installed `dm-control` package.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use dcem::{Error, Result};

/// Environment variable naming the `dm_control/suite` folder directly.
pub const SUITE_DIR_VAR: &str = "DCEM_DM_CONTROL_SUITE";
/// Environment variable naming the Python interpreter whose `dm_control` package to use.
pub const PYTHON_VAR: &str = "DCEM_PYTHON";

/// The project's venv interpreter (made by `scripts/setup_venv.sh`).
fn project_python() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python")
}

fn ask_python(python: &Path) -> std::result::Result<PathBuf, String> {
    // find_spec locates the package without importing it (no OpenGL or absl start-up).
    let out = Command::new(python)
        .args([
            "-c",
            "import importlib.util as u; s = u.find_spec('dm_control'); \
             print(s.submodule_search_locations[0] if s else '')",
        ])
        .output()
        .map_err(|e| format!("{}: {e}", python.display()))?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || text.is_empty() {
        return Err(format!("{}: no dm_control package", python.display()));
    }
    Ok(Path::new(&text).join("suite"))
}

fn locate() -> std::result::Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os(SUITE_DIR_VAR) {
        let dir = PathBuf::from(dir);
        return if dir.join("cheetah.xml").is_file() {
            Ok(dir)
        } else {
            Err(format!(
                "{SUITE_DIR_VAR}={} has no cheetah.xml; it must be the dm_control/suite folder \
                 of dm-control 1.0.50",
                dir.display()
            ))
        };
    }
    let mut tried = Vec::new();
    let candidates: Vec<PathBuf> = match std::env::var_os(PYTHON_VAR) {
        Some(p) => vec![PathBuf::from(p)],
        None => vec![project_python(), PathBuf::from("python3")],
    };
    for python in candidates {
        match ask_python(&python) {
            Ok(dir) if dir.join("cheetah.xml").is_file() => return Ok(dir),
            Ok(dir) => tried.push(format!("{}: no cheetah.xml", dir.display())),
            Err(e) => tried.push(e),
        }
    }
    Err(format!(
        "dm_control's model files were not found (tried {}). Run scripts/setup_venv.sh to \
         install dm-control==1.0.50 into the project's .venv, or set {SUITE_DIR_VAR} to the \
         dm_control/suite folder, or {PYTHON_VAR} to a Python that has dm-control",
        tried.join("; ")
    ))
}

/// The folder given by [`use_suite_dir`], if any.
static GIVEN: OnceLock<PathBuf> = OnceLock::new();

/// Makes [`suite_dir`] return `dir` (the `dm_control/suite` folder of a `dm_control` package)
/// instead of looking it up: what a host that knows its interpreter does (the Python package
/// passes the folder of the `dm_control` its own interpreter imports). Must come before the
/// first MuJoCo task is made; giving the same folder again is allowed, another one is an error.
pub fn use_suite_dir(dir: PathBuf) -> Result<()> {
    if !dir.join("cheetah.xml").is_file() {
        return Err(Error::option(
            "dm_control suite",
            format!(
                "{} has no cheetah.xml; it must be the dm_control/suite folder of \
                 dm-control 1.0.50",
                dir.display()
            ),
        ));
    }
    let used = GIVEN.get_or_init(|| dir.clone());
    if *used != dir {
        return Err(Error::option(
            "dm_control suite",
            format!(
                "the model files are already taken from {}; they cannot change to {} within \
                 one process",
                used.display(),
                dir.display()
            ),
        ));
    }
    Ok(())
}

/// The `dm_control/suite` folder holding `cheetah.xml`, `walker.xml` and `common/`: the one given
/// to [`use_suite_dir`], else from `DCEM_DM_CONTROL_SUITE` if set, else from the `dm_control`
/// package of `DCEM_PYTHON`, else of the project's `.venv` or the first `python3` on `PATH`.
/// Looked up once per process.
pub fn suite_dir() -> Result<PathBuf> {
    if let Some(dir) = GIVEN.get() {
        return Ok(dir.clone());
    }
    static DIR: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(locate).clone().map_err(|reason| Error::Io {
        path: PathBuf::from("dm_control/suite"),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, reason),
    })
}
