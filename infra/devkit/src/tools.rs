//! Tools the stack runs that the machine may lack, installed under `target/tools/`.
//!
//! cargo-lambda (`cargo lambda watch` serves the functions): the PyPI package ships its
//! prebuilt binary, so `python3 -m pip install --target` puts a working `cargo-lambda` in
//! `target/tools/cargo-lambda/bin/` in seconds, without touching the machine's Python.
//! `--no-deps` leaves out ziglang (400 MB), which only cross-compiling needs.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where [`ensure_cargo_lambda`] installs it; `cargo-lambda` is in its `bin/`.
pub fn cargo_lambda_dir(root: &Path) -> PathBuf {
    root.join("target").join("tools").join("cargo-lambda")
}

/// `PATH` with `target/tools/cargo-lambda/bin` first when it exists: what the processes
/// the stack starts see, so `cargo lambda` works there whether or not the machine has it.
pub fn path(root: &Path) -> OsString {
    let current = std::env::var_os("PATH").unwrap_or_default();
    let bin = cargo_lambda_dir(root).join("bin");
    if !bin.join("cargo-lambda").is_file() {
        return current;
    }
    let mut dirs = vec![bin.clone()];
    dirs.extend(std::env::split_paths(&current).filter(|d| *d != bin));
    std::env::join_paths(dirs).unwrap_or(current)
}

/// The version `cargo lambda --version` prints with [`path`], if it runs.
pub fn cargo_lambda_version(root: &Path) -> Option<String> {
    let out = Command::new("cargo")
        .args(["lambda", "--version"])
        .env("PATH", path(root))
        .stdin(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Makes `cargo lambda` work with [`path`]: installs cargo-lambda from PyPI under
/// `target/tools/` when neither the machine nor an earlier run has it. `say` reports what
/// it does.
pub fn ensure_cargo_lambda(root: &Path, say: &dyn Fn(&str)) -> Result<(), String> {
    if cargo_lambda_version(root).is_some() {
        return Ok(());
    }
    let dir = cargo_lambda_dir(root);
    let manual = "install it yourself (`pip install cargo-lambda`, or see \
                  https://www.cargo-lambda.info/guide/installation.html) and try again";
    say(&format!(
        "cargo-lambda is missing: installing it from PyPI into {} \
         (python3 -m pip install --no-deps --target ... cargo-lambda)",
        relative(root, &dir)
    ));
    let started = std::time::Instant::now();
    // Into a directory of our own first: a concurrent or interrupted install never leaves a
    // half-written one where the next run looks.
    let staging = dir.with_file_name(format!("cargo-lambda.{}.partial", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let status = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--upgrade",
            "--target",
        ])
        .arg(&staging)
        .arg("cargo-lambda")
        .stdin(Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(format!(
                "`python3 -m pip install cargo-lambda` failed ({s}); {manual}"
            ));
        }
        Err(e) => {
            return Err(format!(
                "cargo-lambda is missing and Python 3 is not there to install it \
                 (python3: {e}); {manual}"
            ))
        }
    }
    if !staging.join("bin").join("cargo-lambda").is_file() {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(format!(
            "pip installed cargo-lambda but left no bin/cargo-lambda in {}; {manual}",
            staging.display()
        ));
    }
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = std::fs::rename(&staging, &dir) {
        let _ = std::fs::remove_dir_all(&staging);
        // Another run may have finished first; that one is as good.
        if !dir.join("bin").join("cargo-lambda").is_file() {
            return Err(format!(
                "cannot move cargo-lambda into {}: {e}",
                dir.display()
            ));
        }
    }
    match cargo_lambda_version(root) {
        Some(version) => {
            say(&format!(
                "installed {version} in {:.0} s",
                started.elapsed().as_secs_f64()
            ));
            Ok(())
        }
        None => Err(format!(
            "cargo-lambda is installed in {} but `cargo lambda --version` fails there; {manual}",
            dir.display()
        )),
    }
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

/// Whether [`apt_install`] can work here: root, on a machine with apt-get.
pub fn can_apt() -> bool {
    is_root()
        && Command::new("apt-get")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// `apt-get install -y <packages>`, and once more after `apt-get update` if that fails (a
/// fresh machine has no package lists yet). Waits for another apt to finish rather than
/// failing on its lock. apt's errors are shown; its progress is not.
pub fn apt_install(packages: &[&str], say: &dyn Fn(&str)) -> Result<(), String> {
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(["-q", "-o", "DPkg::Lock::Timeout=600"])
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let started = std::time::Instant::now();
    say(&format!("apt-get install -y {}", packages.join(" ")));
    let install: Vec<&str> = ["install", "-y"]
        .into_iter()
        .chain(packages.iter().copied())
        .collect();
    if !apt(&install) {
        say("apt-get update, then installing again");
        if !apt(&["update"]) || !apt(&install) {
            return Err(format!("apt-get install {} failed", packages.join(" ")));
        }
    }
    say(&format!(
        "installed {} in {:.0} s",
        packages.join(" "),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// A Python venv at `target/tools/<name>` with the pinned `requirements` installed (the
/// rehearsal's and the template checks' tools), created or reinstalled when that file
/// changed since the last install; its `python`. Fails, saying why, without Python's venv
/// module or PyPI: a check that could not be set up never passes.
pub fn python_venv(root: &Path, name: &str, requirements: &Path) -> Result<PathBuf, String> {
    let dir = root.join("target").join("tools").join(name);
    let python = dir.join("bin").join("python");
    let wanted = std::fs::read_to_string(requirements)
        .map_err(|e| format!("cannot read {}: {e}", requirements.display()))?;
    let stamp = dir.join("requirements.installed");
    if python.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(&wanted) {
        return Ok(python);
    }
    eprintln!(
        "installing {} into {}",
        relative(root, requirements),
        relative(root, &dir)
    );
    let run = |cmd: &mut Command, what: &str| -> Result<(), String> {
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{what}: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        Err(format!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    };
    run(
        Command::new("python3").args(["-m", "venv"]).arg(&dir),
        "python3 -m venv (needs Python's venv module: apt-get install python3-venv)",
    )?;
    run(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(requirements),
        &format!(
            "pip install -r {} (needs PyPI)",
            relative(root, requirements)
        ),
    )?;
    std::fs::write(&stamp, wanted).map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    Ok(python)
}
