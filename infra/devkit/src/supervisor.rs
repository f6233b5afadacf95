//! Starting the stack's processes (`cargo lambda watch`, the gateway, connectors, builds) so
//! that they die with whoever started them, however it ends.
//!
//! Each child gets a session of its own (so its process group and everything it starts,
//! even grandchildren that make process groups of their own, can be found and signalled
//! together, and a terminal's Ctrl-C or hang-up reaches only the supervisor, which decides),
//! a log file or the supervisor's terminal, and on Linux `PR_SET_PDEATHSIG`: the kernel
//! SIGKILLs it when its parent dies.
//!
//! PDEATHSIG covers only direct children, and `cargo lambda watch` runs every function as a
//! grandchild, each in a session of its own (and builds them through `cargo run`). So the
//! first spawn also starts a reaper: a `sh` that reads from a pipe whose other end only
//! this process holds which sessions, and which processes (pid and start time) descend from
//! our children; a thread here tells it, every half second. When this process ends,
//! however (SIGKILL included), the pipe closes and the reaper SIGKILLs every process still
//! in those sessions and every listed process still running. [`Proc::stop`], [`Proc::kill`]
//! and dropping a [`Proc`] do the same at once, for that child.
//!
//! PDEATHSIG fires when the *thread* that spawned the child ends: spawn from a thread that
//! lives as long as the child should (the main thread, a test's thread, a runtime worker),
//! not from `spawn_blocking`.

use crate::procfs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// A child process in a session of its own, SIGKILLed with everything it started when
/// dropped or when this process ends.
pub struct Proc {
    name: String,
    child: Option<Child>,
    /// The child's pid, which is also its session and process group id.
    sid: Option<u32>,
    /// Its output (stdout and stderr); empty when it writes to ours.
    pub log: PathBuf,
}

impl Proc {
    /// Starts `cmd` with stdout and stderr appended to `<log_dir>/<name>.log`.
    pub fn spawn(name: &str, mut cmd: Command, log_dir: &Path) -> Result<Proc, String> {
        let log = log_dir.join(format!("{name}.log"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let err = file
            .try_clone()
            .map_err(|e| format!("{}: {e}", log.display()))?;
        cmd.stdout(Stdio::from(file)).stderr(Stdio::from(err));
        Self::start(name, cmd, log)
    }

    /// Starts `cmd` writing to this process's stdout and stderr (a build whose progress the
    /// user should see).
    pub fn spawn_inherit(name: &str, mut cmd: Command) -> Result<Proc, String> {
        cmd.stdout(Stdio::inherit()).stderr(Stdio::inherit());
        Self::start(name, cmd, PathBuf::new())
    }

    fn start(name: &str, mut cmd: Command, log: PathBuf) -> Result<Proc, String> {
        cmd.stdin(Stdio::null()).kill_on_drop(true);
        die_with_parent(&mut cmd);
        let reaper = reaper();
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        let sid = child.id();
        if let (Some(reaper), Some(sid)) = (reaper, sid) {
            reaper.watch(sid);
        }
        Ok(Proc {
            name: name.to_string(),
            child: Some(child),
            sid,
            log,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The child's pid, until it has been killed or stopped.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }

    /// Sends `signal` ("TERM", "KILL", "INT", "HUP", "STOP", "CONT", with or without
    /// "SIG") to the child's process group.
    pub fn signal(&self, signal: &str) {
        match (self.sid, signal_number(signal)) {
            (Some(sid), Some(sig)) => signal_group(sid, sig),
            (_, None) => eprintln!("devkit: unknown signal {signal:?}"),
            (None, _) => {}
        }
    }

    /// SIGKILLs the child and everything it started (its session, and descendants that
    /// left it), and waits for the child.
    pub async fn kill(&mut self) {
        self.kill_all();
        if let Some(mut child) = self.child.take() {
            let _ = child.wait().await;
        }
        self.forget_session();
    }

    /// SIGTERM to the child's process group; SIGKILL to the child and everything it
    /// started if it has not exited after `grace`, and to whatever it left behind after it
    /// has.
    pub async fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        let mut status = None;
        if let Some(mut child) = self.child.take() {
            // Before the child goes: its orphans would no longer be its descendants.
            let tree = self.sid.map(procfs::descendants).unwrap_or_default();
            let running = matches!(child.try_wait(), Ok(None));
            if let (Some(sid), true) = (self.sid, running) {
                signal_group(sid, libc::SIGTERM);
            }
            status = match tokio::time::timeout(grace, child.wait()).await {
                Ok(Ok(status)) => Some(status),
                _ => None,
            };
            self.kill_all();
            kill_listed(&tree);
            if status.is_none() {
                status = child.wait().await.ok();
            }
        }
        self.forget_session();
        status
    }

    /// Waits for the child to exit (cancel-safe).
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        match self.child.as_mut() {
            Some(child) => child.wait().await,
            None => Err(std::io::Error::other(format!(
                "{} was already stopped",
                self.name
            ))),
        }
    }

    /// The child's exit status if it exits within `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        tokio::time::timeout(timeout, child.wait()).await.ok()?.ok()
    }

    /// Whether the child has exited (without waiting).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until something accepts connections on `addr` ("127.0.0.1:8001"); fails at
    /// once, with the end of its log, if the child exits first.
    pub async fn wait_for_port(&mut self, addr: &str, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(());
            }
            if let Some(status) = self.exited() {
                return Err(format!(
                    "{} exited ({status}) before listening on {addr}{}",
                    self.name,
                    self.log_tail(20)
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{} did not listen on {addr} within {timeout:?}{}",
                    self.name,
                    self.log_tail(20)
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The last `lines` lines of the log, introduced by its path; empty without a log.
    pub fn log_tail(&self, lines: usize) -> String {
        if self.log.as_os_str().is_empty() {
            return String::new();
        }
        let text = self.log_text();
        let all: Vec<&str> = text.lines().collect();
        let tail = all[all.len().saturating_sub(lines)..].join("\n");
        format!("; its log, {}:\n{tail}", self.log.display())
    }

    /// SIGKILL to the child's descendants, wherever they are, and its session.
    fn kill_all(&self) {
        if let Some(sid) = self.sid {
            let tree = procfs::descendants(sid);
            kill_session(sid);
            kill_listed(&tree);
        }
    }

    /// The session is empty once the child has been reaped and nothing it started is left:
    /// the reaper need not watch it any more (its id may be reused).
    fn forget_session(&mut self) {
        if let Some(sid) = self.sid {
            if procfs::session(sid).is_empty() {
                if let Some(reaper) = reaper() {
                    reaper.forget(sid);
                }
                self.sid = None;
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// What every child of the supervisor gets before it runs: a session of its own and, on
/// Linux, SIGKILL when its parent dies. For commands not run through [`Proc`] too.
pub fn die_with_parent(cmd: &mut Command) {
    let parent = std::process::id();
    // SAFETY: between fork and exec only async-signal-safe calls: setsid, prctl, getppid.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            #[cfg(target_os = "linux")]
            {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died before prctl: then nobody would ever signal us.
                if libc::getppid() as u32 != parent {
                    return Err(std::io::Error::other("the parent died"));
                }
            }
            #[cfg(not(target_os = "linux"))]
            let _ = parent;
            Ok(())
        });
    }
}

fn signal_number(name: &str) -> Option<libc::c_int> {
    Some(match name.trim_start_matches("SIG") {
        "TERM" => libc::SIGTERM,
        "KILL" => libc::SIGKILL,
        "INT" => libc::SIGINT,
        "HUP" => libc::SIGHUP,
        "QUIT" => libc::SIGQUIT,
        "STOP" => libc::SIGSTOP,
        "CONT" => libc::SIGCONT,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        _ => return None,
    })
}

fn signal_group(pgid: u32, sig: libc::c_int) {
    if let Ok(pgid) = libc::pid_t::try_from(pgid) {
        if pgid > 1 {
            // SAFETY: kill(2) with a negative pid signals that process group; no memory.
            unsafe {
                libc::kill(-pgid, sig);
            }
        }
    }
}

fn signal_pid(pid: u32, sig: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        if pid > 1 {
            // SAFETY: kill(2) on one pid; no memory.
            unsafe {
                libc::kill(pid, sig);
            }
        }
    }
}

/// SIGKILL to session `sid`'s process group, then to every process left in the session
/// (grandchildren that made process groups of their own), a few rounds in case some were
/// forking meanwhile.
pub fn kill_session(sid: u32) {
    signal_group(sid, libc::SIGKILL);
    for _ in 0..3 {
        let left = procfs::session(sid);
        if left.is_empty() {
            break;
        }
        for process in left {
            signal_pid(process.pid, libc::SIGKILL);
        }
    }
}

/// SIGKILL to each of `processes` still running (the same pid and start time).
fn kill_listed(processes: &[procfs::Stat]) {
    for process in processes {
        if procfs::still_alive(process) {
            signal_pid(process.pid, libc::SIGKILL);
        }
    }
}

/// Reads lines: `+SID`/`-SID` a session to clean up or not, `=PID:START`/`~PID` a process
/// (pid, start time) to kill or not. At end of input (the supervisor is gone), SIGKILLs every
/// process of the sessions and every listed process still running with the same start
/// time. Ignores the terminal's signals: it must outlive the supervisor to do its job, and
/// ends as soon as it has.
const REAPER: &str = r#"
trap '' HUP INT TERM QUIT PIPE
sids=""
procs=""
while IFS= read -r line; do
  case "$line" in
    +*) sids="$sids ${line#+}" ;;
    -*) keep=""
        for s in $sids; do [ "$s" = "${line#-}" ] || keep="$keep $s"; done
        sids="$keep" ;;
    =*) procs="$procs ${line#=}" ;;
    ~*) keep=""
        for e in $procs; do [ "${e%:*}" = "${line#~}" ] || keep="$keep $e"; done
        procs="$keep" ;;
  esac
done
[ -n "$sids$procs" ] || exit 0
for round in 1 2 3; do
  for e in $procs; do
    pid=${e%:*}
    IFS= read -r st < "/proc/$pid/stat" 2>/dev/null || continue
    rest=${st##*")"}
    set -- $rest
    [ "${20}" = "${e#*:}" ] && kill -KILL "$pid" 2>/dev/null
  done
  for s in $sids; do kill -KILL -- "-$s" 2>/dev/null; done
  for f in /proc/[0-9]*/stat; do
    IFS= read -r st < "$f" 2>/dev/null || continue
    rest=${st##*")"}
    set -- $rest
    for s in $sids; do
      if [ "$4" = "$s" ]; then p=${f#/proc/}; kill -KILL "${p%/stat}" 2>/dev/null; fi
    done
  done
done
"#;

/// How often the reaper learns which processes descend from our children.
const TRACK_EVERY: Duration = Duration::from_millis(500);

struct Reaper {
    pipe: Mutex<std::process::ChildStdin>,
    /// Our children (session leaders) whose descendants the reaper must know.
    leaders: Mutex<Vec<u32>>,
    /// The descendants it knows.
    told: Mutex<Vec<u32>>,
}

/// The pids of our children's descendants that the reaper knows of: those it will kill if
/// this process dies now (tests wait for it).
pub fn known_to_reaper() -> Vec<u32> {
    reaper()
        .and_then(|r| r.told.lock().ok().map(|t| t.clone()))
        .unwrap_or_default()
}

impl Reaper {
    fn tell(&self, line: &str) {
        if let Ok(mut pipe) = self.pipe.lock() {
            let _ = writeln!(pipe, "{line}");
        }
    }

    fn watch(&'static self, sid: u32) {
        self.tell(&format!("+{sid}"));
        if let Ok(mut leaders) = self.leaders.lock() {
            leaders.push(sid);
        }
        static TRACKER: OnceLock<()> = OnceLock::new();
        TRACKER.get_or_init(|| {
            let spawned = std::thread::Builder::new()
                .name("devkit-reaper-feed".into())
                .spawn(move || self.track());
            if let Err(e) = spawned {
                eprintln!("devkit: cannot start the thread that feeds the reaper: {e}");
            }
        });
    }

    fn forget(&self, sid: u32) {
        self.tell(&format!("-{sid}"));
        if let Ok(mut leaders) = self.leaders.lock() {
            leaders.retain(|l| *l != sid);
        }
    }

    /// Forever: tells the reaper about new descendants of our children, and about listed
    /// ones that are gone (so that its list stays short).
    fn track(&self) {
        let mut told: Vec<procfs::Stat> = Vec::new();
        loop {
            std::thread::sleep(TRACK_EVERY);
            let leaders = match self.leaders.lock() {
                Ok(l) => l.clone(),
                Err(_) => return,
            };
            if leaders.is_empty() && told.is_empty() {
                continue;
            }
            let all = procfs::all();
            let now: Vec<procfs::Stat> = leaders
                .iter()
                .flat_map(|l| procfs::descendants_in(&all, *l))
                .collect();
            let same =
                |a: &procfs::Stat, b: &procfs::Stat| a.pid == b.pid && a.start_time == b.start_time;
            for p in &now {
                if !told.iter().any(|t| same(t, p)) {
                    self.tell(&format!("={}:{}", p.pid, p.start_time));
                }
            }
            let running = |p: &procfs::Stat| all.iter().any(|a| same(a, p) && a.alive());
            for p in told.iter().filter(|p| !running(p)) {
                self.tell(&format!("~{}", p.pid));
            }
            told.retain(running);
            for p in now {
                if !told.iter().any(|t| same(t, &p)) {
                    told.push(p);
                }
            }
            if let Ok(mut known) = self.told.lock() {
                *known = told.iter().map(|p| p.pid).collect();
            }
        }
    }
}

/// This process's reaper, started on first use; `None` (said once) if it cannot start.
fn reaper() -> Option<&'static Reaper> {
    static REAPER_PROCESS: OnceLock<Option<Reaper>> = OnceLock::new();
    REAPER_PROCESS
        .get_or_init(|| {
            use std::os::unix::process::CommandExt;
            let spawned = std::process::Command::new("/bin/sh")
                .args(["-c", REAPER])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                // Out of our process group: a test runner that kills the group on timeout
                // must not take the reaper with it.
                .process_group(0)
                .spawn();
            match spawned {
                Ok(mut child) => child.stdin.take().map(|pipe| Reaper {
                    pipe: Mutex::new(pipe),
                    leaders: Mutex::new(Vec::new()),
                    told: Mutex::new(Vec::new()),
                }),
                Err(e) => {
                    eprintln!(
                        "devkit: cannot start the reaper (/bin/sh: {e}); processes started \
                         here may outlive a SIGKILL of this one"
                    );
                    None
                }
            }
        })
        .as_ref()
}

/// The variables cargo sets for the package it runs (`cargo run`, `cargo test`, nextest).
/// A cargo started from such a process inherits them, and build scripts that watch them
/// (ring's: `rerun-if-env-changed=CARGO_PKG_NAME`) see a change, so every binary above
/// them would be rebuilt, and rebuilt again by the next cargo started from a shell. Every
/// cargo we start goes without them.
pub fn package_env_vars() -> Vec<String> {
    std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| {
            k.starts_with("CARGO_PKG_")
                || k.starts_with("CARGO_MANIFEST_")
                || matches!(
                    k.as_str(),
                    "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE" | "OUT_DIR"
                )
        })
        .collect()
}

/// A `cargo` command without [`package_env_vars`], with `target/tools` on its PATH.
pub fn cargo(root: &Path) -> Command {
    let mut cmd = Command::new("cargo");
    for name in package_env_vars() {
        cmd.env_remove(name);
    }
    cmd.current_dir(root).env("PATH", crate::tools::path(root));
    cmd
}

/// `cargo lambda watch` serving every function on 127.0.0.1:`port`, starting up to
/// `concurrency` copies of each; `watch_changes`: rebuild and restart on source changes.
/// The caller adds the functions' environment (DATABASE_URL, secrets).
pub fn functions_command(root: &Path, port: u16, concurrency: u32, watch_changes: bool) -> Command {
    let mut cmd = cargo(root);
    cmd.args(["lambda", "watch"]);
    if !watch_changes {
        cmd.arg("--ignore-changes");
    }
    cmd.args(["--concurrency", &concurrency.to_string()]).args([
        "-A",
        "127.0.0.1",
        "-P",
        &port.to_string(),
    ]);
    cmd
}

/// The local gateway on `addr`, forwarding to the functions at `invoke_url`.
pub fn gateway_command(root: &Path, bin_dir: &Path, addr: &str, invoke_url: &str) -> Command {
    let mut cmd = Command::new(bin_dir.join("gateway"));
    cmd.current_dir(root)
        .env("GATEWAY_ADDR", addr)
        .env("GATEWAY_INVOKE_URL", invoke_url)
        .env("LOG_FORMAT", "text");
    cmd
}

/// A connector replica named `id` against the management API at `endpoint`, through the
/// AWS SDK with dummy credentials (the local gateway does not check them).
pub fn connector_command(
    root: &Path,
    bin_dir: &Path,
    database_url: &str,
    endpoint: &str,
    id: &str,
) -> Command {
    let mut cmd = Command::new(bin_dir.join("connector"));
    cmd.current_dir(root)
        .env("DATABASE_URL", database_url)
        .env("WEBSOCKET_MANAGEMENT_ENDPOINT", endpoint)
        .env("CONNECTOR_ID", id)
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("LOG_FORMAT", "text");
    cmd
}

/// `cargo lambda watch` starts a function on its first invocation (a `cargo run`: a second
/// or more each, longer while they queue for cargo's lock). Invokes each `(function, event)`
/// through the Lambda invoke API on 127.0.0.1:`watch_port`, `concurrency` at a time, and
/// returns each function's HTTP status, or why there is none.
pub async fn warm(
    watch_port: u16,
    calls: Vec<(String, serde_json::Value)>,
    concurrency: usize,
) -> Vec<(String, Result<u16, String>)> {
    use futures::StreamExt;
    let http = reqwest::Client::new();
    futures::stream::iter(calls)
        .map(|(function, event)| {
            let http = http.clone();
            async move {
                let url = format!(
                    "http://127.0.0.1:{watch_port}/2015-03-31/functions/{function}/invocations"
                );
                let reply = http
                    .post(url)
                    .json(&event)
                    .timeout(Duration::from_secs(120))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .map_err(|e| format!("{e:?}"));
                (function, reply)
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await
}
