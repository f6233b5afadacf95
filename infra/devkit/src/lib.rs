//! What `cargo xtask dev` and the end-to-end tests' stacks share: [`supervisor`] starts the
//! stack's processes so that they die with their parent however it ends, [`ports`] says who
//! holds a port, [`tools`] installs the tools the stack runs (cargo-lambda).

pub mod ports;
pub mod procfs;
pub mod supervisor;
pub mod tools;

use std::path::{Path, PathBuf};

/// The workspace root (this crate is `infra/devkit`).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors().nth(2).unwrap_or(here).to_path_buf()
}
