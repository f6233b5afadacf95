//! Runs infra/template/check.py (template.yaml, and the optional stacks in infra/aws/) in a
//! venv with the pinned requirements.txt, creating the venv under target/tools/template-venv
//! when it is missing or the requirements changed.
//! Without Python or PyPI this fails and says why: a check that did not run never passes.

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(cmd: &mut Command, what: &str) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("{what}: cannot run {cmd:?}: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("{what} failed ({}):\n{text}", out.status))
    }
}

/// The venv's python, under target/tools/template-venv, (re)installed when
/// requirements.txt differs from the last install.
fn venv() -> Result<PathBuf, String> {
    let root = workspace_root();
    devkit::tools::python_venv(
        &root,
        "template-venv",
        &root.join("infra/template/requirements.txt"),
    )
}

#[test]
fn template_passes_cfn_lint_sam_validate_checkov_and_the_translator_wiring_check() {
    let python = match venv() {
        Ok(p) => p,
        Err(e) => panic!("the template checks could not be set up, so they did not run:\n{e}"),
    };
    let root = workspace_root();
    let result = run(
        Command::new(&python)
            .arg(root.join("infra/template/check.py"))
            .current_dir(&root)
            .env("SAM_CLI_TELEMETRY", "0"),
        "infra/template/check.py",
    );
    match result {
        Ok(out) => println!("{out}"),
        Err(e) => panic!("{e}"),
    }
}
