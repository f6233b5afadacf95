//! SAM local, run for real: Billwire's functions as built here, in containers under the SAM
//! CLI's Lambda Runtime Interface Emulator, against a local Postgres.
//!
//! - [`unavailable`]: why SAM local cannot run on this machine, if it cannot (no Docker
//!   daemon, no SAM CLI).
//! - [`ensure_base_image`]: the local stand-in for `public.ecr.aws/lambda/provided:al2023`
//!   (infra/sam/base-image.sh, built with `docker import`, nothing pulled).
//! - [`build`]: the function binaries (debug, this machine's x86_64) laid out one directory
//!   per function with its `bootstrap`, and `target/sam/template.yaml`: template.yaml with
//!   each function's `CodeUri` pointing there (what `sam build` would produce, without its
//!   release build of every function).
//! - [`env_vars`]: the `--env-vars` file for local mode's database and secrets
//!   (infra/sam/env.json is the checked-in one).
//! - [`DbBridge`]: how the containers reach a Postgres that listens on 127.0.0.1 only.
//! - [`sam`]: a `sam local ...` command with all of the above.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The base image `sam local` runs the functions in (`--invoke-image`).
pub const BASE_IMAGE: &str = "billwire/sam-provided:al2023";
/// SAM's own image on top of it (the emulator added), rebuilt when the base changes.
const RAPID_IMAGE: &str = "billwire/sam-provided:rapid-x86_64";
/// The functions are this machine's binaries.
pub const ARCHITECTURE: &str = "x86_64";
/// The name the containers reach the host by: `--add-host host.docker.internal:host-gateway`
/// (Docker Desktop defines it by itself).
pub const HOST_ALIAS: &str = "host.docker.internal";
/// The database local mode uses (`cargo xtask db`).
pub const LOCAL_DATABASE: &str = "billwire";

pub fn workspace() -> PathBuf {
    devkit::localpg::workspace_root()
}

/// Everything this crate writes: `target/sam/`.
pub fn sam_dir() -> PathBuf {
    workspace().join("target").join("sam")
}

fn output(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Why `sam local` cannot run here, or `None` when it can: a Docker daemon that answers,
/// the SAM CLI, and an x86_64 machine (the base image is assembled from this machine's
/// glibc, for binaries built here).
pub fn unavailable() -> Option<String> {
    if std::env::consts::ARCH != ARCHITECTURE {
        return Some(format!(
            "SAM local tests run x86_64 binaries built on the host; this machine is {}",
            std::env::consts::ARCH
        ));
    }
    match Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .stdin(Stdio::null())
        .output()
    {
        Err(e) => {
            return Some(format!(
                "docker is not installed ({e}); Debian/Ubuntu: apt-get install docker.io"
            ))
        }
        Ok(o) if !o.status.success() => {
            return Some(format!(
            "the Docker daemon does not answer ({}); start it (dockerd, or systemctl start docker)",
            String::from_utf8_lossy(&o.stderr).trim()
        ))
        }
        Ok(_) => {}
    }
    if let Err(e) = output("sam", &["--version"]) {
        return Some(format!(
            "the SAM CLI is missing ({e}); pip install aws-sam-cli"
        ));
    }
    None
}

/// What SAM local needs on this machine, or why it is not there: the answer of
/// [`unavailable`] as a `Result`.
pub fn require() -> Result<(), String> {
    match unavailable() {
        None => Ok(()),
        Some(why) => Err(why),
    }
}

/// The recipe the base image was built from: the script and the host's glibc.
fn recipe(script: &Path) -> Result<String, String> {
    use sha2::{Digest, Sha256};
    let text = std::fs::read(script).map_err(|e| format!("{}: {e}", script.display()))?;
    let glibc = output("ldd", &["--version"]).unwrap_or_default();
    let mut digest = Sha256::new();
    digest.update(&text);
    digest.update(glibc.lines().next().unwrap_or("").as_bytes());
    Ok(hex::encode(&digest.finalize()[..8]))
}

/// Builds [`BASE_IMAGE`] with infra/sam/base-image.sh unless an image from the same recipe
/// is there.
pub fn ensure_base_image() -> Result<(), String> {
    let script = workspace().join("infra").join("sam").join("base-image.sh");
    let recipe = recipe(&script)?;
    let current = output(
        "docker",
        &[
            "image",
            "inspect",
            "--format",
            "{{ index .Config.Labels \"billwire.recipe\" }}",
            BASE_IMAGE,
        ],
    )
    .unwrap_or_default();
    if current.trim() == recipe {
        return Ok(());
    }
    eprintln!("samlocal: building the base image {BASE_IMAGE} (infra/sam/base-image.sh)");
    let out = Command::new("bash")
        .arg(&script)
        .arg(BASE_IMAGE)
        .env("BILLWIRE_SAM_RECIPE", &recipe)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "infra/sam/base-image.sh failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    // SAM keeps its emulator image built on the old base; make it build a new one.
    let _ = output("docker", &["image", "rm", "--force", RAPID_IMAGE]);
    Ok(())
}

/// One function of the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    pub logical_id: String,
    /// The binary, which is also its `FunctionName` in the generated template, so the
    /// Lambda Invoke API of `sam local start-lambda` answers to the names the local gateway
    /// uses (those of `cargo lambda watch`).
    pub binary: String,
}

/// What [`build`] made.
#[derive(Debug, Clone)]
pub struct Layout {
    /// `target/sam/template.yaml`.
    pub template: PathBuf,
    /// `target/sam/build/<binary>/bootstrap` for every function.
    pub build_dir: PathBuf,
    pub functions: Vec<Function>,
}

/// The variables cargo sets for the package it runs; a cargo started from a test or from
/// xtask must not inherit them, or build scripts that watch them rebuild everything.
fn without_package_env(cmd: &mut Command) {
    for (k, _) in std::env::vars_os() {
        let Some(k) = k.to_str() else { continue };
        if k.starts_with("CARGO_PKG_")
            || k.starts_with("CARGO_MANIFEST_")
            || matches!(
                k,
                "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE" | "OUT_DIR"
            )
        {
            cmd.env_remove(k);
        }
    }
}

/// Builds every binary of the workspace in debug for this machine (what `cargo xtask test`
/// and `cargo xtask dev` build first, so there it is a no-op: building a few packages with
/// `-p` would unify features differently and rebuild them, and then the whole workspace
/// again), lays out one directory per function with its `bootstrap`, and writes
/// `target/sam/template.yaml`.
///
/// This is what `sam build` does, minus its release build of every function (`cargo lambda
/// build --release`, far too slow on a small CI machine); `SAM_BUILD_MODE=debug sam build`
/// builds in debug but for an explicit target, so into a separate target directory, every
/// dependency again.
pub fn build() -> Result<Layout, String> {
    let root = workspace();
    let mut cargo = Command::new("cargo");
    cargo
        .current_dir(&root)
        .args(["build", "--workspace", "--bins"]);
    without_package_env(&mut cargo);
    let status = cargo
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("cargo build failed".into());
    }
    layout()
}

/// Lays out what is already built under target/debug (see [`build`]).
pub fn layout() -> Result<Layout, String> {
    let root = workspace();
    let text = std::fs::read_to_string(root.join("template.yaml"))
        .map_err(|e| format!("template.yaml: {e}"))?;
    let dir = sam_dir();
    let build_dir = dir.join("build");
    let (template, functions) = local_template(&text, &build_dir, &root)?;
    for f in &functions {
        let fn_dir = build_dir.join(&f.binary);
        std::fs::create_dir_all(&fn_dir).map_err(|e| format!("{}: {e}", fn_dir.display()))?;
        let binary = root.join("target").join("debug").join(&f.binary);
        if binary.exists() {
            place(&binary, &fn_dir.join("bootstrap"))?;
        }
    }
    let path = dir.join("template.yaml");
    write_atomically(&path, template.as_bytes())?;
    Ok(Layout {
        template: path,
        build_dir,
        functions,
    })
}

/// Makes `to` the same file as `from`: a hard link (a 100 MB debug binary is not copied),
/// replaced atomically so that concurrent layouts and running containers never see it
/// missing; a copy where links are impossible.
fn place(from: &Path, to: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let same = match (std::fs::metadata(from), std::fs::metadata(to)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    };
    if same {
        return Ok(());
    }
    let tmp = to.with_extension(format!("tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    if std::fs::hard_link(from, &tmp).is_err() {
        std::fs::copy(from, &tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    }
    std::fs::rename(&tmp, to).map_err(|e| format!("{}: {e}", to.display()))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The variables local mode sets that the template does not declare. SAM passes a
/// function only the variables its template declares (an `--env-vars` file can change
/// their values, not add new ones), so the generated template declares these, empty.
const LOCAL_VARIABLES: [&str; 5] = [
    "DATABASE_URL",
    "JWT_SECRET",
    "WEBHOOK_SECRET",
    "WEBSOCKET_URL",
    "LOG_FORMAT",
];

/// template.yaml for `sam local`: every function's `CodeUri` is its directory under
/// `build_dir` and its `FunctionName` its binary; layers' `ContentUri`s are absolute (the
/// generated template lives elsewhere); local mode's variables are declared.
pub fn local_template(
    text: &str,
    build_dir: &Path,
    root: &Path,
) -> Result<(String, Vec<Function>), String> {
    use serde_yaml_ng::Value as Yaml;
    let key = |k: &str| Yaml::String(k.to_string());
    let mut doc: Yaml = serde_yaml_ng::from_str(text).map_err(|e| format!("template.yaml: {e}"))?;
    let variables = doc
        .get_mut("Globals")
        .and_then(|g| g.get_mut("Function"))
        .and_then(Yaml::as_mapping_mut)
        .ok_or("template.yaml has no Globals.Function")?
        .entry(key("Environment"))
        .or_insert_with(|| Yaml::Mapping(Default::default()))
        .as_mapping_mut()
        .ok_or("Globals.Function.Environment is not a mapping")?
        .entry(key("Variables"))
        .or_insert_with(|| Yaml::Mapping(Default::default()))
        .as_mapping_mut()
        .ok_or("Globals.Function.Environment.Variables is not a mapping")?;
    for name in LOCAL_VARIABLES {
        variables
            .entry(key(name))
            .or_insert_with(|| Yaml::String(String::new()));
    }
    let resources = doc
        .get_mut("Resources")
        .and_then(Yaml::as_mapping_mut)
        .ok_or("template.yaml has no Resources")?;
    let mut functions = Vec::new();
    for (id, resource) in resources.iter_mut() {
        let id = id.as_str().unwrap_or("?").to_string();
        match resource.get("Type").and_then(Yaml::as_str) {
            Some("AWS::Serverless::Function") => {
                let binary = resource
                    .get("Metadata")
                    .and_then(|m| m.get("BuildProperties"))
                    .and_then(|b| b.get("Binary"))
                    .and_then(Yaml::as_str)
                    .ok_or_else(|| format!("{id} has no Metadata.BuildProperties.Binary"))?
                    .to_string();
                let props = resource
                    .get_mut("Properties")
                    .and_then(Yaml::as_mapping_mut)
                    .ok_or_else(|| format!("{id} has no Properties"))?;
                let code = build_dir.join(&binary);
                props.insert(key("CodeUri"), key(&code.to_string_lossy()));
                props.insert(key("FunctionName"), key(&binary));
                functions.push(Function {
                    logical_id: id,
                    binary,
                });
            }
            Some("AWS::Serverless::LayerVersion") => {
                if let Some(content) = resource
                    .get_mut("Properties")
                    .and_then(|p| p.get_mut("ContentUri"))
                {
                    if let Some(rel) = content.as_str() {
                        *content = key(&root.join(rel).to_string_lossy());
                    }
                }
            }
            _ => {}
        }
    }
    let header = "# Generated by infra/samlocal from template.yaml for `sam local`; do not edit.\n";
    let body = serde_yaml_ng::to_string(&doc).map_err(|e| format!("template: {e}"))?;
    Ok((format!("{header}{body}"), functions))
}

/// The `--env-vars` file's content: local mode's secrets (infra/devkit/src/secrets.rs, the
/// ones the checked-in example events are signed with) and `database_url` as the containers
/// reach it. The `*_SECRET_ARN` variables are emptied: locally the values come directly.
pub fn env_vars(database_url: &str, websocket_url: Option<&str>) -> Value {
    json!({
        "Parameters": {
            "DATABASE_URL": database_url,
            "DATABASE_URL_SECRET_ARN": "",
            "DATABASE_CA_FILE": "",
            "JWT_SECRET": devkit::secrets::LOCAL_JWT_SECRET,
            "JWT_SECRET_SECRET_ARN": "",
            "WEBHOOK_SECRET": devkit::secrets::LOCAL_WEBHOOK_SECRET,
            "WEBHOOK_SECRET_SECRET_ARN": "",
            // Local mode has no CloudFront in front: no origin header to check.
            "ORIGIN_VERIFY_SECRET_SECRET_ARN": "",
            "WEBSOCKET_URL": websocket_url.unwrap_or(""),
            "LOG_FORMAT": "text",
            "RUST_LOG": "info",
        }
    })
}

/// infra/sam/env.json: local mode's database as the containers see it (through a
/// [`DbBridge`] on port 5432, or Docker Desktop's own host.docker.internal).
pub fn checked_in_env_vars() -> Value {
    env_vars(
        &format!("postgres://postgres@{HOST_ALIAS}:5432/{LOCAL_DATABASE}?sslmode=disable"),
        Some("ws://127.0.0.1:8001/ws"),
    )
}

/// Writes an `--env-vars` file.
pub fn write_env_file(path: &Path, vars: &Value) -> Result<(), String> {
    let text = serde_json::to_string_pretty(vars).map_err(|e| e.to_string())?;
    write_atomically(path, format!("{text}\n").as_bytes())
}

/// `postgres://user@host:port/db?q` -> (`user@`, `host`, `port`, `/db?q`).
fn split_url(url: &str) -> Result<(&str, &str, u16, &str), String> {
    let bad = || format!("not a postgres://user@host:port/database URL: {url}");
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .ok_or_else(bad)?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(i) => authority.split_at(i + 1),
        None => ("", authority),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().map_err(|_| bad())?),
        None => (hostport, 5432),
    };
    if host.is_empty() {
        return Err(bad());
    }
    Ok((userinfo, host, port, tail))
}

/// The same database reached at `host:port`, without TLS (a local server; the bridge
/// carries it on this machine only).
pub fn url_via(url: &str, host: &str, port: u16) -> Result<String, String> {
    let (userinfo, _, _, tail) = split_url(url)?;
    let mut out = format!("postgres://{userinfo}{host}:{port}{tail}");
    if !tail.contains("sslmode=") {
        out.push(if tail.contains('?') { '&' } else { '?' });
        out.push_str("sslmode=disable");
    }
    Ok(out)
}

/// The address containers reach the host by on Docker's default bridge network (what
/// `host-gateway` resolves to).
pub fn docker_host_gateway() -> Result<std::net::IpAddr, String> {
    let text = output(
        "docker",
        &[
            "network",
            "inspect",
            "bridge",
            "--format",
            "{{range .IPAM.Config}}{{.Gateway}} {{end}}",
        ],
    )?;
    if let Some(ip) = text
        .split_whitespace()
        .find_map(|a| a.parse::<std::net::Ipv4Addr>().ok())
    {
        return Ok(std::net::IpAddr::V4(ip));
    }
    // Older daemons leave the default bridge's gateway out of IPAM: it is the address of
    // the bridge's interface (docker0).
    let interface = output(
        "docker",
        &[
            "network",
            "inspect",
            "bridge",
            "--format",
            "{{ index .Options \"com.docker.network.bridge.name\" }}",
        ],
    )?;
    let interface = interface.trim();
    let interface = if interface.is_empty() {
        "docker0"
    } else {
        interface
    };
    let addresses = output("ip", &["-4", "-o", "addr", "show", "dev", interface])?;
    addresses
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|cidr| cidr.split('/').next())
        .and_then(|a| a.parse::<std::net::Ipv4Addr>().ok())
        .map(std::net::IpAddr::V4)
        .ok_or_else(|| format!("cannot find the address of {interface} (the Docker bridge)"))
}

/// Forwards connections from the functions' containers to a Postgres that listens on
/// 127.0.0.1 only. `sam local` runs every container on Docker's bridge network (its
/// `--docker-network host` adds no host networking), where 127.0.0.1 is the container
/// itself; the containers reach the host as `host.docker.internal` (the bridge's gateway
/// address), so the bridge listens there and the server sees local connections. Dropping
/// it stops it.
pub struct DbBridge {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl DbBridge {
    /// Listens on the bridge gateway's `port` (0: any free one) and forwards to the server
    /// of `database_url`.
    pub async fn start(database_url: &str, port: u16) -> Result<DbBridge, String> {
        let (_, host, upstream_port, _) = split_url(database_url)?;
        let upstream = format!("{host}:{upstream_port}");
        let gateway = docker_host_gateway()?;
        let listener = tokio::net::TcpListener::bind((gateway, port))
            .await
            .map_err(|e| format!("cannot listen on {gateway}:{port} for the containers: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Ok(DbBridge { port, task })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `database_url` as the containers reach it: through this bridge.
    pub fn container_url(&self, database_url: &str) -> Result<String, String> {
        url_via(database_url, HOST_ALIAS, self.port)
    }
}

impl Drop for DbBridge {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `sam local <subcommand>` on the generated template, with the base image, the env-vars
/// file, this machine's architecture and the host alias. Add the subcommand's own
/// arguments (a function name, `-e event.json`, `-p PORT`).
pub fn sam(subcommand: &str, layout: &Layout, env_file: &Path) -> Command {
    let mut cmd = Command::new("sam");
    cmd.current_dir(workspace())
        .args(["local", subcommand, "--template"])
        .arg(&layout.template)
        .arg("--env-vars")
        .arg(env_file)
        .args([
            "--parameter-overrides",
            &format!("Architecture={ARCHITECTURE}"),
            "--invoke-image",
            BASE_IMAGE,
            "--skip-pull-image",
            "--add-host",
            &format!("{HOST_ALIAS}:host-gateway"),
        ])
        .env("SAM_CLI_TELEMETRY", "0")
        .env("SAM_CLI_DISABLE_UPDATE_CHECK", "1");
    cmd
}

/// `sam local start-lambda` on 127.0.0.1:`port`: the Lambda Invoke API
/// (`POST /2015-03-31/functions/{name}/invocations`) that local mode's gateway calls, as
/// `cargo lambda watch` serves it, answered by the functions in containers. One warm
/// container per function, started on its first invocation and kept (`LAZY`); no file
/// watching (a rebuild is picked up by restarting).
pub fn start_lambda(layout: &Layout, env_file: &Path, port: u16) -> Command {
    let mut cmd = sam("start-lambda", layout, env_file);
    cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--warm-containers", "LAZY", "--no-watch"]);
    cmd
}

/// Removes SAM's function containers whose environment mentions `marker` (e.g. a test's
/// database name): what a killed `sam` leaves behind. Returns how many went.
pub fn remove_containers(marker: &str) -> usize {
    let Ok(ids) = output(
        "docker",
        &[
            "ps",
            "--all",
            "--quiet",
            "--filter",
            "label=sam.cli.container.type=lambda",
        ],
    ) else {
        return 0;
    };
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if ids.is_empty() {
        return 0;
    }
    let mut args = vec!["inspect", "--format", "{{.Id}} {{json .Config.Env}}"];
    args.extend(&ids);
    let Ok(described) = output("docker", &args) else {
        return 0;
    };
    let ours: Vec<&str> = described
        .lines()
        .filter(|l| l.contains(marker))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    if ours.is_empty() {
        return 0;
    }
    let mut args = vec!["rm", "--force"];
    args.extend(&ours);
    let _ = output("docker", &args);
    ours.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_rewritten_for_the_containers() {
        assert_eq!(
            url_via(
                "postgres://postgres@127.0.0.1:5432/billwire",
                HOST_ALIAS,
                40001
            )
            .unwrap(),
            "postgres://postgres@host.docker.internal:40001/billwire?sslmode=disable"
        );
        assert_eq!(
            url_via(
                "postgres://u:p%40ss@localhost/db?application_name=x",
                "h",
                1
            )
            .unwrap(),
            "postgres://u:p%40ss@h:1/db?application_name=x&sslmode=disable"
        );
        assert_eq!(
            url_via("postgresql://a@b:7/c?sslmode=require", "h", 2).unwrap(),
            "postgres://a@h:2/c?sslmode=require"
        );
        assert!(url_via("mysql://x", "h", 1).is_err());
    }

    #[test]
    fn the_checked_in_env_file_is_local_modes() {
        let path = workspace().join("infra/sam/env.json");
        let text = std::fs::read_to_string(&path).expect("infra/sam/env.json");
        let file: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(
            file,
            checked_in_env_vars(),
            "infra/sam/env.json is out of date: write samlocal::checked_in_env_vars() to it"
        );
    }

    #[test]
    fn every_secret_arn_the_template_declares_is_blanked_for_local_mode() {
        // SAM resolves a Ref to a secret as its logical id; a function would try to fetch
        // that and fail to start. Every *_SECRET_ARN must get a value here.
        let text = std::fs::read_to_string(workspace().join("template.yaml")).expect("template");
        let vars = env_vars("postgres://x", None);
        let declared: std::collections::BTreeSet<String> = text
            .lines()
            .filter_map(|l| l.trim().split_once(':').map(|(k, _)| k.trim().to_string()))
            .filter(|k| k.ends_with("_SECRET_ARN") && !k.contains(' '))
            .collect();
        assert!(declared.contains("DATABASE_URL_SECRET_ARN"), "{declared:?}");
        for name in declared {
            assert_eq!(
                vars["Parameters"][&name], "",
                "{name} is declared in template.yaml but not blanked in samlocal::env_vars"
            );
        }
    }

    #[test]
    fn the_local_template_points_every_function_at_its_build() {
        let root = workspace();
        let text = std::fs::read_to_string(root.join("template.yaml")).expect("template.yaml");
        let build = Path::new("/b");
        let (yaml, functions) = local_template(&text, build, &root).expect("local template");
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&yaml).expect("valid YAML");
        let routes = gateway_functions(&text);
        assert_eq!(
            functions.len(),
            routes.len() + 1,
            "every function, db-migrate too"
        );
        for f in &functions {
            let props = &doc["Resources"][f.logical_id.as_str()]["Properties"];
            assert_eq!(
                props["CodeUri"].as_str(),
                Some(format!("/b/{}", f.binary).as_str())
            );
            assert_eq!(props["FunctionName"].as_str(), Some(f.binary.as_str()));
        }
        let vars = &doc["Globals"]["Function"]["Environment"]["Variables"];
        for name in LOCAL_VARIABLES {
            assert!(vars.get(name).is_some(), "{name} is not declared");
        }
        // Every variable the env-vars file sets is one a function declares, or SAM drops it.
        let declared: Vec<String> = doc["Resources"]
            .as_mapping()
            .into_iter()
            .flatten()
            .filter_map(|(_, r)| r["Properties"]["Environment"]["Variables"].as_mapping())
            .chain(vars.as_mapping())
            .flat_map(|m| m.keys().filter_map(|k| k.as_str().map(String::from)))
            .collect();
        let file = checked_in_env_vars();
        for name in file["Parameters"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
        {
            assert!(
                declared.contains(name),
                "the env-vars file sets {name}, which no function declares"
            );
        }
    }

    /// The functions behind routes, as the local gateway reads them.
    fn gateway_functions(text: &str) -> Vec<String> {
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).expect("YAML");
        doc["Resources"]
            .as_mapping()
            .into_iter()
            .flatten()
            .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
            .filter(|(_, r)| {
                r["Metadata"]["BuildProperties"]["Binary"].as_str() != Some("db-migrate")
            })
            .map(|(k, _)| k.as_str().unwrap_or_default().to_string())
            .collect()
    }
}
