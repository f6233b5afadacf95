//! The connector's container, run as ECS Fargate runs the task definition.
//!
//! - [`connector_image`]: the connector's image, made by replaying the runtime stage of
//!   infra/connector.Dockerfile as written, on a local stand-in for its distroless base
//!   ([`ensure_base_image`], infra/rehearsal/connector-base.sh, `docker import`ed from the
//!   host: nothing is pulled) and with the binary built here (`target/debug/connector`) in
//!   place of the build stage's.
//! - [`Task`]: one container definition of a task definition, started as Fargate starts it
//!   (read-only root, the image's user, the task's volumes as Fargate creates them, its
//!   environment and secrets and nothing else, its CPU and memory limits) and watched by its
//!   health check as ECS runs it ([`Task::wait_healthy`]).
//!
//! Everything written on the host goes under [`std::env::temp_dir`], never into the
//! checkout (`cargo lambda watch` restarts on any change there).

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The local stand-in for `gcr.io/distroless/cc-debian12:nonroot` (tagged `nonroot`, or
/// `nonroot-ca<hash>` when built with an extra CA).
pub const BASE_IMAGE: &str = "billwire/rehearsal-distroless-cc";
/// The connector's image as the rehearsal builds it (tagged `rehearsal[-ca<hash>]`).
pub const CONNECTOR_IMAGE: &str = "billwire/connector";
/// The label holding the hash of everything an image was built from.
const RECIPE_LABEL: &str = "billwire.recipe";
/// The label naming the process that started a container or created a volume, so that what
/// a killed test left behind can be told from what a running one uses.
pub(crate) const OWNER_LABEL: &str = "billwire.rehearsal.pid";
/// The stage name and file the runtime stage copies the binary from.
const BINARY: &str = "connector";

fn workspace() -> PathBuf {
    devkit::workspace_root()
}

/// Where the rehearsal keeps what it writes on the host (outside the checkout).
fn scratch() -> PathBuf {
    std::env::temp_dir().join("billwire-rehearsal")
}

fn docker(args: &[&str]) -> Result<String, String> {
    crate::run(
        Command::new("docker").args(args),
        &format!("docker {}", args.join(" ")),
    )
}

/// Why the connector's container cannot run here, or `None` when it can: a Docker daemon
/// that answers, on an x86_64 Linux machine (the base image is assembled from this
/// machine's glibc, for the binary built here). Narrower than `samlocal::unavailable`: no
/// SAM CLI is needed.
pub fn unavailable() -> Option<String> {
    if std::env::consts::OS != "linux" || std::env::consts::ARCH != "x86_64" {
        return Some(format!(
            "the rehearsal runs the x86_64 Linux binary built here; this machine is {} {}",
            std::env::consts::OS,
            std::env::consts::ARCH
        ));
    }
    match Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .stdin(Stdio::null())
        .output()
    {
        Err(e) => Some(format!(
            "docker is not installed ({e}); Debian/Ubuntu: apt-get install docker.io"
        )),
        Ok(o) if !o.status.success() => Some(format!(
            "the Docker daemon does not answer ({}); start it (dockerd, or systemctl start docker)",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Ok(_) => None,
    }
}

// ---------------------------------------------------------------------------------------
// Images
// ---------------------------------------------------------------------------------------

fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut digest = Sha256::new();
    for part in parts {
        digest.update((part.len() as u64).to_le_bytes());
        digest.update(part);
    }
    hex::encode(digest.finalize())
}

/// `-ca<hash>` for an image built with an extra CA, so that images with and without one
/// (or with different ones) live side by side instead of rebuilding each other.
fn ca_suffix(extra_ca: Option<&[u8]>) -> String {
    extra_ca
        .map(|pem| format!("-ca{}", &sha256_hex(&[pem])[..8]))
        .unwrap_or_default()
}

fn read_ca(extra_ca: Option<&Path>) -> Result<Option<Vec<u8>>, String> {
    extra_ca
        .map(|p| std::fs::read(p).map_err(|e| format!("extra CA {}: {e}", p.display())))
        .transpose()
}

fn image_label(image: &str) -> Option<String> {
    docker(&[
        "image",
        "inspect",
        "--format",
        &format!("{{{{ index .Config.Labels \"{RECIPE_LABEL}\" }}}}"),
        image,
    ])
    .ok()
    .map(|s| s.trim().to_string())
}

fn image_id(image: &str) -> Option<String> {
    docker(&["image", "inspect", "--format", "{{.Id}}", image])
        .ok()
        .map(|s| s.trim().to_string())
}

/// Removes the image `tag` named before a rebuild, so rebuilds leave no untagged images
/// behind (in vain, harmlessly, while a container or a child image still uses it).
fn remove_if_replaced(replaced: Option<String>, tag: &str) {
    if let Some(old) = replaced {
        if image_id(tag).as_deref() != Some(old.as_str()) {
            let _ = docker(&["image", "rm", &old]);
        }
    }
}

/// Serialises image builds between processes (tests run in parallel): one file lock under
/// the temp directory, released when dropped.
struct BuildLock(std::fs::File);

impl BuildLock {
    fn acquire() -> Result<BuildLock, String> {
        let dir = scratch();
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = dir.join("images.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        file.lock()
            .map_err(|e| format!("cannot lock {}: {e}", path.display()))?;
        Ok(BuildLock(file))
    }
}

impl Drop for BuildLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// Builds the distroless stand-in with infra/rehearsal/connector-base.sh, unless an image
/// from the same recipe (the script, the host's glibc, `extra_ca`) is there. `extra_ca`: a
/// PEM file appended to the image's CA bundle (the rehearsal's test CA). Returns the tag.
pub fn ensure_base_image(extra_ca: Option<&Path>) -> Result<String, String> {
    let _lock = BuildLock::acquire()?;
    ensure_base_image_locked(extra_ca)
}

fn ensure_base_image_locked(extra_ca: Option<&Path>) -> Result<String, String> {
    let script = workspace().join("infra/rehearsal/connector-base.sh");
    let text = std::fs::read(&script).map_err(|e| format!("{}: {e}", script.display()))?;
    let glibc =
        crate::run(Command::new("ldd").arg("--version"), "ldd --version").unwrap_or_default();
    let glibc = glibc.lines().next().unwrap_or_default().to_string();
    let ca = read_ca(extra_ca)?;
    let recipe = &sha256_hex(&[&text, glibc.as_bytes(), ca.as_deref().unwrap_or_default()])[..16];
    let tag = format!("{BASE_IMAGE}:nonroot{}", ca_suffix(ca.as_deref()));
    if image_label(&tag).as_deref() == Some(recipe) {
        return Ok(tag);
    }
    eprintln!("rehearsal: building {tag} (infra/rehearsal/connector-base.sh)");
    let mut cmd = Command::new("bash");
    cmd.arg(&script)
        .arg(&tag)
        .env("BILLWIRE_REHEARSAL_RECIPE", recipe);
    if let Some(path) = extra_ca {
        cmd.arg(path);
    }
    let replaced = image_id(&tag);
    crate::run(&mut cmd, "infra/rehearsal/connector-base.sh")?;
    remove_if_replaced(replaced, &tag);
    Ok(tag)
}

/// The binary the rehearsal puts in the image: the one built here.
pub fn connector_binary() -> Result<PathBuf, String> {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace().join(PathBuf::from(dir)),
        _ => workspace().join("target"),
    };
    let binary = target.join("debug").join(BINARY);
    if !binary.is_file() {
        return Err(format!(
            "{} is missing: build it first with `cargo build -p connector` \
             (the rehearsal runs the binary built here; it does not build it)",
            binary.display()
        ));
    }
    Ok(binary)
}

/// The connector's image: infra/connector.Dockerfile's runtime stage replayed on the
/// stand-in base with the binary built here (see [`runtime_stage_image`]). Rebuilt only
/// when something it is made of changed; returns the tag.
pub fn connector_image(extra_ca: Option<&Path>) -> Result<String, String> {
    let path = workspace().join("infra/connector.Dockerfile");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let ca = read_ca(extra_ca)?;
    let tag = format!("{CONNECTOR_IMAGE}:rehearsal{}", ca_suffix(ca.as_deref()));
    runtime_stage_image(&text, &tag, extra_ca)
}

/// Builds `tag` from the last stage of the Dockerfile `dockerfile` (its text), replayed
/// verbatim except for two substitutions:
/// - its `FROM` becomes the local stand-in ([`ensure_base_image`] with `extra_ca`);
/// - a `COPY --from=<earlier stage> .../connector <dest>` copies the binary built here
///   ([`connector_binary`]) instead.
///
/// Every other instruction (COPY from the build context, HEALTHCHECK, STOPSIGNAL, VOLUME,
/// USER, ENTRYPOINT...) is kept as written. The build context is assembled in a temporary
/// directory outside the checkout from exactly the files the stage copies, and built with
/// Docker's legacy builder (nothing is pulled: the base is local). The image carries the
/// hash of the replayed Dockerfile, the base image and every copied file; when `tag`
/// already has it, nothing is built.
pub fn runtime_stage_image(
    dockerfile: &str,
    tag: &str,
    extra_ca: Option<&Path>,
) -> Result<String, String> {
    let binary = connector_binary()?;
    let root = workspace();
    let stage = runtime_stage(dockerfile)?;
    let _lock = BuildLock::acquire()?;
    let base = ensure_base_image_locked(extra_ca)?;
    let base_id = image_id(&base).ok_or_else(|| format!("{base} was not built"))?;
    let replay = replay(&stage, &stage_names(dockerfile), &base, &binary, &root)?;

    let mut digest = Sha256::new();
    digest.update(replay.dockerfile.as_bytes());
    digest.update(base_id.trim().as_bytes());
    for (source, rel) in &replay.files {
        digest.update(rel.to_string_lossy().as_bytes());
        hash_tree(&mut digest, source)?;
    }
    let recipe = hex::encode(&digest.finalize()[..12]);
    if image_label(tag).as_deref() == Some(recipe.as_str()) {
        return Ok(tag.to_string());
    }

    let context = TempDir::new("build")?;
    for (source, rel) in &replay.files {
        place_tree(source, &context.0.join(rel))?;
    }
    let file = context.0.join("Dockerfile");
    std::fs::write(&file, &replay.dockerfile).map_err(|e| format!("{}: {e}", file.display()))?;
    eprintln!("rehearsal: building {tag} from the runtime stage of the Dockerfile");
    let replaced = image_id(tag);
    crate::run(
        Command::new("docker")
            .env("DOCKER_BUILDKIT", "0")
            .args(["build", "--quiet", "--rm", "--force-rm", "--label"])
            .arg(format!("{RECIPE_LABEL}={recipe}"))
            .args(["--tag", tag, "--file"])
            .arg(&file)
            .arg(&context.0),
        &format!("docker build -t {tag} (the runtime stage replayed)"),
    )?;
    remove_if_replaced(replaced, tag);
    Ok(tag.to_string())
}

/// One instruction of a Dockerfile: its keyword (upper case) and its arguments, with line
/// continuations joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    pub keyword: String,
    pub args: String,
}

impl std::fmt::Display for Instruction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.keyword, self.args)
    }
}

/// The instructions of a Dockerfile: comment lines dropped (also inside a continued
/// instruction, as Docker does), `\` continuations joined.
pub fn instructions(text: &str) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        // Comment lines go, also inside a continued instruction; so do empty lines.
        if trimmed.starts_with('#') || trimmed.is_empty() {
            continue;
        }
        let body = line.trim_end();
        match body.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part.trim());
                current.push(' ');
            }
            None => {
                current.push_str(body.trim());
                push_instruction(&mut out, &current);
                current.clear();
            }
        }
    }
    if !current.trim().is_empty() {
        push_instruction(&mut out, &current);
    }
    out
}

fn push_instruction(out: &mut Vec<Instruction>, text: &str) {
    let text = text.trim();
    let (keyword, args) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    out.push(Instruction {
        keyword: keyword.to_ascii_uppercase(),
        args: args.split_whitespace().collect::<Vec<_>>().join(" "),
    });
}

/// The last stage of a Dockerfile, from its `FROM`.
pub fn runtime_stage(text: &str) -> Result<Vec<Instruction>, String> {
    let all = instructions(text);
    let start = all
        .iter()
        .rposition(|i| i.keyword == "FROM")
        .ok_or("the Dockerfile has no FROM")?;
    Ok(all[start..].to_vec())
}

/// The names of a Dockerfile's stages (`FROM ... AS <name>`).
fn stage_names(text: &str) -> Vec<String> {
    instructions(text)
        .iter()
        .filter(|i| i.keyword == "FROM")
        .filter_map(|i| {
            let words: Vec<&str> = i.args.split_whitespace().collect();
            words
                .iter()
                .position(|w| w.eq_ignore_ascii_case("as"))
                .and_then(|p| words.get(p + 1))
                .map(|s| s.to_string())
        })
        .collect()
}

/// The runtime stage rewritten for the local build, and the files its context needs:
/// (source on this machine, path in the context).
struct Replay {
    dockerfile: String,
    files: Vec<(PathBuf, PathBuf)>,
}

/// Where the binary goes in the build context (a name no repository path can have).
const CONTEXT_BINARY: &str = ".rehearsal/connector";

/// Rewrites the runtime stage for the local build (see [`runtime_stage_image`]); `stages`:
/// the Dockerfile's stage names, which a `COPY --from` must name.
fn replay(
    stage: &[Instruction],
    stages: &[String],
    base: &str,
    binary: &Path,
    root: &Path,
) -> Result<Replay, String> {
    let mut lines = vec![format!(
        "# infra/connector.Dockerfile's runtime stage, replayed by infra/rehearsal on {base}."
    )];
    let mut files: Vec<(PathBuf, PathBuf)> = Vec::new();
    for (n, instruction) in stage.iter().enumerate() {
        match instruction.keyword.as_str() {
            "FROM" if n == 0 => {
                let words: Vec<&str> = instruction.args.split_whitespace().collect();
                let name = words
                    .iter()
                    .position(|w| w.eq_ignore_ascii_case("as"))
                    .and_then(|p| words.get(p + 1));
                lines.push(match name {
                    Some(name) => format!("FROM {base} AS {name}"),
                    None => format!("FROM {base}"),
                });
            }
            "COPY" | "ADD" => {
                let (flags, sources, dest) = copy_args(&instruction.args)?;
                let from = flags
                    .iter()
                    .find_map(|f| f.strip_prefix("--from="))
                    .map(str::to_string);
                let kept: Vec<&String> =
                    flags.iter().filter(|f| !f.starts_with("--from=")).collect();
                let mut rewritten: Vec<String> = Vec::new();
                match from {
                    Some(stage_name) => {
                        if !stages.contains(&stage_name) {
                            return Err(format!(
                                "cannot replay `{instruction}`: {stage_name} is not a stage of the Dockerfile"
                            ));
                        }
                        let is_binary = sources.len() == 1
                            && Path::new(&sources[0]).file_name().and_then(|f| f.to_str())
                                == Some(BINARY);
                        if !is_binary {
                            return Err(format!(
                                "cannot replay `{instruction}`: from stage {stage_name}, only the \
                                 connector binary is replaced by the one built here"
                            ));
                        }
                        files.push((binary.to_path_buf(), PathBuf::from(CONTEXT_BINARY)));
                        rewritten.push(CONTEXT_BINARY.to_string());
                    }
                    None => {
                        for source in &sources {
                            if source.contains(['*', '?', '[']) || source.contains("://") {
                                return Err(format!(
                                    "cannot replay `{instruction}`: wildcards and URLs are not supported"
                                ));
                            }
                            let rel = Path::new(source.trim_start_matches("./"));
                            if rel.is_absolute()
                                || rel
                                    .components()
                                    .any(|c| c == std::path::Component::ParentDir)
                            {
                                return Err(format!(
                                    "cannot replay `{instruction}`: {source} is outside the build context"
                                ));
                            }
                            let on_disk = root.join(rel);
                            if !on_disk.exists() {
                                return Err(format!(
                                    "cannot replay `{instruction}`: {} does not exist",
                                    on_disk.display()
                                ));
                            }
                            files.push((on_disk, rel.to_path_buf()));
                            rewritten.push(source.clone());
                        }
                    }
                }
                let mut line = instruction.keyword.clone();
                for flag in kept {
                    line.push(' ');
                    line.push_str(flag);
                }
                for source in rewritten {
                    line.push(' ');
                    line.push_str(&source);
                }
                line.push(' ');
                line.push_str(&dest);
                lines.push(line);
            }
            _ => lines.push(instruction.to_string()),
        }
    }
    lines.push(String::new());
    Ok(Replay {
        dockerfile: lines.join("\n"),
        files,
    })
}

/// A COPY/ADD's flags (`--from=...`, `--chown=...`), sources and destination, in either
/// form (`COPY a b dest` or `COPY ["a", "b", "dest"]`).
fn copy_args(args: &str) -> Result<(Vec<String>, Vec<String>, String), String> {
    let mut flags = Vec::new();
    let mut rest = args.trim();
    while rest.starts_with("--") {
        let (flag, tail) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        flags.push(flag.to_string());
        rest = tail.trim_start();
    }
    let mut paths: Vec<String> = if rest.starts_with('[') {
        serde_json::from_str(rest).map_err(|e| format!("COPY {args}: {e}"))?
    } else {
        rest.split_whitespace().map(str::to_string).collect()
    };
    if paths.len() < 2 {
        return Err(format!("COPY {args}: needs a source and a destination"));
    }
    let dest = paths.pop().unwrap_or_default();
    Ok((flags, paths, dest))
}

/// Adds a file's, or a directory tree's, paths and contents to `digest`.
fn hash_tree(digest: &mut Sha256, path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for entry in entries {
            digest.update(entry.file_name().unwrap_or_default().as_encoded_bytes());
            hash_tree(digest, &entry)?;
        }
        return Ok(());
    }
    use std::os::unix::fs::PermissionsExt;
    digest.update(meta.permissions().mode().to_le_bytes());
    let mut file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        digest.update(&buf[..n]);
    }
    Ok(())
}

/// Puts a file or directory tree at `to`: hard links where possible (the binary is large),
/// copies otherwise.
fn place_tree(from: &Path, to: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(from).map_err(|e| format!("{}: {e}", from.display()))?;
    if meta.is_dir() {
        std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
        for entry in std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))? {
            let entry = entry.map_err(|e| format!("{}: {e}", from.display()))?;
            place_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
        return Ok(());
    }
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    if std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to)
            .map_err(|e| format!("{} -> {}: {e}", from.display(), to.display()))?;
    }
    Ok(())
}

/// A directory under the rehearsal's scratch directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(kind: &str) -> Result<TempDir, String> {
        let dir = scratch().join(format!(
            "{kind}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------------------
// Tasks
// ---------------------------------------------------------------------------------------

/// One container of a task definition, with what ECS supplies at run time.
#[derive(Debug, Clone, Default)]
pub struct TaskSpec {
    /// The container name's prefix (unique per test); a random suffix is added.
    pub name: String,
    /// The image to run: the local tag standing in for the definition's `Image` (which
    /// names the ECR repository), e.g. [`connector_image`]'s.
    pub image: String,
    /// One `ContainerDefinitions` entry as in template.yaml, intrinsics already resolved to
    /// plain strings, numbers and booleans.
    pub container: Value,
    /// The task definition's `Volumes` array.
    pub volumes: Value,
    /// The container's `Secrets`, resolved to their values: ECS reads them with the
    /// execution role before the container starts and passes them as variables. Every
    /// declared name needs a value here, and nothing else may be given.
    pub secrets: Vec<(String, String)>,
    /// `AWS_*` variables standing in for the task role's credentials (on Fargate the SDK
    /// fetches them from `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`).
    pub credentials: Vec<(String, String)>,
    /// Extra `/etc/hosts` entries (`--add-host`), e.g. the host's bridge address for
    /// `samlocal::HOST_ALIAS`.
    pub add_hosts: Vec<(String, IpAddr)>,
    /// The Region the task runs in: ECS sets `AWS_REGION` and `AWS_DEFAULT_REGION` to it
    /// (empty: neither is set).
    pub region: String,
    /// The task definition's `Cpu` ("256" or "0.25 vCPU"): Fargate's hard limit for the
    /// whole task.
    pub task_cpu: Option<String>,
    /// The task definition's `Memory` ("512" or "0.5 GB"): Fargate's hard limit for the
    /// whole task.
    pub task_memory: Option<String>,
}

/// The container's health as ECS reports it (`healthStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthStatus {
    /// Being evaluated (no success yet, fewer than `Retries` counted failures), or no
    /// health check defined.
    Unknown,
    Healthy,
    Unhealthy,
}

/// One run of the health check command.
#[derive(Debug, Clone)]
pub struct Probe {
    /// When it started, after the container's start.
    pub after: Duration,
    /// Its exit code (`None`: it did not finish within `Timeout`).
    pub exit_code: Option<i32>,
    /// What it wrote (stdout and stderr, in order, at most 4 KiB as Docker keeps).
    pub output: String,
    /// Whether a failure counted toward `Retries` (failures within `StartPeriod`, before a
    /// first success, do not).
    pub counted: bool,
}

/// How a mount point's volume was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mounted {
    /// The image declares a VOLUME at the container path: a fresh Docker volume, which
    /// Docker fills from the image's directory, contents, owner and mode, as ECS fills the
    /// bind volume.
    ImageVolume {
        container_path: String,
        volume: String,
    },
    /// No VOLUME there: a fresh, empty host directory owned by root with mode 0755,
    /// bind-mounted, as Fargate creates a bind volume.
    EmptyDirectory {
        container_path: String,
        host: PathBuf,
    },
}

/// The container definition's `HealthCheck`.
#[derive(Debug, Clone)]
struct HealthCheck {
    /// The command to `docker exec`: exec form as given, or `/bin/sh -c <command>`.
    argv: Vec<String>,
    interval: Duration,
    timeout: Duration,
    retries: u32,
    start_period: Duration,
}

#[derive(Debug, Default)]
struct MonitorState {
    status: Option<HealthStatus>,
    failing_streak: u32,
    probes: Vec<Probe>,
    /// Why the container is no longer running, once it is not.
    exited: Option<String>,
    stop: bool,
}

#[derive(Default)]
struct Monitor {
    state: Mutex<MonitorState>,
    wake: Condvar,
}

impl Monitor {
    fn lock(&self) -> MutexGuard<'_, MonitorState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stop(&self) {
        self.lock().stop = true;
        self.wake.notify_all();
    }
}

/// A running container of a task, started by [`Task::start`]. Dropping it removes the
/// container and every volume and directory it created.
pub struct Task {
    name: String,
    stop_timeout: u64,
    health_check: Option<HealthCheck>,
    monitor: Arc<Monitor>,
    mounts: Vec<Mounted>,
    /// Host directories to remove (the bind volumes' parent).
    dir: Option<PathBuf>,
}

fn field<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| !x.is_null())
}

/// A number given as a number or a numeric string (CloudFormation accepts both).
fn as_f64(v: &Value, what: &str) -> Result<f64, String> {
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| format!("{what}: {v}")),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("{what}: not a number: {s}")),
        _ => Err(format!("{what}: not a number: {v}")),
    }
}

fn as_bool(v: &Value, what: &str) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(format!("{what}: not a boolean: {v}")),
    }
}

fn as_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn string_list(v: &Value, what: &str) -> Result<Vec<String>, String> {
    v.as_array()
        .ok_or_else(|| format!("{what} is not a list"))?
        .iter()
        .map(|x| {
            x.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("{what}: {x} is not a string"))
        })
        .collect()
}

/// Seconds with a default and ECS's allowed range.
fn seconds(
    v: &Value,
    key: &str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, String> {
    let Some(x) = field(v, key) else {
        return Ok(default);
    };
    let n = as_f64(x, key)?;
    if n.fract() != 0.0 || n < *range.start() as f64 || n > *range.end() as f64 {
        return Err(format!(
            "{key} = {n}: ECS accepts whole numbers from {} to {}",
            range.start(),
            range.end()
        ));
    }
    Ok(n as u64)
}

/// The container definition's keys the rehearsal implements, and those it may ignore
/// because they change nothing it checks. Any other key is refused: a rehearsal that
/// silently skips a setting would pass where Fargate does not.
const IMPLEMENTED: &[&str] = &[
    "Name",
    "Essential",
    "ReadonlyRootFilesystem",
    "MountPoints",
    "HealthCheck",
    "StopTimeout",
    "Environment",
    "Secrets",
    "Cpu",
    "Memory",
    "MemoryReservation",
    "User",
    "EntryPoint",
    "Command",
    "WorkingDirectory",
];
/// `Image`: the spec's local tag runs instead. `LogConfiguration`: awslogs ships stdout and
/// stderr, which [`Task::logs`] reads. `PortMappings`: with awsvpc the container listens on
/// the task's own interface; nothing dials in here.
const IGNORED: &[&str] = &["Image", "LogConfiguration", "PortMappings"];

/// CPU units from "256", 256 or "0.25 vCPU".
fn cpu_units(v: &str) -> Result<f64, String> {
    let t = v.trim().to_ascii_lowercase();
    match t.strip_suffix("vcpu") {
        Some(n) => n
            .trim()
            .parse::<f64>()
            .map(|n| n * 1024.0)
            .map_err(|_| format!("Cpu: {v}")),
        None => t.parse::<f64>().map_err(|_| format!("Cpu: {v}")),
    }
}

/// MiB from "512", 512 or "0.5 GB".
fn memory_mib(v: &str) -> Result<f64, String> {
    let t = v.trim().to_ascii_lowercase();
    match t.strip_suffix("gb") {
        Some(n) => n
            .trim()
            .parse::<f64>()
            .map(|n| n * 1024.0)
            .map_err(|_| format!("Memory: {v}")),
        None => t.parse::<f64>().map_err(|_| format!("Memory: {v}")),
    }
}

fn process_alive(pid: &str) -> bool {
    !pid.is_empty() && Path::new("/proc").join(pid.trim()).exists()
}

/// Removes the containers, volumes and directories of rehearsal processes that are gone
/// (killed before their [`Task`]s were dropped).
pub(crate) fn remove_leftovers() {
    let format = format!("{{{{.ID}}}} {{{{.Label \"{OWNER_LABEL}\"}}}}");
    if let Ok(list) = docker(&[
        "ps",
        "--all",
        "--filter",
        &format!("label={OWNER_LABEL}"),
        "--format",
        &format,
    ]) {
        for line in list.lines() {
            if let Some((id, pid)) = line.split_once(' ') {
                if !process_alive(pid) {
                    let _ = docker(&["rm", "--force", "--volumes", id]);
                }
            }
        }
    }
    let format = format!("{{{{.Name}}}} {{{{.Label \"{OWNER_LABEL}\"}}}}");
    if let Ok(list) = docker(&[
        "volume",
        "ls",
        "--filter",
        &format!("label={OWNER_LABEL}"),
        "--format",
        &format,
    ]) {
        for line in list.lines() {
            if let Some((name, pid)) = line.split_once(' ') {
                if !process_alive(pid) {
                    let _ = docker(&["volume", "rm", "--force", name]);
                }
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(scratch().join("tasks")) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let pid = name.split('-').next().unwrap_or_default();
            if !process_alive(pid) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

fn image_volumes(image: &str) -> Result<Vec<String>, String> {
    let text = docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Volumes}}",
        image,
    ])?;
    let volumes: Value = serde_json::from_str(text.trim()).map_err(|e| format!("{image}: {e}"))?;
    Ok(volumes
        .as_object()
        .map(|m| m.keys().map(|k| normalise(k)).collect())
        .unwrap_or_default())
}

fn normalise(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".into()
    } else {
        trimmed.into()
    }
}

fn docker_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Names the Docker CLI itself reads from its environment: passed with their value on the
/// command line instead (every other variable is passed by name, its value only in the
/// CLI's environment, so secrets stay out of the process list).
fn affects_docker_cli(name: &str) -> bool {
    matches!(name, "PATH" | "HOME" | "TMPDIR") || name.starts_with("DOCKER_")
}

impl Task {
    /// Starts the container as Fargate starts this container definition:
    ///
    /// - **Root filesystem**: `ReadonlyRootFilesystem: true` is `--read-only`.
    /// - **User**: the image's own (`USER` in the Dockerfile) unless the definition sets
    ///   `User`.
    /// - **Environment**: exactly what ECS gives the container: `Environment`, the resolved
    ///   `Secrets`, the stand-in task role credentials, and what ECS itself sets
    ///   (`AWS_EXECUTION_ENV=AWS_ECS_FARGATE`, `AWS_REGION`, `AWS_DEFAULT_REGION`; the
    ///   metadata and credentials endpoints are not rehearsed). Nothing comes from this
    ///   machine's environment. The image's `ENV` applies, as everywhere.
    /// - **Limits**: the task's `Cpu` is a hard limit (`--cpus` = units / 1024), its
    ///   `Memory` a hard memory limit together with the container's `Memory` (the smaller
    ///   wins); the container's `Cpu` is a relative share (`--cpu-shares`) and
    ///   `MemoryReservation` a soft limit.
    /// - **Stopping**: `StopTimeout` (Fargate's default 30 s, at most 120) is the time
    ///   between the stop signal (the image's STOPSIGNAL) and SIGKILL.
    /// - **Volumes**: each `MountPoints` entry's volume must be a Fargate bind volume (a
    ///   `Volumes` entry with only a `Name`; host paths, Docker volumes and EFS are
    ///   refused). Fargate creates it empty, owned by root with mode 0755, unless the image
    ///   declares a VOLUME at exactly that `ContainerPath`: then ECS copies the image's
    ///   directory into it, contents and permissions. The first is a fresh host directory
    ///   bind-mounted here, the second a fresh Docker volume (which Docker fills from the
    ///   image the same way). `ReadOnly` mounts read-only. See [`Task::mounts`].
    /// - **Health check**: the image's HEALTHCHECK is disabled (`--no-healthcheck`): the
    ///   definition's `HealthCheck` replaces it, and ECS ignores an image's own. The
    ///   definition's check is run by this process as ECS runs it ([`Task::wait_healthy`]).
    /// - **Network**: Docker's default bridge network, plus `add_hosts` in /etc/hosts.
    pub fn start(spec: TaskSpec) -> Result<Task, String> {
        remove_leftovers();
        let c = &spec.container;
        if !c.is_object() {
            return Err("the container definition is not an object".into());
        }
        if let Some(obj) = c.as_object() {
            for key in obj.keys() {
                if !IMPLEMENTED.contains(&key.as_str()) && !IGNORED.contains(&key.as_str()) {
                    return Err(format!(
                        "the container definition sets {key}, which the rehearsal does not implement"
                    ));
                }
            }
        }
        let pid = std::process::id().to_string();
        let name = docker_name(&format!(
            "{}-{}",
            spec.name,
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ));
        let stop_timeout = seconds(c, "StopTimeout", 30, 2..=120)?;
        let health_check = field(c, "HealthCheck")
            .map(parse_health_check)
            .transpose()?;

        let mut task = Task {
            name: name.clone(),
            stop_timeout,
            health_check,
            monitor: Arc::new(Monitor::default()),
            mounts: Vec::new(),
            dir: None,
        };

        let mut cmd = Command::new("docker");
        cmd.args(["run", "--detach", "--name", &name])
            .args(["--label", &format!("{OWNER_LABEL}={pid}")])
            .arg("--no-healthcheck")
            .args(["--stop-timeout", &stop_timeout.to_string()]);
        if field(c, "ReadonlyRootFilesystem")
            .map(|v| as_bool(v, "ReadonlyRootFilesystem"))
            .transpose()?
            .unwrap_or(false)
        {
            cmd.arg("--read-only");
        }
        if let Some(user) = field(c, "User") {
            cmd.args(["--user", &as_string(user)]);
        }
        if let Some(dir) = field(c, "WorkingDirectory") {
            cmd.args(["--workdir", &as_string(dir)]);
        }

        // Limits.
        if let Some(cpu) = &spec.task_cpu {
            cmd.args(["--cpus", &format!("{:.3}", cpu_units(cpu)? / 1024.0)]);
        }
        if let Some(shares) = field(c, "Cpu") {
            let shares = as_f64(shares, "Cpu")?;
            if shares > 0.0 {
                cmd.args(["--cpu-shares", &format!("{}", shares.max(2.0) as u64)]);
            }
        }
        let hard = [
            spec.task_memory.as_deref().map(memory_mib).transpose()?,
            field(c, "Memory")
                .map(|v| as_f64(v, "Memory"))
                .transpose()?,
        ]
        .into_iter()
        .flatten()
        .fold(None::<f64>, |a, b| Some(a.map_or(b, |a| a.min(b))));
        if let Some(mib) = hard {
            cmd.args(["--memory", &format!("{}m", mib as u64)]);
        }
        if let Some(soft) = field(c, "MemoryReservation") {
            cmd.args([
                "--memory-reservation",
                &format!("{}m", as_f64(soft, "MemoryReservation")? as u64),
            ]);
        }

        // Environment: nothing from this machine.
        let mut env: Vec<(String, String)> =
            vec![("AWS_EXECUTION_ENV".into(), "AWS_ECS_FARGATE".into())];
        if !spec.region.is_empty() {
            env.push(("AWS_REGION".into(), spec.region.clone()));
            env.push(("AWS_DEFAULT_REGION".into(), spec.region.clone()));
        }
        if let Some(list) = field(c, "Environment") {
            for entry in list.as_array().ok_or("Environment is not a list")? {
                let key = entry
                    .get("Name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("Environment entry without a Name: {entry}"))?;
                let value = entry.get("Value").map(as_string).unwrap_or_default();
                env.push((key.to_string(), value));
            }
        }
        let declared: Vec<String> = match field(c, "Secrets") {
            Some(list) => list
                .as_array()
                .ok_or("Secrets is not a list")?
                .iter()
                .map(|s| {
                    s.get("Name")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .ok_or_else(|| format!("Secrets entry without a Name: {s}"))
                })
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        for name in &declared {
            let value = spec
                .secrets
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| format!("the secret {name} has no value in the TaskSpec"))?;
            env.push((name.clone(), value));
        }
        if let Some((extra, _)) = spec.secrets.iter().find(|(k, _)| !declared.contains(k)) {
            return Err(format!(
                "the TaskSpec gives the secret {extra}, which the container definition does not declare"
            ));
        }
        env.extend(spec.credentials.iter().cloned());
        for (key, value) in &env {
            if affects_docker_cli(key) {
                cmd.args(["--env", &format!("{key}={value}")]);
            } else {
                cmd.args(["--env", key]).env(key, value);
            }
        }

        for (host, ip) in &spec.add_hosts {
            cmd.args(["--add-host", &format!("{host}:{ip}")]);
        }

        // Volumes, as Fargate creates them.
        if let Some(points) = field(c, "MountPoints") {
            let declared_volumes = image_volumes(&spec.image)?;
            let volumes = spec.volumes.as_array().cloned().unwrap_or_default();
            for point in points.as_array().ok_or("MountPoints is not a list")? {
                let source = point
                    .get("SourceVolume")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("a mount point without SourceVolume: {point}"))?;
                let path = point
                    .get("ContainerPath")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("a mount point without ContainerPath: {point}"))?;
                if !path.starts_with('/') {
                    return Err(format!("ContainerPath {path} is not absolute"));
                }
                let read_only = field(point, "ReadOnly")
                    .map(|v| as_bool(v, "ReadOnly"))
                    .transpose()?
                    .unwrap_or(false);
                let volume = volumes
                    .iter()
                    .find(|v| v.get("Name").and_then(Value::as_str) == Some(source))
                    .ok_or_else(|| format!("the task defines no volume named {source}"))?;
                if let Some(obj) = volume.as_object() {
                    if let Some(other) = obj.keys().find(|k| k.as_str() != "Name") {
                        return Err(format!(
                            "volume {source} sets {other}: only Fargate bind volumes (a Name alone) are rehearsed"
                        ));
                    }
                }
                let path = normalise(path);
                if declared_volumes.contains(&path) {
                    let volume_name = docker_name(&format!("{name}-{source}"));
                    docker(&[
                        "volume",
                        "create",
                        "--label",
                        &format!("{OWNER_LABEL}={pid}"),
                        &volume_name,
                    ])?;
                    let mut mount = format!("type=volume,src={volume_name},dst={path}");
                    if read_only {
                        mount.push_str(",readonly");
                    }
                    cmd.args(["--mount", &mount]);
                    task.mounts.push(Mounted::ImageVolume {
                        container_path: path,
                        volume: volume_name,
                    });
                } else {
                    let parent = scratch().join("tasks").join(format!("{pid}-{name}"));
                    task.dir = Some(parent.clone());
                    let host = parent.join(docker_name(source));
                    empty_root_directory(&host)?;
                    cmd.args([
                        "--volume",
                        &format!(
                            "{}:{path}{}",
                            host.display(),
                            if read_only { ":ro" } else { "" }
                        ),
                    ]);
                    task.mounts.push(Mounted::EmptyDirectory {
                        container_path: path,
                        host,
                    });
                }
            }
        }

        if let Some(entry) = field(c, "EntryPoint") {
            let entry = string_list(entry, "EntryPoint")?;
            cmd.arg("--entrypoint")
                .arg(entry.first().cloned().unwrap_or_default());
            cmd.arg(&spec.image);
            cmd.args(&entry[1.min(entry.len())..]);
        } else {
            cmd.arg(&spec.image);
        }
        if let Some(command) = field(c, "Command") {
            cmd.args(string_list(command, "Command")?);
        }

        crate::run(&mut cmd, &format!("docker run {} ({})", spec.image, name))?;
        let started = Instant::now();
        // A directory Docker created for us (a non-root run) must still be root's, 0755.
        for mount in &task.mounts {
            if let Mounted::EmptyDirectory { host, .. } = mount {
                check_root_0755(host)?;
            }
        }
        if let Some(check) = task.health_check.clone() {
            let (monitor, name) = (task.monitor.clone(), name.clone());
            std::thread::Builder::new()
                .name(format!("health-{name}"))
                .spawn(move || watch(&name, &check, started, &monitor))
                .map_err(|e| format!("cannot start the health monitor: {e}"))?;
        }
        Ok(task)
    }

    /// The container's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How each mount point's volume was made.
    pub fn mounts(&self) -> &[Mounted] {
        &self.mounts
    }

    /// The health status ECS would report now.
    pub fn health(&self) -> HealthStatus {
        if self.health_check.is_none() {
            return HealthStatus::Unknown;
        }
        self.monitor.lock().status.unwrap_or(HealthStatus::Unknown)
    }

    /// Every health check run so far, oldest first.
    pub fn probes(&self) -> Vec<Probe> {
        self.monitor.lock().probes.clone()
    }

    /// Waits until the health check, run as ECS runs the definition's `HealthCheck`, makes
    /// the container HEALTHY: Ok. Err when it becomes UNHEALTHY (with the last checks'
    /// output and the container's log tail), when the container exits (an essential
    /// container's exit stops the task), when there is no health check (ECS reports
    /// UNKNOWN), or when `timeout` passes with the status still UNKNOWN.
    ///
    /// What ECS does, and this monitor with it (Docker's health check semantics, which
    /// ECS's container `HealthCheck` maps to): the first check runs `Interval` seconds
    /// after the container starts, each next one `Interval` after the previous ended. A
    /// check passes when its command exits 0 within `Timeout`; a non-zero exit, or running
    /// longer, is a failure. `CMD` runs the command directly (`docker exec`), `CMD-SHELL`
    /// through `/bin/sh -c`, which an image without a shell (distroless) fails, as there.
    /// One success makes the container HEALTHY. Failures count toward `Retries` unless
    /// they start within `StartPeriod` before any success; `Retries` consecutive counted
    /// failures make it UNHEALTHY; a success resets the count. Until either it is UNKNOWN.
    pub async fn wait_healthy(&self, timeout: Duration) -> Result<(), String> {
        let Some(check) = &self.health_check else {
            return Err(format!(
                "{}: the container definition has no HealthCheck; ECS reports UNKNOWN",
                self.name
            ));
        };
        let monitor = self.monitor.clone();
        devkit::eventually(timeout, Duration::from_millis(200), || {
            let state = monitor.lock();
            state.status.is_some() || state.exited.is_some()
        })
        .await;
        let (status, exited, probes) = {
            let state = self.monitor.lock();
            (state.status, state.exited.clone(), state.probes.clone())
        };
        let report = |verdict: String| {
            let mut text = format!(
                "{}: {verdict}\nhealth check: {:?} every {:?}, timeout {:?}, {} retries, start period {:?}\n",
                self.name, check.argv, check.interval, check.timeout, check.retries, check.start_period
            );
            for probe in probes.iter().rev().take(5).rev() {
                text.push_str(&format!(
                    "  check at {:.1}s: {}{}: {}\n",
                    probe.after.as_secs_f64(),
                    probe
                        .exit_code
                        .map_or("timed out".to_string(), |c| format!("exit {c}")),
                    if probe.counted { "" } else { " (not counted)" },
                    probe.output.trim()
                ));
            }
            text.push_str("container log (tail):\n");
            text.push_str(&self.log_tail(40));
            text
        };
        match (status, exited) {
            (Some(HealthStatus::Healthy), _) => Ok(()),
            (Some(HealthStatus::Unhealthy), _) => Err(report("UNHEALTHY".into())),
            (_, Some(why)) => Err(report(format!(
                "the container stopped before becoming healthy ({why}); ECS stops the task"
            ))),
            _ => Err(report(format!(
                "still UNKNOWN after {timeout:?} (no passing check, fewer than {} counted failures)",
                check.retries
            ))),
        }
    }

    /// The container's output so far (stdout and stderr, interleaved as written): what the
    /// awslogs driver would ship.
    pub fn logs(&self) -> String {
        logs(&self.name, None)
    }

    fn log_tail(&self, lines: usize) -> String {
        logs(&self.name, Some(lines))
    }

    /// Stops the container as ECS stops a task: the image's STOPSIGNAL, then SIGKILL after
    /// `StopTimeout`. Returns its exit code (137: it was killed).
    pub async fn stop(&mut self) -> Result<i64, String> {
        self.monitor.stop();
        let out = tokio::process::Command::new("docker")
            .args(["stop", "--time", &self.stop_timeout.to_string(), &self.name])
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| format!("cannot run docker stop: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "docker stop {} failed: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let code = docker(&["inspect", "--format", "{{.State.ExitCode}}", &self.name])?;
        code.trim()
            .parse()
            .map_err(|_| format!("{}: unexpected exit code {code:?}", self.name))
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        self.monitor.stop();
        let _ = docker(&["rm", "--force", "--volumes", &self.name]);
        for mount in &self.mounts {
            if let Mounted::ImageVolume { volume, .. } = mount {
                let _ = docker(&["volume", "rm", "--force", volume]);
            }
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn parse_health_check(v: &Value) -> Result<HealthCheck, String> {
    let command = string_list(
        field(v, "Command").ok_or("HealthCheck has no Command")?,
        "HealthCheck.Command",
    )?;
    let argv = match command.split_first() {
        Some((kind, rest)) if kind == "CMD" && !rest.is_empty() => rest.to_vec(),
        Some((kind, rest)) if kind == "CMD-SHELL" && !rest.is_empty() => {
            vec!["/bin/sh".into(), "-c".into(), rest.join(" ")]
        }
        _ => {
            return Err(format!(
            "HealthCheck.Command must start with CMD or CMD-SHELL and name a command: {command:?}"
        ))
        }
    };
    Ok(HealthCheck {
        argv,
        interval: Duration::from_secs(seconds(v, "Interval", 30, 5..=300)?),
        timeout: Duration::from_secs(seconds(v, "Timeout", 5, 2..=120)?),
        retries: seconds(v, "Retries", 3, 1..=10)? as u32,
        start_period: Duration::from_secs(seconds(v, "StartPeriod", 0, 0..=300)?),
    })
}

/// A fresh, empty directory owned by root with mode 0755, as Fargate creates a bind volume.
/// As root this process creates it; otherwise it is left for the Docker daemon, which
/// creates a missing bind source as root with mode 0755 (checked after the start).
fn empty_root_directory(host: &Path) -> Result<(), String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let parent = host.parent().ok_or("no parent directory")?;
    std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    let probe = parent
        .metadata()
        .map_err(|e| format!("{}: {e}", parent.display()))?;
    if probe.uid() != 0 {
        return Ok(());
    }
    std::fs::create_dir(host).map_err(|e| format!("{}: {e}", host.display()))?;
    std::fs::set_permissions(host, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("{}: {e}", host.display()))
}

fn check_root_0755(host: &Path) -> Result<(), String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = host
        .metadata()
        .map_err(|e| format!("{}: {e}", host.display()))?;
    let mode = meta.permissions().mode() & 0o7777;
    if meta.uid() != 0 || meta.gid() != 0 || mode != 0o755 {
        return Err(format!(
            "{} is {}:{} mode {mode:o}; a Fargate bind volume is root:root 0755",
            host.display(),
            meta.uid(),
            meta.gid()
        ));
    }
    Ok(())
}

fn logs(name: &str, tail: Option<usize>) -> String {
    let mut cmd = Command::new("docker");
    cmd.arg("logs");
    if let Some(n) = tail {
        cmd.args(["--tail", &n.to_string()]);
    }
    cmd.arg(name);
    combined_output(cmd, None)
        .map(|(_, text)| text)
        .unwrap_or_else(|e| format!("(no logs: {e})"))
}

/// Runs `cmd` with stdout and stderr into one pipe (in the order written): its exit code
/// (`None`: still running after `timeout`, then killed) and output.
fn combined_output(
    mut cmd: Command,
    timeout: Option<Duration>,
) -> Result<(Option<i32>, String), String> {
    let (mut reader, writer) = std::io::pipe().map_err(|e| format!("pipe: {e}"))?;
    let writer2 = writer.try_clone().map_err(|e| format!("pipe: {e}"))?;
    cmd.stdin(Stdio::null()).stdout(writer).stderr(writer2);
    let mut child = cmd.spawn().map_err(|e| format!("cannot run docker: {e}"))?;
    drop(cmd);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = reader.read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    let deadline = timeout.map(|t| Instant::now() + t);
    let code = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status.code().unwrap_or(-1)),
            Ok(None) => {}
            Err(e) => return Err(format!("wait: {e}")),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let buf = rx.recv_timeout(Duration::from_secs(5)).unwrap_or_default();
    Ok((code, String::from_utf8_lossy(&buf).into_owned()))
}

/// Why the container is not running, or `None` while it runs.
fn not_running(name: &str) -> Option<String> {
    match docker(&[
        "inspect",
        "--format",
        "{{.State.Running}} {{.State.ExitCode}} {{.State.OOMKilled}}",
        name,
    ]) {
        Ok(state) => {
            let words: Vec<&str> = state.split_whitespace().collect();
            match words.as_slice() {
                ["true", ..] => None,
                [_, code, "true"] => {
                    Some(format!("exit code {code}, killed for exceeding its memory"))
                }
                [_, code, ..] => Some(format!("exit code {code}")),
                _ => Some(format!("state {state:?}")),
            }
        }
        Err(e) => Some(e),
    }
}

/// The health monitor: runs the check on its schedule until told to stop or the
/// container is gone (see [`Task::wait_healthy`] for the rules).
fn watch(name: &str, check: &HealthCheck, started: Instant, monitor: &Monitor) {
    let mut next = started + check.interval;
    loop {
        {
            let mut state = monitor.lock();
            loop {
                if state.stop {
                    return;
                }
                let now = Instant::now();
                if now >= next {
                    break;
                }
                state = monitor
                    .wake
                    .wait_timeout(state, next - now)
                    .map(|(s, _)| s)
                    .unwrap_or_else(|p| p.into_inner().0);
            }
        }
        if let Some(why) = not_running(name) {
            monitor.lock().exited = Some(why);
            return;
        }
        let after = started.elapsed();
        let mut cmd = Command::new("docker");
        cmd.arg("exec").arg(name).args(&check.argv);
        let (exit_code, output) = match combined_output(cmd, Some(check.timeout)) {
            Ok((code, mut text)) => {
                if code.is_none() {
                    text.push_str(&format!(
                        "Health check exceeded timeout ({:?})",
                        check.timeout
                    ));
                }
                (code, truncate(text, 4096))
            }
            Err(e) => (Some(-1), e),
        };
        let mut state = monitor.lock();
        if state.stop {
            return;
        }
        let passed = exit_code == Some(0);
        let counted = if passed {
            state.failing_streak = 0;
            state.status = Some(HealthStatus::Healthy);
            false
        } else {
            // Before any success, failures that start within the start period do not count.
            let starting = state.status.is_none();
            let count = !(starting && after < check.start_period);
            if count {
                state.failing_streak += 1;
                if state.failing_streak >= check.retries {
                    state.status = Some(HealthStatus::Unhealthy);
                }
            }
            count
        };
        state.probes.push(Probe {
            after,
            exit_code,
            output,
            counted,
        });
        drop(state);
        next = Instant::now() + check.interval;
    }
}

fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCKERFILE: &str = r#"# comment
FROM --platform=$BUILDPLATFORM rust:1 AS build
RUN echo a; \
    # a comment inside
    echo b
COPY . .

# The runtime stage.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /connector /usr/local/bin/connector
COPY infra/certs/rds-ca-bundle.pem /opt/rds-ca-bundle.pem
VOLUME /tmp
HEALTHCHECK --interval=15s --timeout=5s \
  CMD ["/usr/local/bin/connector", "health"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/connector"]
"#;

    #[test]
    fn instructions_join_continuations_and_drop_comments() {
        let all = instructions(DOCKERFILE);
        assert_eq!(all[1].keyword, "RUN");
        assert_eq!(all[1].args, "echo a; echo b");
        assert_eq!(stage_names(DOCKERFILE), vec!["build".to_string()]);
        let stage = runtime_stage(DOCKERFILE).expect("stage");
        assert_eq!(
            stage[0].to_string(),
            "FROM gcr.io/distroless/cc-debian12:nonroot"
        );
        assert_eq!(
            stage[4].to_string(),
            r#"HEALTHCHECK --interval=15s --timeout=5s CMD ["/usr/local/bin/connector", "health"]"#
        );
    }

    #[test]
    fn the_replay_swaps_only_the_base_and_the_binary() {
        let root = workspace();
        let stage = runtime_stage(DOCKERFILE).expect("stage");
        let replay = replay(
            &stage,
            &stage_names(DOCKERFILE),
            "local/base:x",
            Path::new("/bin/true"),
            &root,
        )
        .expect("replay");
        let lines: Vec<&str> = replay.dockerfile.lines().skip(1).collect();
        assert_eq!(
            lines,
            vec![
                "FROM local/base:x",
                "COPY .rehearsal/connector /usr/local/bin/connector",
                "COPY infra/certs/rds-ca-bundle.pem /opt/rds-ca-bundle.pem",
                "VOLUME /tmp",
                r#"HEALTHCHECK --interval=15s --timeout=5s CMD ["/usr/local/bin/connector", "health"]"#,
                "STOPSIGNAL SIGTERM",
                r#"ENTRYPOINT ["/usr/local/bin/connector"]"#,
            ]
        );
        assert_eq!(replay.files.len(), 2);
        assert_eq!(replay.files[0].1, PathBuf::from(CONTEXT_BINARY));
        assert_eq!(
            replay.files[1].0,
            root.join("infra/certs/rds-ca-bundle.pem")
        );
        let other =
            runtime_stage("FROM a AS build\nFROM b\nCOPY --from=build /etc/passwd /etc/passwd\n")
                .expect("stage");
        assert!(replay_err(&other).contains("only the connector binary"));
        let unknown = runtime_stage("FROM b\nCOPY --from=nowhere /connector /c\n").expect("stage");
        assert!(replay_err(&unknown).contains("not a stage"));
    }

    fn replay_err(stage: &[Instruction]) -> String {
        match replay(
            stage,
            &["build".to_string()],
            "b",
            Path::new("/bin/true"),
            &workspace(),
        ) {
            Ok(r) => panic!("expected an error, got {}", r.dockerfile),
            Err(e) => e,
        }
    }

    #[test]
    fn the_real_dockerfile_replays() {
        let text = std::fs::read_to_string(workspace().join("infra/connector.Dockerfile"))
            .expect("infra/connector.Dockerfile");
        let stage = runtime_stage(&text).expect("stage");
        let replay = replay(
            &stage,
            &stage_names(&text),
            "b",
            Path::new("/bin/true"),
            &workspace(),
        )
        .expect("replay");
        assert!(replay
            .dockerfile
            .contains("COPY .rehearsal/connector /usr/local/bin/connector"));
        assert!(!replay.dockerfile.contains("--from="));
    }

    #[test]
    fn health_checks_parse_as_ecs_defines_them() {
        let hc = parse_health_check(&serde_json::json!({
            "Command": ["CMD", "/usr/local/bin/connector", "health"],
            "Interval": 15, "Timeout": "5", "Retries": 3, "StartPeriod": 30
        }))
        .expect("valid");
        assert_eq!(hc.argv, vec!["/usr/local/bin/connector", "health"]);
        assert_eq!(
            (hc.interval.as_secs(), hc.timeout.as_secs(), hc.retries),
            (15, 5, 3)
        );
        let shell = parse_health_check(&serde_json::json!({"Command": ["CMD-SHELL", "exit 0"]}))
            .expect("valid");
        assert_eq!(shell.argv, vec!["/bin/sh", "-c", "exit 0"]);
        assert_eq!((shell.interval.as_secs(), shell.retries), (30, 3));
        assert!(parse_health_check(&serde_json::json!({"Command": ["NONE"]})).is_err());
        assert!(
            parse_health_check(&serde_json::json!({"Command": ["CMD", "x"], "Interval": 1}))
                .is_err()
        );
    }

    #[test]
    fn fargate_sizes_parse() {
        assert_eq!(cpu_units("256").ok(), Some(256.0));
        assert_eq!(cpu_units("0.25 vCPU").ok(), Some(256.0));
        assert_eq!(memory_mib("512").ok(), Some(512.0));
        assert_eq!(memory_mib("0.5 GB").ok(), Some(512.0));
    }
}
