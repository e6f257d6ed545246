//! The device tensors live on, chosen by name: what every agent binary's `--device` takes.
//!
//! - `cpu`: burn's Flex backend, with the fused host paths (`Device::flex()`);
//! - `wgpu`: burn's wgpu backend (Vulkan, Metal or DX12 through wgpu; on Linux without a GPU,
//!   Mesa's lavapipe runs it on the CPU). Built only with the crate's `wgpu` feature; every
//!   operation takes the tensor-op path, the same code the CPU runs where it has no host
//!   kernel;
//! - `auto`: `wgpu` when the build has it and a wgpu adapter comes up, the CPU otherwise.
//!
//! The wgpu runtime is started once per process: later calls return the same device (burn
//! refuses to initialise a runtime twice).
//!
//! ```
//! let cpu = dcem::device::parse_device("cpu")?;
//! assert_eq!(dcem::device::device_name(&cpu), "cpu");
//! assert!(dcem::device::parse_device("tpu").is_err());
//! # Ok::<(), dcem::Error>(())
//! ```

use burn::tensor::Device;

use crate::error::{Error, Result};

/// The names [`parse_device`] takes.
pub const DEVICE_NAMES: [&str; 3] = ["cpu", "wgpu", "auto"];

/// The device named `name` (`cpu`, `wgpu` or `auto`; see the module doc). An unknown name, a
/// build without the `wgpu` feature asked for `wgpu`, or a machine without a wgpu adapter is
/// an error that says which and what to do.
pub fn parse_device(name: &str) -> Result<Device> {
    match name.trim().to_ascii_lowercase().as_str() {
        "cpu" => Ok(Device::flex()),
        "wgpu" => wgpu_device(),
        "auto" => Ok(wgpu_device().unwrap_or_else(|_| Device::flex())),
        other => Err(Error::option(
            "device",
            format!(
                "unknown device {other:?}: expected one of {}",
                DEVICE_NAMES.join(", ")
            ),
        )),
    }
}

/// `cpu` for the Flex backend, `wgpu` for a wgpu device (with or without autodiff).
pub fn device_name(device: &Device) -> &'static str {
    if device.clone().without_autodiff() == Device::flex() {
        "cpu"
    } else {
        "wgpu"
    }
}

/// The process's wgpu device, started on first use.
#[cfg(feature = "wgpu")]
pub fn wgpu_device() -> Result<Device> {
    use std::sync::OnceLock;
    static DEVICE: OnceLock<std::result::Result<Device, String>> = OnceLock::new();
    DEVICE
        .get_or_init(|| {
            // A driver that fails inside wgpu can panic rather than return an error: both are
            // "no device" to the caller.
            let started = std::panic::catch_unwind(|| Device::wgpu_options().init());
            match started {
                Ok(Ok(device)) => Ok(device),
                Ok(Err(e)) => Err(format!("{e}")),
                Err(panic) => Err(panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "the wgpu runtime panicked while starting".into())),
            }
        })
        .clone()
        .map_err(|e| {
            Error::option(
                "device",
                format!(
                    "no wgpu device could be started ({e}): install a Vulkan driver \
                     (Debian: `scripts/setup_vulkan.sh`, or apt-get install mesa-vulkan-drivers \
                     libvulkan1 for lavapipe on the CPU) or use `--device cpu`"
                ),
            )
        })
}

/// The process's wgpu device: in a build without the `wgpu` feature, an error saying so.
#[cfg(not(feature = "wgpu"))]
pub fn wgpu_device() -> Result<Device> {
    Err(Error::option(
        "device",
        "this build has the CPU backend only: rebuild with `--features wgpu` (for an agent \
         binary, e.g. `cargo build --release -p planet-dcem --features wgpu`) or use \
         `--device cpu`",
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(device_name(&parse_device("cpu").unwrap()), "cpu");
        assert_eq!(device_name(&parse_device(" CPU ").unwrap()), "cpu");
        assert_eq!(device_name(&parse_device("cpu").unwrap().autodiff()), "cpu");
        let e = parse_device("cuda").unwrap_err().to_string();
        assert!(e.contains("device") && e.contains("cpu, wgpu, auto"), "{e}");
        // `auto` always gives a device.
        parse_device("auto").unwrap();
    }

    #[cfg(not(feature = "wgpu"))]
    #[test]
    fn wgpu_without_the_feature_names_the_fix() {
        let e = parse_device("wgpu").unwrap_err().to_string();
        assert!(e.contains("--features wgpu"), "{e}");
        assert_eq!(device_name(&parse_device("auto").unwrap()), "cpu");
    }
}

/// The `--device NAME` flag of every binary (flattened into its command line): a name for
/// [`parse_device`].
#[derive(Clone, Debug, clap::Args)]
pub struct DeviceArg {
    /// Compute device: `cpu`, `wgpu` (burn's wgpu backend; a build with the `wgpu` feature) or
    /// `auto` (wgpu where it comes up, else the CPU).
    #[arg(long, global = true, default_value = "cpu")]
    pub device: String,
}

impl DeviceArg {
    /// The device the flag names (an error naming the flag's accepted values otherwise).
    pub fn parse(&self) -> Result<Device> {
        parse_device(&self.device)
    }
}

/// The command line of a binary whose subcommands all take the global `--device` flag:
/// `C` is the binary's subcommand enum.
#[derive(Debug, clap::Parser)]
pub struct DeviceCli<C: clap::Subcommand> {
    /// The subcommand.
    #[command(subcommand)]
    pub command: C,
    /// `--device`.
    #[command(flatten)]
    pub device: DeviceArg,
}

impl<C: clap::Subcommand> DeviceCli<C> {
    /// The command line's definition, named `name` (the binary) and described by `about`.
    pub fn command(name: &'static str, about: &'static str) -> clap::Command {
        <Self as clap::CommandFactory>::command()
            .name(name)
            .about(about)
    }

    /// Parses `args` (the binary's name first); errors are clap's (usage and the fix).
    pub fn try_parse_from<I, T>(
        name: &'static str,
        about: &'static str,
        args: I,
    ) -> std::result::Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let mut matches = Self::command(name, about).try_get_matches_from(args)?;
        <Self as clap::FromArgMatches>::from_arg_matches_mut(&mut matches)
    }

    /// Parses the process's arguments; on a bad command line prints clap's message and exits.
    pub fn parse(name: &'static str, about: &'static str) -> Self {
        Self::try_parse_from(name, about, std::env::args_os()).unwrap_or_else(|e| e.exit())
    }
}
