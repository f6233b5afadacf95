//! db-migrate as CloudFormation's custom resource, against a real Postgres
//! (127.0.0.1:5432, user postgres, trust; `BILLWIRE_TEST_PG` overrides the server URL) and
//! a small HTTP server standing in for the pre-signed response URL.
//!
//! Each test makes its own database and drops it.

use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

fn server_url() -> String {
    std::env::var("BILLWIRE_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

async fn admin() -> tokio_postgres::Client {
    let (client, conn) =
        tokio_postgres::connect(&format!("{}/postgres", server_url()), tokio_postgres::NoTls)
            .await
            .expect("a Postgres at 127.0.0.1:5432 (user postgres, trust), or BILLWIRE_TEST_PG");
    tokio::spawn(conn);
    client
}

/// A fresh, empty database; dropped by `drop_db`.
async fn fresh_db(tag: &str) -> (String, String) {
    let name = format!("dbmigrate_{tag}_{}", std::process::id());
    let admin = admin().await;
    // Two statements: DROP/CREATE DATABASE cannot share an implicit transaction.
    for sql in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("CREATE DATABASE {name}"),
    ] {
        admin.batch_execute(&sql).await.expect("create database");
    }
    (name.clone(), format!("{}/{name}", server_url()))
}

async fn drop_db(name: &str) {
    admin()
        .await
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .expect("drop database");
}

/// One request as the stand-in for S3 received it.
#[derive(Debug)]
struct Received {
    request_line: String,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Serves `http://127.0.0.1:<port>/response?signed`, answering 200 to each request and
/// passing what it received to the test.
async fn response_url() -> (String, mpsc::UnboundedReceiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head_end, headers, request_line) = loop {
                    let n = socket.read(&mut chunk).await.expect("read");
                    assert!(n > 0, "connection closed before the headers ended");
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..pos]).to_string();
                        let mut lines = head.split("\r\n");
                        let request_line = lines.next().unwrap_or_default().to_string();
                        let headers: Vec<(String, String)> = lines
                            .filter_map(|l| l.split_once(':'))
                            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                            .collect();
                        break (pos + 4, headers, request_line);
                    }
                };
                let length: usize = headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .map(|(_, v)| v.parse().expect("content-length"))
                    .expect("a Content-Length (S3 requires one)");
                while buf.len() < head_end + length {
                    let n = socket.read(&mut chunk).await.expect("read body");
                    assert!(n > 0, "connection closed inside the body");
                    buf.extend_from_slice(&chunk[..n]);
                }
                let body =
                    serde_json::from_slice(&buf[head_end..head_end + length]).expect("JSON body");
                socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await
                    .expect("answer");
                let _ = tx.send(Received {
                    request_line,
                    headers,
                    body,
                });
            });
        }
    });
    (
        format!("http://127.0.0.1:{port}/response?X-Amz-Signature=abc"),
        rx,
    )
}

fn event(request_type: &str, url: &str, physical: Option<&str>) -> Value {
    let mut e = json!({
        "RequestType": request_type,
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:db-migrate",
        "ResponseURL": url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/billwire/0a1b",
        "RequestId": "req-1",
        "LogicalResourceId": "Migrations",
        "ResourceType": "Custom::Migrations",
        "ResourceProperties": {"ServiceToken": "x", "MigrationsVersion": "arn:...:1"}
    });
    if let Some(p) = physical {
        e["PhysicalResourceId"] = json!(p);
    }
    e
}

fn env(url: &str) -> impl Fn(&str) -> Option<String> {
    let url = url.to_string();
    move |name| (name == "DATABASE_URL").then(|| url.clone())
}

async fn received(rx: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a response was PUT to the response URL")
        .expect("server running")
}

fn assert_well_formed(r: &Received, status: &str) {
    assert!(
        r.request_line
            .starts_with("PUT /response?X-Amz-Signature=abc "),
        "{}",
        r.request_line
    );
    // The URL is signed for an empty Content-Type: the header is there and empty.
    assert_eq!(r.header("content-type"), Some(""), "{:?}", r.headers);
    assert_eq!(r.body["Status"], status, "{}", r.body);
    for field in [
        "StackId",
        "RequestId",
        "LogicalResourceId",
        "PhysicalResourceId",
        "Reason",
    ] {
        assert!(r.body[field].is_string(), "{field} missing in {}", r.body);
    }
    assert_eq!(r.body["RequestId"], "req-1");
    assert_eq!(r.body["LogicalResourceId"], "Migrations");
    assert!(serde_json::to_vec(&r.body).expect("json").len() < 4096);
}

#[tokio::test]
async fn create_migrates_and_answers_success() {
    let (name, url) = fresh_db("create").await;
    let (response_url, mut rx) = response_url().await;
    let answer = db_migrate::handle(
        event("Create", &response_url, None),
        Duration::from_secs(120),
        env(&url),
    )
    .await
    .expect("handled");
    let r = received(&mut rx).await;
    assert_well_formed(&r, "SUCCESS");
    assert_eq!(r.body, answer);
    assert_eq!(r.body["PhysicalResourceId"], db_migrate::PHYSICAL_ID);
    assert!(r.body["Data"]["SchemaVersion"]
        .as_str()
        .is_some_and(|v| !v.is_empty()));

    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    for table in ["events", "ws_connections", "refinery_schema_history"] {
        let found: Option<String> = client
            .query_one("SELECT to_regclass($1)::text", &[&table])
            .await
            .expect("query")
            .get(0);
        assert_eq!(
            found.as_deref(),
            Some(table),
            "table {table} exists after Create"
        );
    }
    drop(client);

    // An update with the same database: nothing left to apply, still SUCCESS, same id.
    db_migrate::handle(
        event("Update", &response_url, Some("billwire-migrations")),
        Duration::from_secs(120),
        env(&url),
    )
    .await
    .expect("handled");
    let r = received(&mut rx).await;
    assert_well_formed(&r, "SUCCESS");
    assert_eq!(r.body["PhysicalResourceId"], "billwire-migrations");
    drop_db(&name).await;
}

#[tokio::test]
async fn a_bad_database_url_answers_failed_with_a_reason() {
    let (response_url, mut rx) = response_url().await;
    // Nothing listens on port 1.
    let bad = "postgres://postgres@127.0.0.1:1/nothing";
    db_migrate::handle(
        event("Create", &response_url, None),
        Duration::from_secs(60),
        env(bad),
    )
    .await
    .expect("the answer was delivered");
    let r = received(&mut rx).await;
    assert_well_formed(&r, "FAILED");
    let reason = r.body["Reason"].as_str().expect("reason");
    assert!(reason.contains("connect"), "{reason}");

    // Not even a URL, or none at all: FAILED, naming the variable.
    for get in [env("definitely not a url"), env("")] {
        db_migrate::handle(
            event("Update", &response_url, Some("p")),
            Duration::from_secs(60),
            get,
        )
        .await
        .expect("the answer was delivered");
        let r = received(&mut rx).await;
        assert_well_formed(&r, "FAILED");
        assert!(
            r.body["Reason"]
                .as_str()
                .expect("reason")
                .contains("DATABASE_URL"),
            "{}",
            r.body
        );
        assert_eq!(r.body["PhysicalResourceId"], "p");
    }
}

#[tokio::test]
async fn a_database_that_never_answers_fails_before_the_deadline() {
    // Accepts connections and says nothing: the migration would wait forever.
    let silent = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = silent.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let (response_url, mut rx) = response_url().await;
    let started = std::time::Instant::now();
    let remaining = db_migrate::ANSWER_RESERVE + Duration::from_secs(2);
    db_migrate::handle(
        event("Create", &response_url, None),
        remaining,
        env(&format!("postgres://postgres@127.0.0.1:{port}/x")),
    )
    .await
    .expect("the answer was delivered");
    let r = received(&mut rx).await;
    assert_well_formed(&r, "FAILED");
    assert!(
        started.elapsed() < remaining,
        "answered within the function's time"
    );
}

#[tokio::test]
async fn delete_answers_success_without_touching_the_database() {
    let (response_url, mut rx) = response_url().await;
    // A database URL that would fail if anything tried it.
    db_migrate::handle(
        event("Delete", &response_url, Some("billwire-migrations")),
        Duration::from_secs(60),
        env("postgres://postgres@127.0.0.1:1/nothing"),
    )
    .await
    .expect("handled");
    let r = received(&mut rx).await;
    assert_well_formed(&r, "SUCCESS");
    assert_eq!(r.body["PhysicalResourceId"], "billwire-migrations");
}

#[tokio::test]
async fn a_direct_invoke_still_migrates() {
    let (name, url) = fresh_db("direct").await;
    let out = db_migrate::handle(json!({}), Duration::from_secs(120), env(&url))
        .await
        .expect("migrated");
    assert_eq!(out["migrated"], true);
    assert_eq!(out["demo_accounts_created"], json!([]));
    drop_db(&name).await;
}

#[tokio::test]
async fn an_unreachable_response_url_fails_the_invocation_so_lambda_retries() {
    let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let err = db_migrate::handle(
        event("Delete", &format!("http://127.0.0.1:{port}/r"), Some("p")),
        Duration::from_secs(60),
        env(""),
    )
    .await
    .expect_err("undeliverable answer");
    assert!(err.to_string().contains("response URL"), "{err}");
}

#[test]
fn the_checked_in_ca_bundle_loads() {
    // What DatabaseCaFile points at by default (/opt/rds-ca-bundle.pem in AWS).
    let bundle = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../infra/certs/rds-ca-bundle.pem");
    shared::platform::database::Connect::new(
        "postgres://u@db.example.us-east-1.rds.amazonaws.com/billwire?sslmode=require",
        Some(&bundle),
    )
    .map(|_| ())
    .expect("the bundle parses and holds certificates");
}
