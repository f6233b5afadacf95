//! Test databases: a fresh database per test, cloned from a migrated template, and
//! requests sent as the exact API Gateway HTTP API (payload 2.0) events that AWS and
//! `cargo lambda invoke` deliver, through the route table.

pub use crate::gateway_events::{HttpEvent, WsEvent};
use crate::localpg;
use lambda_http::aws_lambda_events::apigw::ApiGatewayProxyResponse;
use lambda_http::Body;
use serde_json::Value;
use shared::api::{routes, ApiResponse, App};
use shared::platform::config::Config;
use shared::platform::database::Client;
use shared::platform::{database, telemetry};
use tokio::sync::OnceCell;

pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";
pub const WEBHOOK_SECRET: &str = "whsec_test_secret_0123456789";

/// A database of its own for one test, dropped when the test ends.
pub struct TestDb {
    pub name: String,
    pub url: String,
    pub app: App,
    admin_url: String,
}

static SERVER: OnceCell<Result<localpg::Server, String>> = OnceCell::const_new();

async fn server() -> localpg::Server {
    let result = SERVER.get_or_init(localpg::ensure).await;
    match result {
        Ok(s) => s.clone(),
        Err(e) => panic!("no Postgres for tests: {e}"),
    }
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"));
    tokio::spawn(conn);
    client
}

/// The migrated template database for the current migrations, built once per machine
/// (processes race for an advisory lock; the loser finds it built).
async fn template(server: &localpg::Server) -> String {
    let fingerprint = database::migration_fingerprint();
    let digest = {
        use sha2::{Digest, Sha256};
        hex::encode(&Sha256::digest(fingerprint.as_bytes())[..6])
    };
    let name = format!("billwire_template_{digest}");
    let admin = connect(&server.admin_url).await;
    if database_exists(&admin, &name).await {
        return name;
    }
    admin
        .execute("SELECT pg_advisory_lock(7394461024938240003)", &[])
        .await
        .expect("template lock");
    if !database_exists(&admin, &name).await {
        let building = format!("{name}_building");
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"))
            .await
            .expect("drop stale template");
        admin
            .batch_execute(&format!("CREATE DATABASE {building}"))
            .await
            .expect("create template");
        {
            let mut client = connect(&server.url(&building)).await;
            database::migrate(&mut client)
                .await
                .expect("migrate template");
        }
        // Renaming needs the template to have no sessions; ours just closed.
        let mut renamed = false;
        for _ in 0..50 {
            if admin
                .batch_execute(&format!("ALTER DATABASE {building} RENAME TO {name}"))
                .await
                .is_ok()
            {
                renamed = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(renamed, "could not rename the template database");
    }
    admin
        .execute("SELECT pg_advisory_unlock(7394461024938240003)", &[])
        .await
        .expect("template unlock");
    name
}

async fn database_exists(admin: &tokio_postgres::Client, name: &str) -> bool {
    admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .expect("query pg_database")
        .is_some()
}

impl TestDb {
    pub async fn new() -> TestDb {
        telemetry::init_with_default("warn");
        let server = server().await;
        Self::new_on(&server).await
    }

    /// A fresh database on a given server (a test's own cluster).
    pub async fn new_on(server: &localpg::Server) -> TestDb {
        telemetry::init_with_default("warn");
        let server = server.clone();
        let template = template(&server).await;
        let name = format!(
            "billwire_test_{}_{}",
            chrono::Utc::now().timestamp(),
            uuid::Uuid::new_v4().simple()
        );
        let admin = connect(&server.admin_url).await;
        // Concurrent clones of one template may briefly collide; retry.
        let mut last_error = None;
        for _ in 0..20 {
            match admin
                .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
                .await
            {
                Ok(()) => {
                    last_error = None;
                    break;
                }
                Err(e) => last_error = Some(e),
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        if let Some(e) = last_error {
            panic!("create test database: {e}");
        }
        let url = server.url(&name);
        let app = App::new(test_config(&url)).expect("test app");
        TestDb {
            name,
            url,
            app,
            admin_url: server.admin_url.clone(),
        }
    }

    pub async fn client(&self) -> Client {
        self.app.pool.get().await.expect("pool connection")
    }

    /// A connection outside the pool (for LISTEN, or holding a transaction open).
    pub async fn raw(&self) -> tokio_postgres::Client {
        connect(&self.url).await
    }

    /// Runs one SQL count, e.g. `count("payments")`.
    pub async fn count(&self, table: &str) -> i64 {
        self.client()
            .await
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .expect("count")
            .get(0)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime; do the async cleanup on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async {
                    if let Ok((client, conn)) =
                        tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await
                    {
                        tokio::spawn(conn);
                        let _ = client
                            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .await;
                    }
                });
            }
        })
        .join();
    }
}

pub fn test_config(database_url: &str) -> Config {
    test_config_with(database_url, &[])
}

/// The test configuration with some settings changed (`("DB_LOCK_TIMEOUT_MS", "500")`).
pub fn test_config_with(database_url: &str, settings: &[(&str, &str)]) -> Config {
    let url = database_url.to_string();
    let settings: Vec<(String, String)> = settings
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_lookup(move |name| {
        if let Some((_, v)) = settings.iter().find(|(k, _)| k == name) {
            return Some(v.clone());
        }
        match name {
            "DATABASE_URL" => Some(url.clone()),
            "JWT_SECRET" => Some(JWT_SECRET.into()),
            "WEBHOOK_SECRET" => Some(WEBHOOK_SECRET.into()),
            "DB_POOL_SIZE" => Some("8".into()),
            _ => None,
        }
    })
    .expect("test config")
}

impl HttpEvent {
    /// Runs the event through the handler that `api::routes` names for its method and
    /// route, exactly as the function serving it would.
    pub async fn send(&self, app: &App) -> Reply {
        let route = routes::find(self.method(), self.route()).unwrap_or_else(|| {
            panic!("no route {} {} in api::routes", self.method(), self.route())
        });
        let request = self.request().expect("valid event");
        Reply::from(shared::api::dispatch(route.handler, app.clone(), request).await)
    }
}

impl WsEvent {
    /// Runs the event through the WebSocket route `api::routes` names for its route key
    /// (`$connect`, `$disconnect`, or `$default` for every message).
    pub async fn send(&self, app: &App) -> ApiGatewayProxyResponse {
        let key = match self.route_key() {
            key @ ("$connect" | "$disconnect") => key,
            _ => "$default",
        };
        let route = routes::WEBSOCKET_ROUTES
            .iter()
            .find(|r| r.route_key == key)
            .unwrap_or_else(|| panic!("no WebSocket route {key} in api::routes"));
        let event = serde_json::from_value(self.to_json()).expect("a valid WebSocket event");
        (route.handler)(app.clone(), event).await
    }
}

/// A handler's response, decoded.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Value,
}

impl From<ApiResponse> for Reply {
    fn from(response: ApiResponse) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = match response.body() {
            Body::Text(t) => serde_json::from_str(t).unwrap_or(Value::String(t.clone())),
            Body::Binary(b) => serde_json::from_slice(b).unwrap_or(Value::Null),
            _ => Value::Null,
        };
        Reply {
            status,
            headers,
            body,
        }
    }
}

impl Reply {
    /// The error code of an error reply (`{"error":{"code":..}}`).
    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Self {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        self
    }

    /// Asserts a 4xx JSON error with `code` and a non-empty message.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        assert_eq!(
            self.error_code(),
            code,
            "unexpected error code; body: {}",
            self.body
        );
        assert!(
            self.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "error without a message: {}",
            self.body
        );
        assert_eq!(
            self.headers
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/json")
        );
    }
}
