//! `gateway`: local mode's API Gateway. Settings come from the environment:
//! `GATEWAY_ADDR` (127.0.0.1:8001), `GATEWAY_INVOKE_URL` (cargo lambda watch,
//! http://127.0.0.1:9000), `GATEWAY_TEMPLATE` (template.yaml), `GATEWAY_WEB_DIR` (web),
//! `GATEWAY_OUTBOUND_QUEUE` (1024 messages per connection), `GATEWAY_IDLE_TIMEOUT_SECONDS` (600),
//! `GATEWAY_CONNECT_RATE` (500 new WebSocket connections a second, as API Gateway),
//! `GATEWAY_INVOKE_CONCURRENCY` (32 invocations of `cargo lambda watch` in flight),
//! `GATEWAY_INVOKE_ROUTES` (a JSON object, function -> the address of its own Runtime
//! Interface Emulator; infra/rehearsal runs one a function).

use gateway::{router, template::Template, Gateway, Settings};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use tokio::signal::unix::{signal, SignalKind};

#[tokio::main]
async fn main() -> ExitCode {
    shared::platform::telemetry::init();
    let env = |k: &str, d: &str| {
        std::env::var(k)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| d.to_string())
    };
    let addr = env("GATEWAY_ADDR", "127.0.0.1:8001");
    let template_path = PathBuf::from(env("GATEWAY_TEMPLATE", "template.yaml"));
    let template = match Template::load(&template_path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("gateway: {e}");
            return ExitCode::from(2);
        }
    };
    let defaults = Settings::default();
    let number = |k: &str, d: u64| env(k, &d.to_string()).parse::<u64>().unwrap_or(d);
    let invoke_routes = match serde_json::from_str(&env("GATEWAY_INVOKE_ROUTES", "{}")) {
        Ok(routes) => routes,
        Err(e) => {
            eprintln!("gateway: GATEWAY_INVOKE_ROUTES is not a JSON object of strings: {e}");
            return ExitCode::from(2);
        }
    };
    let settings = Settings {
        invoke_url: env("GATEWAY_INVOKE_URL", "http://127.0.0.1:9000"),
        invoke_routes,
        web_dir: PathBuf::from(env("GATEWAY_WEB_DIR", "web")),
        outbound_queue: number("GATEWAY_OUTBOUND_QUEUE", defaults.outbound_queue as u64).max(1)
            as usize,
        idle_timeout: std::time::Duration::from_secs(number(
            "GATEWAY_IDLE_TIMEOUT_SECONDS",
            defaults.idle_timeout.as_secs(),
        )),
        invoke_concurrency: number(
            "GATEWAY_INVOKE_CONCURRENCY",
            defaults.invoke_concurrency as u64,
        )
        .clamp(1, 4096) as usize,
        connect_rate: number("GATEWAY_CONNECT_RATE", u64::from(defaults.connect_rate))
            .clamp(1, 1_000_000) as u32,
        ..defaults
    };
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("gateway: cannot listen on {addr}: {e}");
            return ExitCode::from(2);
        }
    };
    tracing::info!(
        addr,
        http_routes = template.http_routes.len(),
        ws_routes = template.ws_routes.len(),
        invoke_url = settings.invoke_url,
        "gateway listening"
    );
    let app = router(Gateway::new(template, settings))
        .into_make_service_with_connect_info::<SocketAddr>();
    let shutdown = async {
        if let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
    };
    match axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gateway: {e}");
            ExitCode::FAILURE
        }
    }
}
