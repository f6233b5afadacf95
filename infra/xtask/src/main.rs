//! Developer commands. Run `cargo xtask help`.

mod bench;
mod client;
mod dev;
mod fixtures;
mod sam;

use devkit::localpg;
use std::process::{Command, ExitCode};

const HELP: &str = "\
cargo xtask <command>

  dev        local mode: Postgres, migrations, demo data, the functions under cargo lambda
             watch, the gateway and the connector; prints the URLs and demo logins
             [--sam: the functions in containers under sam local start-lambda instead]
  sam        SAM local: `sam build|invoke|api|bridge` (`cargo xtask sam help`)
  test       the whole test suite against a real Postgres (started under target/pg if none answers)
  db         Postgres up, database `billwire` migrated and loaded with demo data; prints its URL
  listen     print live events over the WebSocket (default: the demo admin)
             [--email E --password P --account SLUG --after ID --url http://127.0.0.1:8001]
  order      place and confirm an order (default: the demo customer) [--method pm_card_chargeDeclined]
  bench      benchmarks that print numbers: `bench outbox`, `bench fanout [clients] [events]`
             (set BILLWIRE_PROFILE=release after `cargo build --release --bins` for release builds)
  fixtures   rewrite functions/*/events/*.json, the example events for `cargo lambda invoke`
";

pub use devkit::secrets::{LOCAL_JWT_SECRET, LOCAL_WEBHOOK_SECRET};
pub const LOCAL_DATABASE: &str = "billwire";

fn main() -> ExitCode {
    // Run through `cargo run`; the cargo builds started from here must look like ones
    // started from a shell, or they rebuild everything (see `package_env_vars`).
    for name in testkit::stack::package_env_vars() {
        std::env::remove_var(name);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("xtask: cannot start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match args.first().map(String::as_str) {
        Some("test") => rt.block_on(test(&args[1..])),
        Some("db") => rt.block_on(db()).map(|(_, url)| println!("{url}")),
        Some("dev") => rt.block_on(dev::run(args[1..].iter().any(|a| a == "--sam"))),
        Some("sam") => rt.block_on(sam::run(&args[1..])),
        Some("listen") => {
            client::Options::parse(&args[1..], demo::DEMO_ADMIN.0, demo::DEMO_ADMIN.1)
                .and_then(|o| rt.block_on(client::listen(o)))
        }
        Some("order") => {
            client::Options::parse(&args[1..], demo::DEMO_CUSTOMER.0, demo::DEMO_CUSTOMER.1)
                .and_then(|o| rt.block_on(client::order(o)))
        }
        Some("fixtures") => fixtures::write(),
        Some("bench") => rt.block_on(async {
            let server = ensure_postgres().await?;
            // TestDb and the stack find the server through DATABASE_URL.
            std::env::set_var("DATABASE_URL", &server.admin_url);
            bench::run(&args[1..]).await
        }),
        Some("help") | Some("--help") | None => {
            print!("{HELP}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command {other:?}\n\n{HELP}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn ensure_postgres() -> Result<localpg::Server, String> {
    let server = localpg::ensure().await?;
    match &server.private {
        Some(dir) => eprintln!(
            "xtask: no Postgres at 127.0.0.1:5432; using the private cluster in {}",
            dir.display()
        ),
        None => eprintln!("xtask: using Postgres at {}", server.admin_url),
    }
    Ok(server)
}

async fn test(extra: &[String]) -> Result<(), String> {
    dev::require_cargo_lambda()?;
    browser_test_dependencies()?;
    let server = ensure_postgres().await?;
    sweep_stale_test_databases(&server).await;
    // The end-to-end tests run the real binaries: the gateway, the connector, and every
    // function under cargo lambda watch.
    eprintln!("xtask: building every binary");
    let status = Command::new("cargo")
        .args(["build", "--workspace", "--bins"])
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("build failed".into());
    }
    let nextest = Command::new("cargo")
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    let mut cmd = Command::new("cargo");
    if nextest {
        cmd.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
    } else {
        eprintln!("xtask: cargo-nextest not found; running `cargo test`");
        cmd.args(["test", "--workspace", "--no-fail-fast"]);
    }
    cmd.args(extra).env("DATABASE_URL", &server.admin_url);
    let status = cmd.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    sam::report_skip();
    if !status.success() {
        return Err("tests failed".into());
    }
    if nextest {
        // nextest does not run doctests.
        let status = Command::new("cargo")
            .args(["test", "--workspace", "--doc"])
            .status()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if !status.success() {
            return Err("doctests failed".into());
        }
    }
    Ok(())
}

/// The dashboard's browser test (an e2e test) drives Chromium with playwright-core from
/// Node. Chromium and Node are the machine's to install; the npm package is fetched here.
fn browser_test_dependencies() -> Result<(), String> {
    let runs = |cmd: &str, arg: &str| {
        Command::new(cmd)
            .arg(arg)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !runs("node", "--version") || !runs("npm", "--version") {
        return Err("the dashboard's browser test needs Node 18+ and npm \
                    (Debian/Ubuntu: apt-get install nodejs npm)"
            .into());
    }
    if testkit::browser::chromium().is_none() {
        return Err(
            "the dashboard's browser test needs Chromium (Debian/Ubuntu: apt-get install \
                    chromium), or CHROMIUM set to a Chrome or Chromium binary"
                .into(),
        );
    }
    let tests = localpg::workspace_root().join("web").join("tests");
    if !tests.join("node_modules").join("playwright-core").exists() {
        eprintln!("xtask: npm ci in web/tests (playwright-core, for the browser test)");
        let ok = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&tests)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err("npm ci in web/tests failed".into());
        }
    }
    Ok(())
}

/// Test databases are dropped by the test that made them; a killed run leaves some behind.
/// Their names carry their creation time, so old ones can go without touching a run in
/// progress.
async fn sweep_stale_test_databases(server: &localpg::Server) {
    let Ok((client, conn)) =
        tokio_postgres::connect(&server.admin_url, tokio_postgres::NoTls).await
    else {
        return;
    };
    tokio::spawn(conn);
    let cutoff = chrono_free_unix_now() - 3 * 3600;
    let Ok(rows) = client
        .query(
            "SELECT datname FROM pg_database WHERE datname LIKE 'billwire\\_test\\_%'",
            &[],
        )
        .await
    else {
        return;
    };
    for row in rows {
        let name: String = row.get(0);
        let created = name
            .split('_')
            .nth(2)
            .and_then(|t| t.parse::<i64>().ok())
            .unwrap_or(0);
        if created < cutoff {
            let _ = client
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await;
        }
    }
}

fn chrono_free_unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Postgres up, the local database created, migrated and loaded with demo data.
async fn db() -> Result<(localpg::Server, String), String> {
    let server = ensure_postgres().await?;
    let (admin, conn) = tokio_postgres::connect(&server.admin_url, tokio_postgres::NoTls)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let exists = admin
        .query_opt(
            "SELECT 1 FROM pg_database WHERE datname = $1",
            &[&LOCAL_DATABASE],
        )
        .await
        .map_err(|e| e.to_string())?
        .is_some();
    if !exists {
        admin
            .batch_execute(&format!("CREATE DATABASE {LOCAL_DATABASE}"))
            .await
            .map_err(|e| e.to_string())?;
    }
    let url = server.url(LOCAL_DATABASE);
    let connect =
        shared::platform::database::Connect::new(&url, None).map_err(|e| e.to_string())?;
    let pool = shared::platform::database::pool(&connect, 2).map_err(|e| e.to_string())?;
    let mut client = pool.get().await.map_err(|e| e.to_string())?;
    shared::platform::database::migrate(&mut client)
        .await
        .map_err(|e| e.to_string())?;
    let loaded = demo::load(&mut client).await.map_err(|e| e.to_string())?;
    if !loaded.accounts_created.is_empty() {
        eprintln!(
            "xtask: loaded demo accounts: {}",
            loaded.accounts_created.join(", ")
        );
    }
    Ok((server, url))
}
