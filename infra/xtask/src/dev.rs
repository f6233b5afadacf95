//! `cargo xtask dev`: the whole stack on this machine with one command.
//!
//! Postgres (started under target/pg if none answers), migrations and demo data, every
//! binary built up front, then `cargo lambda watch` (the functions), the gateway (HTTP,
//! WebSocket and management APIs, and the dashboard) and the connector, which is restarted
//! if it dies, as a container service would. Ctrl-C, SIGTERM or SIGHUP (the terminal
//! closing) stops everything, at any point; if xtask is SIGKILLed, its processes die with
//! it (see `devkit::supervisor`). Logs go to target/dev/.

use crate::{say, LOCAL_JWT_SECRET, LOCAL_WEBHOOK_SECRET};
use devkit::localpg;
use devkit::supervisor::{self, Proc};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, Signal, SignalKind};

pub const GATEWAY_ADDR: &str = "127.0.0.1:8001";
pub const GATEWAY_PORT: u16 = 8001;
pub const WATCH_PORT: u16 = 9000;

/// How long a process gets to exit after SIGTERM before SIGKILL.
const GRACE: Duration = Duration::from_secs(5);

/// The ports local mode listens on: 8001 and 9000, or `BILLWIRE_DEV_GATEWAY_PORT` and
/// `BILLWIRE_DEV_FUNCTIONS_PORT` (the tests use free ones, so that they can run beside a
/// `cargo xtask dev`).
#[derive(Clone, Copy)]
struct Ports {
    gateway: u16,
    functions: u16,
}

impl Ports {
    fn from_env() -> Result<Ports, String> {
        let port = |name: &str, default: u16| match std::env::var(name) {
            Ok(v) => v
                .parse::<u16>()
                .map_err(|_| format!("{name}={v:?} is not a port")),
            Err(_) => Ok(default),
        };
        Ok(Ports {
            gateway: port("BILLWIRE_DEV_GATEWAY_PORT", GATEWAY_PORT)?,
            functions: port("BILLWIRE_DEV_FUNCTIONS_PORT", WATCH_PORT)?,
        })
    }

    fn gateway_addr(&self) -> String {
        format!("127.0.0.1:{}", self.gateway)
    }
}

/// Ctrl-C, SIGTERM, SIGHUP.
struct StopSignals {
    int: Signal,
    term: Signal,
    hup: Signal,
}

impl StopSignals {
    fn install() -> Result<StopSignals, String> {
        let install = |kind: SignalKind| {
            signal(kind).map_err(|e| format!("cannot install a signal handler: {e}"))
        };
        Ok(StopSignals {
            int: install(SignalKind::interrupt())?,
            term: install(SignalKind::terminate())?,
            hup: install(SignalKind::hangup())?,
        })
    }

    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "Ctrl-C",
            _ = self.term.recv() => "SIGTERM",
            _ = self.hup.recv() => "SIGHUP",
        }
    }
}

/// What has been started so far, stopped in reverse order however `run` ends.
#[derive(Default)]
struct Running {
    server: Option<localpg::Server>,
    build: Option<Proc>,
    watch: Option<Proc>,
    gateway: Option<Proc>,
    connector: Option<Proc>,
    /// With `--sam`: the database bridge the function containers use, and what marks the
    /// containers `sam local start-lambda` started (removed at the end).
    sam: Option<(samlocal::DbBridge, String)>,
}

impl Running {
    async fn stop(&mut self) {
        for slot in [
            &mut self.connector,
            &mut self.gateway,
            &mut self.watch,
            &mut self.build,
        ] {
            if let Some(mut proc) = slot.take() {
                proc.stop(GRACE).await;
                say(&format!("xtask: stopped {}", proc.name()));
            }
        }
        if let Some((_bridge, marker)) = self.sam.take() {
            crate::sam::cleanup(&marker);
        }
        if let Some(dir) = self.server.take().and_then(|s| s.private) {
            match localpg::stop_private(&dir) {
                Ok(()) => say(&format!(
                    "xtask: stopped the private Postgres in {}",
                    dir.display()
                )),
                Err(e) => say(&format!("xtask: could not stop the private Postgres: {e}")),
            }
        }
    }
}

/// `sam`: the functions run under `sam local start-lambda` (infra/xtask/src/sam.rs) in
/// containers instead of `cargo lambda watch`.
pub async fn run(sam: bool) -> Result<(), String> {
    // First, so that a signal at any point stops what has been started so far.
    let mut signals = StopSignals::install()?;
    let mut running = Running::default();
    let mut ports = Ports::from_env()?;
    if sam {
        ports.functions = crate::sam::LAMBDA_PORT;
        samlocal::require()?;
    }
    let started = tokio::select! {
        started = start(&mut running, ports, sam) => Some(started),
        signal = signals.recv() => {
            say(&format!("\nxtask: {signal} while starting; stopping"));
            None
        }
    };
    let outcome = match started {
        Some(Ok(())) => supervise(&mut running, &mut signals, ports, sam).await,
        Some(Err(e)) => Err(e),
        None => Ok(()),
    };
    running.stop().await;
    outcome
}

async fn start(running: &mut Running, ports: Ports, sam: bool) -> Result<(), String> {
    let functions = if sam {
        "sam local start-lambda, the functions"
    } else {
        "cargo lambda watch, the functions"
    };
    // Before anything slow: a port in use would only show up after the build.
    devkit::ports::check_free(ports.gateway, "the gateway")?;
    devkit::ports::check_free(ports.functions, functions)?;
    let root = localpg::workspace_root();
    if !sam {
        devkit::tools::ensure_cargo_lambda(&root, &|m| say(&format!("xtask: {m}")))?;
    }
    let logs = root.join("target").join("dev");
    std::fs::create_dir_all(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;

    let (server, url) = crate::db().await?;
    running.server = Some(server);

    say("xtask: building every function, the gateway and the connector (cargo's progress follows; the first build takes several minutes)");
    let mut build = supervisor::cargo(&root);
    build.args(["build", "--workspace", "--bins"]);
    let build = running
        .build
        .insert(Proc::spawn_inherit("the build", build)?);
    let built = build.wait().await.map_err(|e| e.to_string())?;
    if let Some(mut build) = running.build.take() {
        // It has exited: this reaps it and tells the reaper to forget its session.
        build.stop(GRACE).await;
    }
    if !built.success() {
        return Err("the build failed".into());
    }

    let watch = if sam {
        let (cmd, bridge, marker) =
            crate::sam::functions(&url, &format!("ws://{}/ws", ports.gateway_addr())).await?;
        running.sam = Some((bridge, marker));
        Proc::spawn("functions", cmd, &logs)?
    } else {
        let mut watch = supervisor::functions_command(&root, ports.functions, 4, true);
        watch
            .env("DATABASE_URL", &url)
            .env("JWT_SECRET", LOCAL_JWT_SECRET)
            .env("WEBHOOK_SECRET", LOCAL_WEBHOOK_SECRET)
            .env("WEBSOCKET_URL", format!("ws://{}/ws", ports.gateway_addr()))
            .env("LOG_FORMAT", "text");
        Proc::spawn("functions", watch, &logs)?
    };
    let watch = running.watch.insert(watch);

    let bin = root.join("target").join("debug");
    let mut gateway = supervisor::gateway_command(
        &root,
        &bin,
        &ports.gateway_addr(),
        &format!("http://127.0.0.1:{}", ports.functions),
    );
    gateway.env("GATEWAY_WEB_DIR", root.join("web"));
    running.gateway = Some(Proc::spawn("gateway", gateway, &logs)?);
    watch
        .wait_for_port(
            &format!("127.0.0.1:{}", ports.functions),
            Duration::from_secs(60),
        )
        .await?;
    if let Some(gateway) = running.gateway.as_mut() {
        gateway
            .wait_for_port(&ports.gateway_addr(), Duration::from_secs(30))
            .await?;
    }

    running.connector = Some(spawn_connector(&root, &url, ports, &logs)?);
    warm(ports).await?;

    banner(&url, &logs, ports, sam);
    Ok(())
}

fn spawn_connector(root: &Path, url: &str, ports: Ports, logs: &Path) -> Result<Proc, String> {
    let bin = root.join("target").join("debug");
    let endpoint = format!("http://{}", ports.gateway_addr());
    let cmd = supervisor::connector_command(root, &bin, url, &endpoint, "local");
    Proc::spawn("connector", cmd, logs)
}

/// Until a stop signal: restarts the connector when it dies; stops everything when the
/// functions or the gateway die.
async fn supervise(
    running: &mut Running,
    signals: &mut StopSignals,
    ports: Ports,
    sam: bool,
) -> Result<(), String> {
    let functions = if sam {
        "sam local start-lambda"
    } else {
        "cargo lambda watch"
    };
    let root = localpg::workspace_root();
    let logs = root.join("target").join("dev");
    let url = match &running.server {
        Some(server) => server.url(crate::LOCAL_DATABASE),
        None => return Err("no database".into()),
    };
    let mut restarts = 0u32;
    loop {
        tokio::select! {
            signal = signals.recv() => {
                say(&format!("\nxtask: {signal}; stopping"));
                return Ok(());
            }
            status = exit_of(&mut running.watch) => {
                return Err(format!("{functions} exited ({status}); see target/dev/functions.log"));
            }
            status = exit_of(&mut running.gateway) => {
                return Err(format!("the gateway exited ({status}); see target/dev/gateway.log"));
            }
            status = exit_of(&mut running.connector) => {
                restarts += 1;
                say(&format!("xtask: the connector exited ({status}); restarting it (restart #{restarts})"));
                if let Some(mut old) = running.connector.take() {
                    old.stop(GRACE).await;
                }
                // As a container service would, not in a tight loop.
                tokio::time::sleep(Duration::from_secs(1)).await;
                running.connector = Some(spawn_connector(&root, &url, ports, &logs)?);
            }
        }
    }
}

/// The exit status of `proc`, as text; never, if there is none.
async fn exit_of(proc: &mut Option<Proc>) -> String {
    match proc.as_mut() {
        Some(p) => match p.wait().await {
            Ok(status) => status.to_string(),
            Err(e) => e.to_string(),
        },
        None => std::future::pending().await,
    }
}

/// `cargo lambda watch` starts each function on its first request, through `cargo run`
/// (a second or more each, longer while they queue for cargo's lock): the dashboard's first
/// load used to wait about 12 s to go Live. One harmless request per function first (no
/// token, no body, an unknown connection: each is refused and writes nothing), so the
/// first real request finds every function running.
async fn warm(ports: Ports) -> Result<(), String> {
    use devkit::gateway_events::{HttpEvent, WsEvent};
    use shared::api::routes::{ROUTES, WEBSOCKET_ROUTES};
    let mut events: Vec<(String, serde_json::Value)> = ROUTES
        .iter()
        .map(|r| {
            let event = HttpEvent::new(r.method, r.path)
                .param("id", "00000000-0000-7000-8000-000000000000")
                .to_json();
            (r.function.to_string(), event)
        })
        .collect();
    for r in WEBSOCKET_ROUTES {
        let event = match r.route_key {
            "$connect" => WsEvent::connect("warm-up"),
            "$disconnect" => WsEvent::disconnect("warm-up", 1000, "warm-up"),
            key => WsEvent::message("warm-up", key, r#"{"action":"ping"}"#),
        };
        events.push((r.function.to_string(), event.to_json()));
    }
    events.sort_by(|a, b| a.0.cmp(&b.0));
    events.dedup_by(|a, b| a.0 == b.0);
    say(&format!("xtask: starting {} functions", events.len()));
    let started = Instant::now();
    let mut failed: Vec<String> = supervisor::warm(ports.functions, events, 4)
        .await
        .into_iter()
        .filter(|(_, reply)| !matches!(reply, Ok(status) if (200..300).contains(status)))
        .map(|(function, _)| function)
        .collect();
    if !failed.is_empty() {
        failed.sort();
        return Err(format!(
            "these functions did not start: {}; see target/dev/functions.log",
            failed.join(", ")
        ));
    }
    say(&format!(
        "xtask: all functions running ({:.1} s)",
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

fn banner(url: &str, logs: &Path, ports: Ports, sam: bool) {
    let rel = |p: PathBuf| {
        p.strip_prefix(localpg::workspace_root())
            .map(Path::to_path_buf)
            .unwrap_or(p)
            .display()
            .to_string()
    };
    let gateway = ports.gateway_addr();
    let functions = if sam {
        format!(
            "http://127.0.0.1:{} (sam local start-lambda; restart to pick up changes)",
            ports.functions
        )
    } else {
        format!(
            "http://127.0.0.1:{} (cargo lambda watch; rebuilds on change)",
            ports.functions
        )
    };
    let tools = devkit::tools::cargo_lambda_dir(&localpg::workspace_root()).join("bin");
    let invoke_hint = if tools.join("cargo-lambda").is_file() {
        format!(
            "\n  cargo lambda:   installed in {}; add it to PATH for `cargo lambda invoke`",
            rel(tools)
        )
    } else {
        String::new()
    };
    let text = format!(
        "\nBillwire is running locally\n\
         \n  dashboard       http://{gateway}/\
         \n  REST API        http://{gateway}/api/v1/...\
         \n  WebSocket       ws://{gateway}/ws?ticket=...  (ticket: POST /api/v1/events/ticket)\
         \n  management API  http://{gateway}/@connections/{{id}}\
         \n  functions       {functions}\
         \n  database        {url}\
         \n  logs            {}/\
         \n\
         \n  demo logins     {} / {}      admin of account demo\
         \n                  {} / {}    customer of account demo\
         \n                  {} / {}      admin of account acme\
         \n\
         \n  watch events:   cargo xtask listen               (as the demo admin)\
         \n  make an order:  cargo xtask order                (as the demo customer){invoke_hint}\
         \n\
         \nCtrl-C stops everything.\n",
        rel(logs.to_path_buf()),
        demo::DEMO_ADMIN.0,
        demo::DEMO_ADMIN.1,
        demo::DEMO_CUSTOMER.0,
        demo::DEMO_CUSTOMER.1,
        demo::ACME_ADMIN.0,
        demo::ACME_ADMIN.1,
    );
    use std::io::Write;
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}
