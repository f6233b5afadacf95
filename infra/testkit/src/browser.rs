//! The dashboard's browser test (`web/tests/dashboard.test.mjs`, Chromium through
//! playwright-core) run against a stack.

use std::path::PathBuf;

/// The Chromium to drive: `CHROMIUM`, else `chromium` or `chromium-browser` on PATH.
pub fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| [dir.join("chromium"), dir.join("chromium-browser")])
        .find(|p| p.is_file())
}

/// Runs the browser test against `base_url`; its output is returned either way.
pub async fn run(base_url: &str) -> Result<String, String> {
    let browser = chromium().ok_or(
        "no Chromium: apt-get install chromium, or set CHROMIUM (cargo xtask test checks this)",
    )?;
    let dir = crate::stack::workspace().join("web").join("tests");
    if !dir.join("node_modules").join("playwright-core").exists() {
        return Err("web/tests/node_modules is missing: run `npm ci` there \
                    (cargo xtask test does)"
            .into());
    }
    let out = tokio::process::Command::new("node")
        .arg("dashboard.test.mjs")
        .current_dir(&dir)
        .env("BASE_URL", base_url)
        .env("CHROMIUM", browser)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("cannot run node: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}
