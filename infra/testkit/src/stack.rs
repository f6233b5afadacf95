//! The whole stack as real processes: a fresh database, `cargo lambda watch` serving the
//! function binaries, the local gateway in front of it, and connector replicas talking to the
//! gateway's management API through the AWS SDK. Everything is killed when the test ends.

use devkit::testdb::{TestDb, JWT_SECRET, WEBHOOK_SECRET};
use serde_json::{json, Value};
use shared::billing::accounts::{self, NewAccount, NewUser};
use shared::billing::auth::{Principal, Role};
use shared::billing::plans::{self, NewPlan};
use shared::billing::values::{Amount, Currency, Email, Password, Slug};
use shared::store::Tx;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use uuid::Uuid;

pub use devkit::supervisor::{package_env_vars, Proc};

pub fn workspace() -> PathBuf {
    devkit::localpg::workspace_root()
}

/// Whether to run release builds (`BILLWIRE_PROFILE=release`, for benchmarks); tests use
/// the debug builds `cargo xtask test` makes first.
fn release() -> bool {
    std::env::var("BILLWIRE_PROFILE").is_ok_and(|p| p == "release")
}

/// Where the gateway and connector binaries are.
fn bin_dir() -> PathBuf {
    workspace()
        .join("target")
        .join(if release() { "release" } else { "debug" })
}

pub fn free_port() -> u16 {
    devkit::localpg::free_port().expect("a free port")
}

fn spawn(name: &str, cmd: tokio::process::Command, log_dir: &Path) -> Proc {
    Proc::spawn(name, cmd, log_dir).unwrap_or_else(|e| panic!("spawn {name}: {e}"))
}

/// Who is in the test world: two accounts, each with an admin and customers.
#[derive(Debug, Clone)]
pub struct Person {
    pub principal: Principal,
    pub token: String,
}

#[derive(Clone)]
pub struct People {
    pub demo_admin: Person,
    pub ann: Person,
    pub bob: Person,
    pub acme_admin: Person,
    pub zed: Person,
    pub demo_plan: Uuid,
    pub acme_plan: Uuid,
}

pub struct Stack {
    pub db: TestDb,
    pub base: String,
    pub gateway_port: u16,
    pub watch_port: u16,
    /// Kept so it is killed with the stack.
    _watch: Proc,
    pub gateway: Proc,
    pub connectors: Vec<Proc>,
    pub log_dir: PathBuf,
    pub people: People,
    pub http: reqwest::Client,
    database_url: String,
    connector_env: Vec<(String, String)>,
}

#[derive(Default)]
pub struct Options {
    /// Use this database instead of a fresh one on the shared server.
    pub database: Option<TestDb>,
    pub gateway_env: Vec<(String, String)>,
    pub connector_env: Vec<(String, String)>,
    /// Run the functions with local mode's secrets (for the checked-in example events).
    pub local_secrets: bool,
}

impl Stack {
    pub async fn start(test: &str) -> Stack {
        Self::start_with(test, Options::default()).await
    }

    pub async fn start_with(test: &str, options: Options) -> Stack {
        let db = match options.database {
            Some(db) => db,
            None => TestDb::new().await,
        };
        let log_dir = workspace()
            .join("target/e2e")
            .join(format!("{test}-{}", chrono::Utc::now().format("%H%M%S%3f")));
        std::fs::create_dir_all(&log_dir).expect("log dir");
        let people = people(&db).await;

        let root = workspace();
        let watch_port = free_port();
        let mut watch_cmd = devkit::supervisor::functions_command(&root, watch_port, 2, false);
        watch_cmd
            .env("DATABASE_URL", &db.url)
            .env(
                "JWT_SECRET",
                if options.local_secrets {
                    devkit::secrets::LOCAL_JWT_SECRET
                } else {
                    JWT_SECRET
                },
            )
            .env(
                "WEBHOOK_SECRET",
                if options.local_secrets {
                    devkit::secrets::LOCAL_WEBHOOK_SECRET
                } else {
                    WEBHOOK_SECRET
                },
            )
            .env("DB_POOL_SIZE", "2")
            .env("LOG_FORMAT", "text")
            .env("RUST_LOG", "info");
        let mut watch = spawn("cargo-lambda-watch", watch_cmd, &log_dir);

        let gateway_port = free_port();
        let mut gw_cmd = devkit::supervisor::gateway_command(
            &root,
            &bin_dir(),
            &format!("127.0.0.1:{gateway_port}"),
            &format!("http://127.0.0.1:{watch_port}"),
        );
        for (k, v) in &options.gateway_env {
            gw_cmd.env(k, v);
        }
        let mut gateway = spawn("gateway", gw_cmd, &log_dir);
        let listening = watch
            .wait_for_port(&format!("127.0.0.1:{watch_port}"), Duration::from_secs(60))
            .await;
        if let Err(e) = listening {
            panic!("{e}");
        }
        let listening = gateway
            .wait_for_port(
                &format!("127.0.0.1:{gateway_port}"),
                Duration::from_secs(30),
            )
            .await;
        if let Err(e) = listening {
            panic!("{e}");
        }

        let stack = Stack {
            watch_port,
            connector_env: options.connector_env,
            database_url: db.url.clone(),
            db,
            base: format!("http://127.0.0.1:{gateway_port}"),
            gateway_port,
            _watch: watch,
            gateway,
            connectors: Vec::new(),
            log_dir,
            people,
            http: reqwest::Client::new(),
        };
        stack.warm_up(watch_port).await;
        stack
    }

    /// `cargo lambda watch` starts a function on its first invocation (a `cargo run`,
    /// seconds when several stacks share the build lock): start the ones the tests use,
    /// with harmless events, before anything is timed.
    async fn warm_up(&self, watch_port: u16) {
        use devkit::gateway_events::{HttpEvent, WsEvent};
        let http = |f: &'static str| (f, HttpEvent::get("/warm-up").to_json());
        let calls = [
            ("ws-connect", WsEvent::connect("warm-up").to_json()),
            (
                "ws-default",
                WsEvent::message("warm-up", "$default", "{}").to_json(),
            ),
            (
                "ws-disconnect",
                WsEvent::disconnect("warm-up", 1000, "warm-up").to_json(),
            ),
            http("events-ticket"),
            http("auth-login"),
            http("payments-intent"),
            http("payments-confirm"),
            http("payments-refund"),
            http("invoices-create"),
        ];
        // All at once, as before: each is a `cargo run` queueing for cargo's lock anyway.
        let all = calls.len();
        let calls = calls.into_iter().map(|(f, e)| (f.to_string(), e)).collect();
        for (function, reply) in devkit::supervisor::warm(watch_port, calls, all).await {
            assert!(reply.is_ok(), "warming up {function}: {reply:?}");
        }
    }

    pub fn ws_url(&self, ticket: &str) -> String {
        format!("ws://127.0.0.1:{}/ws?ticket={ticket}", self.gateway_port)
    }

    fn connector_command(&self, index: usize) -> tokio::process::Command {
        let mut cmd = devkit::supervisor::connector_command(
            &workspace(),
            &bin_dir(),
            &self.database_url,
            &self.base,
            &format!("connector-{index}"),
        );
        cmd.env("CONNECTOR_POLL_MS", "200")
            .env("CONNECTOR_STATS_SECONDS", "1")
            .env("RUST_LOG", "info");
        for (k, v) in &self.connector_env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Starts another connector replica; returns its index.
    pub fn start_connector(&mut self) -> usize {
        self.start_connector_with(&[])
    }

    /// Starts a replica with some settings of its own, e.g. its `DATABASE_URL` or
    /// `WEBSOCKET_MANAGEMENT_ENDPOINT` through a fault proxy.
    pub fn start_connector_with(&mut self, env: &[(&str, &str)]) -> usize {
        let index = self.connectors.len();
        let mut cmd = self.connector_command(index);
        for (k, v) in env {
            cmd.env(k, v);
        }
        self.connectors
            .push(spawn(&format!("connector-{index}"), cmd, &self.log_dir));
        index
    }

    /// Restarts replica `index` after it was killed (same id, a new log).
    pub fn restart_connector(&mut self, index: usize) {
        let cmd = self.connector_command(index);
        self.connectors[index] = spawn(&format!("connector-{index}-restarted"), cmd, &self.log_dir);
    }

    /// The replica holding the leadership lock right now, if any.
    pub async fn leader_now(&self) -> Option<String> {
        let (class, obj) = shared::realtime::lease::lock_parts(connector::session::LEADER_LOCK);
        self.db
            .client()
            .await
            .query_opt(
                "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                  WHERE l.locktype = 'advisory' AND l.granted
                    AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                    AND l.classid::text::bigint = $1 AND l.objid::text::bigint = $2",
                &[&class, &obj],
            )
            .await
            .ok()
            .flatten()
            // `billwire-connector <id> <instance>`: the id.
            .and_then(|r| {
                r.get::<_, String>(0)
                    .trim_start_matches("billwire-connector ")
                    .split(' ')
                    .next()
                    .map(str::to_string)
            })
    }

    /// Waits up to `timeout` for some replica to lead.
    pub async fn leader(&self, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(l) = self.leader_now().await {
                return Some(l);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        let req = self.http.post(format!("{}{path}", self.base)).json(&body);
        Self::send(req, token).await
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        Self::send(self.http.get(format!("{}{path}", self.base)), token).await
    }

    async fn send(mut req: reqwest::RequestBuilder, token: &str) -> (u16, Value) {
        if !token.is_empty() {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.expect("gateway answers");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn ticket(&self, token: &str) -> String {
        let (status, body) = self.post("/api/v1/events/ticket", token, json!({})).await;
        assert_eq!(status, 201, "ticket: {body}");
        body["ticket"].as_str().expect("ticket").to_string()
    }

    /// Records `n` events straight into the outbox (see [`record`]).
    pub async fn burst(&self, n: usize, targets: &[(Uuid, Option<Uuid>)], pad: usize) -> Vec<i64> {
        record(&self.database_url, n, targets, pad).await
    }
}

/// Records `n` events from a connection of its own, each in its own transaction, spread
/// round-robin over the (account, user) pairs, with `pad` bytes of filler in each.
pub async fn record(url: &str, n: usize, targets: &[(Uuid, Option<Uuid>)], pad: usize) -> Vec<i64> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    let filler = "x".repeat(pad);
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let (account, user) = targets[i % targets.len()];
        let row = client
            .query_one(
                "SELECT record_event($1, $2, 'order_updated', $3)",
                &[&account, &user, &json!({ "n": i, "pad": filler })],
            )
            .await
            .expect("record_event");
        ids.push(row.get(0));
    }
    ids
}

async fn people(db: &TestDb) -> People {
    let mut client = db.client().await;
    let mut tx = Tx::begin(&mut client).await.expect("tx");
    let user = |email: &str, name: &str| {
        let (email, name) = (email.to_string(), name.to_string());
        async move {
            NewUser::new(
                Email::parse("email", &email).expect("email"),
                name,
                &Password::parse("password", "Test123!").expect("password"),
            )
            .await
            .expect("user")
        }
    };
    // Not the demo loader's slugs ("demo", "acme"): a test may load the demo data beside
    // this world, e.g. to drive the checked-in example events.
    let mut make_account = Vec::new();
    for slug in ["shop", "rival"] {
        make_account.push(NewAccount {
            id: Uuid::now_v7(),
            name: slug.to_string(),
            slug: Slug::parse("slug", slug).expect("slug"),
            currency: Currency::parse("currency", "USD").expect("usd"),
            admin: user(&format!("admin@{slug}.test"), "Admin").await,
        });
    }
    let mut admins = Vec::new();
    for new in make_account {
        let (account, admin) = accounts::create(&mut tx, new).await.expect("account");
        let plan = plans::create(
            &mut tx,
            account.id,
            NewPlan {
                id: Uuid::now_v7(),
                name: "Pro".into(),
                description: String::new(),
                monthly_price: Amount::parse("p", 1900).expect("price"),
                yearly_price: Amount::parse("p", 19000).expect("price"),
                currency: Currency::parse("c", "USD").expect("usd"),
            },
        )
        .await
        .expect("plan");
        admins.push((account, admin, plan));
    }
    let ann = accounts::register_customer(&mut tx, "shop", user("ann@shop.example", "Ann").await)
        .await
        .expect("ann");
    let bob = accounts::register_customer(&mut tx, "shop", user("bob@shop.example", "Bob").await)
        .await
        .expect("bob");
    let zed = accounts::register_customer(&mut tx, "rival", user("zed@rival.example", "Zed").await)
        .await
        .expect("zed");
    tx.commit().await.expect("commit");
    let person = |id: Uuid, account: Uuid, role: Role| {
        let principal = Principal {
            user_id: id,
            account_id: account,
            role,
        };
        let (token, _) = db.app.tokens.issue(&principal).expect("token");
        Person { principal, token }
    };
    let (demo, demo_admin, demo_plan) = &admins[0];
    let (acme, acme_admin, acme_plan) = &admins[1];
    People {
        demo_admin: person(demo_admin.id, demo.id, Role::Admin),
        ann: person(ann.id, demo.id, Role::Customer),
        bob: person(bob.id, demo.id, Role::Customer),
        acme_admin: person(acme_admin.id, acme.id, Role::Admin),
        zed: person(zed.id, acme.id, Role::Customer),
        demo_plan: demo_plan.id,
        acme_plan: acme_plan.id,
    }
}
