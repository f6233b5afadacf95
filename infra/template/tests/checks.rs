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

/// The venv's python, (re)installed when requirements.txt differs from the last install.
fn venv() -> Result<PathBuf, String> {
    let root = workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let dir = target.join("tools/template-venv");
    let python = dir.join("bin/python");
    let requirements = root.join("infra/template/requirements.txt");
    let wanted = std::fs::read_to_string(&requirements)
        .map_err(|e| format!("cannot read {}: {e}", requirements.display()))?;
    let stamp = dir.join("requirements.installed");
    if python.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(&wanted) {
        return Ok(python);
    }
    let system_python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    run(
        Command::new(&system_python).args(["-m", "venv"]).arg(&dir),
        "creating the template-checks venv (needs python3 with venv: apt-get install python3-venv)",
    )?;
    run(
        Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&requirements),
        "pip install -r infra/template/requirements.txt (needs PyPI; no network means these checks cannot run)",
    )?;
    std::fs::write(&stamp, wanted).map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    Ok(python)
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
