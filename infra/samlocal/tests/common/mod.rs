//! What the SAM local tests share: the skip rule, the build, a test database with the demo
//! data reachable from the containers, and cleanup.

#![allow(dead_code)]

use devkit::testdb::TestDb;
use samlocal::{DbBridge, Layout};
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Whether SAM local can run here. Where it cannot (no Docker daemon, no SAM CLI), the test
/// FAILS, saying why, unless BILLWIRE_SKIP_SAM=1 says to skip it: then it prints SKIPPED
/// with the reason (and `cargo xtask test` repeats it after the run). A machine that cannot
/// run these tests never passes them silently.
pub fn sam_can_run(test: &str) -> bool {
    let Some(why) = samlocal::unavailable() else {
        return true;
    };
    if std::env::var("BILLWIRE_SKIP_SAM").is_ok_and(|v| v == "1") {
        eprintln!("SKIPPED: {test}: SAM local cannot run here: {why} (BILLWIRE_SKIP_SAM=1)");
        return false;
    }
    panic!(
        "SAM local cannot run here: {why}.\n\
         Install Docker and the SAM CLI (apt-get install docker.io; pip install aws-sam-cli), \
         or set BILLWIRE_SKIP_SAM=1 to skip the SAM local tests (they then say SKIPPED)."
    );
}

/// A fresh database with the demo data (the checked-in example events name its users and
/// plans, and carry tokens signed with local mode's secret), the functions built and laid
/// out for SAM, the base image, a bridge from the containers to the database and the
/// `--env-vars` file for it.
pub struct World {
    pub db: TestDb,
    pub layout: Layout,
    pub bridge: DbBridge,
    pub env_file: PathBuf,
    pub log_dir: PathBuf,
}

impl World {
    pub async fn new(test: &str, websocket_url: Option<&str>) -> World {
        let db = TestDb::new().await;
        let loaded = demo::load(&mut db.client().await).await.expect("demo data");
        assert!(!loaded.accounts_created.is_empty(), "demo data loaded");
        let layout = tokio::task::spawn_blocking(|| {
            samlocal::ensure_base_image()?;
            samlocal::build()
        })
        .await
        .expect("build task")
        .unwrap_or_else(|e| panic!("{e}"));
        let bridge = DbBridge::start(&db.url, 0)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let container_url = bridge.container_url(&db.url).expect("database URL");
        let log_dir = samlocal::sam_dir()
            .join("runs")
            .join(format!("{test}-{}", db.name));
        std::fs::create_dir_all(&log_dir).expect("log dir");
        let env_file = log_dir.join("env.json");
        samlocal::write_env_file(
            &env_file,
            &samlocal::env_vars(&container_url, websocket_url),
        )
        .expect("env file");
        World {
            db,
            layout,
            bridge,
            env_file,
            log_dir,
        }
    }

    /// The events recorded for a payment: (type, user_id).
    pub async fn events_of(&self, payment_id: &str) -> Vec<(String, Option<uuid::Uuid>)> {
        self.db
            .client()
            .await
            .query(
                "SELECT type, user_id FROM events WHERE data->>'payment_id' = $1 ORDER BY id",
                &[&payment_id],
            )
            .await
            .expect("events")
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    }
}

impl Drop for World {
    /// Containers a stopped `sam` left behind carry this database's name in their
    /// environment.
    fn drop(&mut self) {
        let removed = samlocal::remove_containers(&self.db.name);
        if removed > 0 {
            eprintln!("removed {removed} leftover SAM containers");
        }
    }
}

/// An API Gateway proxy reply: its status and JSON body.
pub fn reply(reply: &Value) -> (u16, Value) {
    let status = reply["statusCode"].as_u64().unwrap_or(0) as u16;
    let body = reply["body"]
        .as_str()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (status, body)
}

pub async fn wait_for_port(port: u16, timeout: Duration, what: &str, log: &std::path::Path) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!(
        "{what} is not listening on {port} after {timeout:?}:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// Stops a `sam local start-*` the way Ctrl-C does (it then stops its containers), and
/// kills it if it lingers.
pub async fn stop_sam(proc: &mut testkit::stack::Proc) {
    proc.signal("INT");
    if proc.wait_exit(Duration::from_secs(30)).await.is_none() {
        proc.kill().await;
    }
}
