//! Developer commands. Run `cargo xtask help`.

mod bench;
mod client;
mod dev;
mod fixtures;
mod sam;
mod test;

use devkit::localpg;
use std::process::ExitCode;

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
    for name in devkit::supervisor::package_env_vars() {
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
        Some("test") => rt.block_on(test::run(&args[1..])),
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
        // Already said (`cargo xtask test` ends with its summary).
        Err(e) if e.is_empty() => ExitCode::FAILURE,
        Err(e) => {
            say(&format!("xtask: {e}"));
            ExitCode::FAILURE
        }
    }
}

/// A line to stderr, even when nobody reads it any more (the terminal was closed: xtask
/// still has its processes to stop).
pub fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

pub async fn ensure_postgres() -> Result<localpg::Server, String> {
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

/// Test databases are dropped by the test that made them; a killed run leaves some behind.
/// Their names carry their creation time, so old ones can go without touching a run in
/// progress.
pub async fn sweep_stale_test_databases(server: &localpg::Server) {
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
pub async fn db() -> Result<(localpg::Server, String), String> {
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
