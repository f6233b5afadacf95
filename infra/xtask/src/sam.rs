//! SAM local (README, "SAM local"): `cargo xtask sam build|invoke|api|bridge`, and the
//! functions of `cargo xtask dev --sam` under `sam local start-lambda`. The pieces live in
//! infra/samlocal, which its tests share.

use samlocal::{DbBridge, Layout};
use std::path::{Path, PathBuf};
use tokio::signal::unix::{signal, SignalKind};

/// Where `sam local start-lambda` listens in `cargo xtask dev --sam`.
pub const LAMBDA_PORT: u16 = 3001;

const HELP: &str = "\
cargo xtask sam <command>

  build                    every binary (debug), laid out for SAM with target/sam/template.yaml,
                           and the local base image; prints the sam commands
  invoke FUNCTION [EVENT]  sam local invoke against the local database (EVENT defaults to
                           functions/FUNCTION/events/example.json)
  api [--port 3000]        sam local start-api against the local database, until Ctrl-C
  bridge                   let the containers reach the local Postgres as
                           host.docker.internal:5432 (what infra/sam/env.json names), until Ctrl-C

  cargo xtask dev --sam    local mode with every function under sam local start-lambda
";

pub async fn run(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("build") => {
            let layout = prepare().await?;
            println!("{}", commands(&layout));
            Ok(())
        }
        Some("invoke") => {
            let function = args
                .get(1)
                .ok_or("which function? (e.g. payments-intent)")?;
            let event = match args.get(2) {
                Some(e) => PathBuf::from(e),
                None => samlocal::workspace()
                    .join("functions")
                    .join(function)
                    .join("events/example.json"),
            };
            let (_bridge, layout, env) = local(None).await?;
            let mut cmd = samlocal::sam("invoke", &layout, &env);
            cmd.arg(function).arg("--event").arg(&event);
            let status = tokio::process::Command::from(cmd)
                .status()
                .await
                .map_err(|e| format!("cannot run sam: {e}"))?;
            if !status.success() {
                return Err(format!("sam local invoke {function} failed"));
            }
            Ok(())
        }
        Some("api") => {
            let port = match args.iter().position(|a| a == "--port") {
                Some(i) => args
                    .get(i + 1)
                    .and_then(|p| p.parse::<u16>().ok())
                    .ok_or("--port takes a port number")?,
                None => 3000,
            };
            let (bridge, layout, env) = local(None).await?;
            let mut cmd = samlocal::sam("start-api", &layout, &env);
            cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--warm-containers", "LAZY", "--no-watch"]);
            eprintln!("xtask: sam local start-api on http://127.0.0.1:{port}/api/v1/... (Ctrl-C stops it)");
            let mut child = tokio::process::Command::from(cmd)
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("cannot run sam: {e}"))?;
            // Ctrl-C reaches sam too (same process group); it stops its containers.
            let _ = child.wait().await;
            samlocal::remove_containers(&marker(&bridge));
            Ok(())
        }
        Some("bridge") => {
            samlocal::require()?;
            let (server, _) = crate::db().await?;
            let bridge = DbBridge::start(&server.admin_url, 5432).await?;
            eprintln!(
                "xtask: containers reach the local Postgres as {}:{} (infra/sam/env.json); Ctrl-C stops",
                samlocal::HOST_ALIAS,
                bridge.port()
            );
            wait_for_signal().await
        }
        Some("help") | Some("--help") | None => {
            print!("{HELP}");
            Ok(())
        }
        Some(other) => Err(format!("unknown sam command {other:?}\n\n{HELP}")),
    }
}

/// The binaries built and laid out, the base image there.
async fn prepare() -> Result<Layout, String> {
    samlocal::require()?;
    tokio::task::spawn_blocking(|| {
        samlocal::ensure_base_image()?;
        samlocal::build()
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Local mode's database (migrated, demo data), the functions laid out, a bridge to the
/// database and the env-vars file for it (target/sam/local-env.json).
async fn local(websocket_url: Option<&str>) -> Result<(DbBridge, Layout, PathBuf), String> {
    let layout = prepare().await?;
    let (_, url) = crate::db().await?;
    let bridge = DbBridge::start(&url, 0).await?;
    let env = samlocal::sam_dir().join("local-env.json");
    samlocal::write_env_file(
        &env,
        &samlocal::env_vars(&bridge.container_url(&url)?, websocket_url),
    )?;
    Ok((bridge, layout, env))
}

/// What identifies the containers of this run: their database URL names the bridge's port.
fn marker(bridge: &DbBridge) -> String {
    format!("{}:{}/", samlocal::HOST_ALIAS, bridge.port())
}

async fn wait_for_signal() -> Result<(), String> {
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        _ => return Err("cannot install signal handlers".into()),
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

fn commands(layout: &Layout) -> String {
    let root = samlocal::workspace();
    let rel = |p: &Path| {
        p.strip_prefix(&root)
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| p.to_path_buf())
            .display()
            .to_string()
    };
    format!(
        "Built {} functions for SAM: {}\n\
         \nWith `cargo xtask sam bridge` running (or a Postgres the containers reach as {}:5432):\n\
         \n  sam local invoke payments-intent -t {t} --env-vars infra/sam/env.json \\\
         \n    --event functions/payments-intent/events/example.json \\\
         \n    --parameter-overrides Architecture={a} --invoke-image {i} --skip-pull-image \\\
         \n    --add-host {h}:host-gateway\
         \n  sam local start-api -t {t} --env-vars infra/sam/env.json ... (same options)\n",
        layout.functions.len(),
        rel(&layout.template),
        samlocal::HOST_ALIAS,
        t = rel(&layout.template),
        a = samlocal::ARCHITECTURE,
        i = samlocal::BASE_IMAGE,
        h = samlocal::HOST_ALIAS,
    )
}

/// The functions of `cargo xtask dev --sam`: `sam local start-lambda` on [`LAMBDA_PORT`],
/// serving the Lambda Invoke API the gateway calls, with every function in its container
/// against local mode's database. Returns the command to supervise, the bridge that must
/// live as long, and what marks its containers (for [`cleanup`]).
pub async fn functions(
    url: &str,
    websocket_url: &str,
) -> Result<(tokio::process::Command, DbBridge, String), String> {
    let layout = tokio::task::spawn_blocking(|| {
        samlocal::ensure_base_image()?;
        samlocal::layout()
    })
    .await
    .map_err(|e| e.to_string())??;
    let bridge = DbBridge::start(url, 0).await?;
    let env = samlocal::sam_dir().join("dev-env.json");
    samlocal::write_env_file(
        &env,
        &samlocal::env_vars(&bridge.container_url(url)?, Some(websocket_url)),
    )?;
    let cmd = samlocal::start_lambda(&layout, &env, LAMBDA_PORT);
    let marker = marker(&bridge);
    Ok((tokio::process::Command::from(cmd), bridge, marker))
}

/// Removes the containers `sam local start-lambda` left (it is stopped with SIGTERM).
pub fn cleanup(marker: &str) {
    let removed = samlocal::remove_containers(marker);
    if removed > 0 {
        eprintln!("xtask: removed {removed} SAM containers");
    }
}
