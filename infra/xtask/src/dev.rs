//! `cargo xtask dev`: the whole stack on this machine with one command.
//!
//! Postgres (started under target/pg if none answers), migrations and demo data, every
//! binary built up front, then `cargo lambda watch` (the functions), the gateway (HTTP,
//! WebSocket and management APIs, and the dashboard) and the connector, which is restarted
//! if it dies, as a container service would. Ctrl-C stops everything. Logs go to target/dev/.

use crate::{LOCAL_JWT_SECRET, LOCAL_WEBHOOK_SECRET};
use devkit::localpg;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};
use tokio::signal::unix::{signal, SignalKind};

pub const GATEWAY_ADDR: &str = "127.0.0.1:8001";
pub const WATCH_PORT: u16 = 9000;

pub(crate) struct Service {
    name: &'static str,
    child: Child,
}

impl Service {
    pub(crate) fn spawn(
        name: &'static str,
        mut cmd: Command,
        logs: &Path,
    ) -> Result<Service, String> {
        let log = logs.join(format!("{name}.log"));
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        cmd.stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .stdin(Stdio::null())
            .process_group(0)
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        Ok(Service { name, child })
    }

    /// SIGTERM to the whole process group, then SIGKILL if it lingers.
    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            signal_group(pid, "TERM");
            if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
                .await
                .is_err()
            {
                signal_group(pid, "KILL");
                let _ = self.child.wait().await;
            }
        }
        eprintln!("xtask: stopped {}", self.name);
    }
}

fn signal_group(pid: u32, sig: &str) {
    let _ = std::process::Command::new("kill")
        .args([&format!("-{sig}"), "--", &format!("-{pid}")])
        .status();
}

fn tool_missing(cmd: &str, args: &[&str]) -> bool {
    !std::process::Command::new(cmd)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

async fn wait_for(addr: &str, what: &str, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!(
        "{what} did not start listening on {addr}; see target/dev/"
    ))
}

/// Local mode and the end-to-end tests run the functions under `cargo lambda watch`.
pub fn require_cargo_lambda() -> Result<(), String> {
    if tool_missing("cargo", &["lambda", "--version"]) {
        return Err(
            "cargo-lambda is missing: install it with `pip install cargo-lambda` \
                    (or see https://www.cargo-lambda.info/guide/installation.html)"
                .into(),
        );
    }
    Ok(())
}

/// `cargo lambda watch` starts each function on its first request, through `cargo run`
/// (a second or more each, longer while they queue for cargo's lock): the dashboard's first
/// load used to wait about 12 s to go Live. One harmless request per function first (no
/// token, no body, an unknown connection: each is refused and writes nothing), so the
/// first real request finds every function running.
async fn warm(root: &Path, port: u16) -> Result<(), String> {
    use devkit::gateway_events::{HttpEvent, WsEvent};
    use futures::StreamExt;
    let template = gateway::template::Template::load(&root.join("template.yaml"))
        .map_err(|e| e.to_string())?;
    let mut events: Vec<(String, serde_json::Value)> = template
        .http_routes
        .iter()
        .map(|r| {
            let event = HttpEvent::new(&r.method, &r.path)
                .param("id", "00000000-0000-7000-8000-000000000000")
                .to_json();
            (r.function.clone(), event)
        })
        .collect();
    for r in &template.ws_routes {
        let event = match r.route_key.as_str() {
            "$connect" => WsEvent::connect("warm-up"),
            "$disconnect" => WsEvent::disconnect("warm-up", 1000, "warm-up"),
            key => WsEvent::message("warm-up", key, r#"{"action":"ping"}"#),
        };
        events.push((r.function.clone(), event.to_json()));
    }
    events.sort_by(|a, b| a.0.cmp(&b.0));
    events.dedup_by(|a, b| a.0 == b.0);
    eprintln!("xtask: starting {} functions", events.len());
    let started = Instant::now();
    let http = reqwest::Client::new();
    let failed: Vec<String> = futures::stream::iter(events)
        .map(|(function, event)| {
            let http = http.clone();
            async move {
                let url =
                    format!("http://127.0.0.1:{port}/2015-03-31/functions/{function}/invocations");
                let ok = http
                    .post(url)
                    .json(&event)
                    .timeout(Duration::from_secs(120))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                (!ok).then_some(function)
            }
        })
        .buffer_unordered(4)
        .filter_map(|f| async move { f })
        .collect()
        .await;
    if !failed.is_empty() {
        return Err(format!(
            "these functions did not start: {}; see target/dev/functions.log",
            failed.join(", ")
        ));
    }
    eprintln!(
        "xtask: all functions running ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The functions under `cargo lambda watch` (rebuilt on change).
fn watch(root: &Path, url: &str, logs: &Path) -> Result<Service, String> {
    let mut watch = Command::new("cargo");
    watch
        .current_dir(root)
        .args([
            "lambda",
            "watch",
            "-A",
            "127.0.0.1",
            "-P",
            &WATCH_PORT.to_string(),
            "--concurrency",
            "4",
        ])
        .env("DATABASE_URL", url)
        .env("JWT_SECRET", LOCAL_JWT_SECRET)
        .env("WEBHOOK_SECRET", LOCAL_WEBHOOK_SECRET)
        .env("WEBSOCKET_URL", format!("ws://{GATEWAY_ADDR}/ws"))
        .env("LOG_FORMAT", "text");
    Service::spawn("functions", watch, logs)
}

/// `sam`: the functions run under `sam local start-lambda` (infra/xtask/src/sam.rs)
/// instead of `cargo lambda watch`.
pub async fn run(sam: bool) -> Result<(), String> {
    if sam {
        samlocal::require()?;
    } else {
        require_cargo_lambda()?;
    }
    let root = localpg::workspace_root();
    let logs = root.join("target").join("dev");
    std::fs::create_dir_all(&logs).map_err(|e| e.to_string())?;

    let (server, url) = crate::db().await?;
    eprintln!(
        "xtask: building every function, the gateway and the connector (first time: a few minutes)"
    );
    let built = Command::new("cargo")
        .current_dir(&root)
        .args(["build", "--workspace", "--bins"])
        .status()
        .await
        .map_err(|e| e.to_string())?;
    if !built.success() {
        return Err("the build failed".into());
    }

    let (watch, functions_port, sam_run) = if sam {
        let (service, bridge, marker) = crate::sam::functions(&url, &logs).await?;
        (service, crate::sam::LAMBDA_PORT, Some((bridge, marker)))
    } else {
        (watch(&root, &url, &logs)?, WATCH_PORT, None)
    };

    let bin = root.join("target").join("debug");
    let mut gateway = Command::new(bin.join("gateway"));
    gateway
        .current_dir(&root)
        .env("GATEWAY_ADDR", GATEWAY_ADDR)
        .env(
            "GATEWAY_INVOKE_URL",
            format!("http://127.0.0.1:{functions_port}"),
        )
        .env("GATEWAY_WEB_DIR", root.join("web"))
        .env("LOG_FORMAT", "text");
    let gateway = Service::spawn("gateway", gateway, &logs)?;
    wait_for(
        &format!("127.0.0.1:{functions_port}"),
        if sam {
            "sam local start-lambda"
        } else {
            "cargo lambda watch"
        },
        Duration::from_secs(60),
    )
    .await?;
    wait_for(GATEWAY_ADDR, "the gateway", Duration::from_secs(30)).await?;

    let connector_cmd = || {
        let mut c = Command::new(bin.join("connector"));
        c.current_dir(&root)
            .env("DATABASE_URL", &url)
            .env(
                "WEBSOCKET_MANAGEMENT_ENDPOINT",
                format!("http://{GATEWAY_ADDR}"),
            )
            .env("CONNECTOR_ID", "local")
            .env("AWS_ACCESS_KEY_ID", "local")
            .env("AWS_SECRET_ACCESS_KEY", "local")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("LOG_FORMAT", "text");
        c
    };
    let mut connector = Service::spawn("connector", connector_cmd(), &logs)?;
    warm(&root, functions_port).await?;

    banner(&url, &logs, sam);

    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        _ => return Err("cannot install signal handlers".into()),
    };
    let mut restarts = 0u32;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            status = connector.child.wait() => {
                restarts += 1;
                let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                eprintln!("xtask: the connector exited ({status}); restarting it (restart #{restarts})");
                tokio::time::sleep(Duration::from_secs(1)).await;
                connector = Service::spawn("connector", connector_cmd(), &logs)?;
            }
        }
    }
    eprintln!("\nxtask: stopping");
    connector.stop().await;
    gateway.stop().await;
    watch.stop().await;
    if let Some((_bridge, marker)) = &sam_run {
        crate::sam::cleanup(marker);
    }
    if let Some(dir) = server.private {
        match localpg::stop_private(&dir) {
            Ok(()) => eprintln!("xtask: stopped the private Postgres in {}", dir.display()),
            Err(e) => eprintln!("xtask: could not stop the private Postgres: {e}"),
        }
    }
    Ok(())
}

fn banner(url: &str, logs: &Path, sam: bool) {
    let functions = if sam {
        format!(
            "http://127.0.0.1:{} (sam local start-lambda; restart to pick up changes)",
            crate::sam::LAMBDA_PORT
        )
    } else {
        format!("http://127.0.0.1:{WATCH_PORT} (cargo lambda watch; rebuilds on change)")
    };
    let rel = |p: PathBuf| {
        p.strip_prefix(localpg::workspace_root())
            .map(Path::to_path_buf)
            .unwrap_or(p)
            .display()
            .to_string()
    };
    println!(
        "\nBillwire is running locally\n\
         \n  dashboard       http://{GATEWAY_ADDR}/\
         \n  REST API        http://{GATEWAY_ADDR}/api/v1/...\
         \n  WebSocket       ws://{GATEWAY_ADDR}/ws?ticket=...  (ticket: POST /api/v1/events/ticket)\
         \n  management API  http://{GATEWAY_ADDR}/@connections/{{id}}\
         \n  functions       {functions}\
         \n  database        {url}\
         \n  logs            {}/\
         \n\
         \n  demo logins     {} / {}      admin of account demo\
         \n                  {} / {}    customer of account demo\
         \n                  {} / {}      admin of account acme\
         \n\
         \n  watch events:   cargo xtask listen               (as the demo admin)\
         \n  make an order:  cargo xtask order                (as the demo customer)\
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
}
