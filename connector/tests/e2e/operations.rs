//! What operators see: the connector's health check, and its exit when a failure no retry
//! fixes persists (a management API that refuses it, a database that refuses its role), so
//! that ECS restarts it and the failure is visible. Real processes, a real Postgres, and a
//! stand-in management API that answers 403 to everything.

use devkit::testdb::TestDb;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

/// A management API that refuses every request, as API Gateway does when the caller lacks
/// `execute-api:ManageConnections` or calls through a private endpoint. Returns its URL and
/// how many requests it has refused.
async fn refusing_management_api() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let refused = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = refused.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    // One request per read is enough for the SDK's small posts.
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let body = r#"{"message":"Forbidden"}"#;
                    let reply = format!(
                        "HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\nx-amzn-errortype: ForbiddenException\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if socket.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, refused)
}

fn connector(
    database_url: &str,
    endpoint: &str,
    health_file: &std::path::Path,
    fatal_after_ms: u32,
) -> Child {
    Command::new(env!("CARGO_BIN_EXE_connector"))
        .env("DATABASE_URL", database_url)
        .env("WEBSOCKET_MANAGEMENT_ENDPOINT", endpoint)
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_REGION", "us-east-1")
        .env("CONNECTOR_FATAL_AFTER_MS", fatal_after_ms.to_string())
        .env("CONNECTOR_POLL_MS", "200")
        .env("CONNECTOR_HEALTH_FILE", health_file)
        .env("LOG_FORMAT", "text")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the connector")
}

async fn exit_within(child: &mut Child, limit: Duration) -> (Option<i32>, String) {
    let status = tokio::time::timeout(limit, child.wait()).await;
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ =
            tokio::time::timeout(Duration::from_secs(5), pipe.read_to_string(&mut stderr)).await;
    }
    match status {
        Ok(Ok(status)) => (status.code(), stderr),
        _ => (None, stderr),
    }
}

fn health(file: &std::path::Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_connector"))
        .arg("health")
        .env("CONNECTOR_HEALTH_FILE", file)
        .output()
        .expect("run connector health")
}

fn temp_file(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("{name}-{}", uuid::Uuid::new_v4()))
}

/// A test database with one connection waiting for its `subscribed` message, so the
/// connector has something to post.
async fn subscribing_connection() -> TestDb {
    let db = TestDb::new().await;
    let client = db.client().await;
    let (account, user) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    client
        .batch_execute(&format!(
            "INSERT INTO accounts (id, name, slug) VALUES ('{account}', 'Ops', 'ops');
             INSERT INTO users (id, account_id, email, name, password_hash, role)
               VALUES ('{user}', '{account}', 'admin@ops.test', 'Admin', 'x', 'admin');
             INSERT INTO ws_connections (connection_id, account_id, user_id, role, state, requested_after, generation)
               VALUES ('refused=', '{account}', '{user}', 'admin', 'subscribing', 0, 1);"
        ))
        .await
        .expect("a subscribing connection");
    db
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_management_api_that_cannot_be_reached_ends_the_connector_with_the_cause() {
    let db = subscribing_connection().await;
    // Nothing listens on the discard port.
    let file = temp_file("unreachable.health");
    let mut process = connector(&db.url, "http://127.0.0.1:9", &file, 2000);
    let (code, stderr) = exit_within(&mut process, Duration::from_secs(60)).await;
    assert_eq!(code, Some(1), "exit code; stderr:\n{stderr}");
    assert!(
        stderr.contains("the management API cannot be reached"),
        "the message names the cause:\n{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_management_api_that_refuses_everything_ends_the_connector_with_the_cause() {
    let db = subscribing_connection().await;
    let (endpoint, refused) = refusing_management_api().await;
    let file = temp_file("refused.health");
    // Long enough to be seen healthy first (the health file is refreshed every 2 s).
    let mut process = connector(&db.url, &endpoint, &file, 8000);

    // While it is up and its database answers, the health check passes.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !health(&file).status.success() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(health(&file).status.success(), "healthy while running");

    let (code, stderr) = exit_within(&mut process, Duration::from_secs(60)).await;
    assert_eq!(code, Some(1), "exit code; stderr:\n{stderr}");
    assert!(
        stderr.contains("refuses the connector (403"),
        "the message names the cause:\n{stderr}"
    );
    assert!(refused.load(std::sync::atomic::Ordering::Relaxed) > 0);
    // Gone, so unhealthy.
    assert!(!health(&file).status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_refuses_the_role_ends_the_connector_with_the_cause() {
    let db = TestDb::new().await;
    let url = db
        .url
        .replacen("postgres://postgres@", "postgres://no_such_role@", 1);
    assert_ne!(url, db.url, "test database URLs name the postgres role");
    let file = temp_file("refused-role.health");
    let mut process = connector(&url, "http://127.0.0.1:9", &file, 2000);
    let (code, stderr) = exit_within(&mut process, Duration::from_secs(60)).await;
    assert_eq!(code, Some(1), "exit code; stderr:\n{stderr}");
    assert!(
        stderr.contains("Postgres refuses the connector") && stderr.contains("no_such_role"),
        "the message names the cause:\n{stderr}"
    );
    assert!(!health(&file).status.success(), "never healthy");
}

/// The control session asks the server to notice a dead peer in seconds, not the two hours
/// of Postgres's defaults, so a leader whose host vanishes loses its lock quickly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_session_has_server_side_keepalives() {
    let db = TestDb::new().await;
    let mut connect = shared::platform::database::Connect::new(&db.url, None).expect("connect");
    connector::session::configure(&mut connect, "keepalive-test");
    let session = connector::session::Session::connect(&connect)
        .await
        .expect("a session");
    for (setting, expected) in [
        ("tcp_keepalives_idle", "5"),
        ("tcp_keepalives_interval", "2"),
        ("tcp_keepalives_count", "3"),
        ("tcp_user_timeout", "15000"),
    ] {
        let row = session
            .client
            .query_one(
                "SELECT setting FROM pg_settings WHERE name = $1",
                &[&setting],
            )
            .await
            .expect("pg_settings");
        assert_eq!(row.get::<_, String>(0), expected, "{setting}");
    }
}
