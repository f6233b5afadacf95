//! The deployed stack, rehearsed: template.yaml stood up in an IAM-enforcing AWS emulator,
//! every function in a container with exactly its template environment and its role's
//! credentials, behind PgBouncer; the migrations through the custom resource; the
//! connector's task as Fargate runs it; then a person's flow through it all
//! (docs/architecture.md, "The deployed stack, rehearsed").

use futures::{SinkExt, StreamExt};
use rehearsal::{
    execute_api_host, fargate, secrets_manager_host, Aws, Front, LambdaSetup, Lambdas, Plan,
    Pooler, Tls, API_ID, RESPONSE_HOST,
};
use serde_json::{json, Value};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// CloudFormation's side of a custom resource: the pre-signed URL's stand-in records
/// every PUT (served behind nginx as the S3 response host).
#[derive(Clone, Default)]
struct ResponseUrl {
    puts: Arc<Mutex<Vec<(String, Value)>>>,
}

impl ResponseUrl {
    async fn serve(&self) -> u16 {
        let puts = self.puts.clone();
        let app = axum::Router::new().fallback(
            move |method: axum::http::Method,
                  uri: axum::http::Uri,
                  headers: axum::http::HeaderMap,
                  body: axum::body::Bytes| {
                let puts = puts.clone();
                async move {
                    // S3 checks the signed Content-Type: CloudFormation signs an empty one.
                    let content_type = headers
                        .get("content-type")
                        .map(|v| v.to_str().unwrap_or("?").to_string());
                    if method != axum::http::Method::PUT
                        || content_type.as_deref().is_some_and(|c| !c.is_empty())
                    {
                        return axum::http::StatusCode::FORBIDDEN;
                    }
                    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    if let Ok(mut p) = puts.lock() {
                        p.push((uri.to_string(), value));
                    }
                    axum::http::StatusCode::OK
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the response URL stand-in");
        let port = listener.local_addr().expect("its port").port();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        port
    }

    fn last(&self) -> Option<(String, Value)> {
        self.puts.lock().ok().and_then(|p| p.last().cloned())
    }
}

fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_string()
}

/// A client of the HTTP API through "CloudFront": the headers the distribution adds to
/// every /api/* request it passes on.
struct Http {
    base: String,
    client: reqwest::Client,
    cloudfront_headers: Vec<(String, String)>,
}

impl Http {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self
            .client
            .request(method.clone(), format!("{}{path}", self.base));
        for (name, value) in &self.cloudfront_headers {
            req = req.header(name, value);
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if method != reqwest::Method::GET {
            req = req.json(&body);
        }
        let reply = req.send().await.expect("request through the gateway");
        let status = reply.status().as_u16();
        let text = reply.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn login(&self, email: &str, password: &str) -> String {
        let (status, body) = self
            .call(
                "POST",
                "/api/v1/auth/login",
                None,
                json!({ "email": email, "password": password }),
            )
            .await;
        assert_eq!(status, 200, "login of {email}: {body}");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_deployed_stack_runs_as_aws_runs_it() {
    let test = "the_deployed_stack_runs_as_aws_runs_it";
    if !rehearsal::can_run(test, rehearsal::unavailable()) {
        return;
    }
    let started = std::time::Instant::now();
    let run_id = short_id();
    let dir = rehearsal::run_dir(&run_id).expect("run directory");
    let python = tokio::task::spawn_blocking(rehearsal::venv)
        .await
        .expect("venv task")
        .unwrap_or_else(|e| panic!("{e}"));
    let emulator = rehearsal::runtime_interface_emulator(&python).unwrap_or_else(|e| panic!("{e}"));
    let tls = Tls::ensure().unwrap_or_else(|e| panic!("{e}"));
    let gateway_ip: IpAddr = rehearsal::host_gateway().unwrap_or_else(|e| panic!("{e}"));

    // Postgres: an EMPTY database; the custom resource must create the schema.
    let server = devkit::localpg::ensure()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // Named like the suite's test databases, so `cargo xtask test` sweeps one a killed run
    // left behind; dropped at the end of a run.
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let db_name = format!("billwire_test_{created}_rehearsal_{run_id}");
    let (admin, conn) = tokio_postgres::connect(&server.admin_url, tokio_postgres::NoTls)
        .await
        .expect("admin session");
    tokio::spawn(conn);
    admin
        .batch_execute(&format!("CREATE DATABASE {db_name}"))
        .await
        .expect("create the rehearsal database");
    let db_url = server.url(&db_name);

    // The functions reach Postgres through PgBouncer, the connector directly (the two URLs).
    let pooler = Pooler::start(gateway_ip, &db_url, &dir)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let functions_url =
        samlocal::url_via(&db_url, &gateway_ip.to_string(), pooler.port).expect("url");
    let bridge = samlocal::DbBridge::start(&db_url, 0)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let connector_url =
        samlocal::url_via(&db_url, &gateway_ip.to_string(), bridge.port()).expect("url");

    // AWS: moto, the response URL's stand-in, the gateway's port, and nginx in front.
    let aws = Aws::start(&python, &dir)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let responses = ResponseUrl::default();
    let response_port = responses.serve().await;
    let gateway_port = devkit::localpg::free_port().expect("a port for the gateway");
    let _front = Front::start(
        &tls,
        gateway_ip,
        &[
            (secrets_manager_host(), aws.endpoint.clone(), None),
            (
                RESPONSE_HOST.to_string(),
                format!("http://127.0.0.1:{response_port}"),
                None,
            ),
            (
                execute_api_host(),
                format!("http://127.0.0.1:{gateway_port}"),
                Some("live".to_string()),
            ),
        ],
        &dir,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));

    // The binaries and images.
    let ca = tls.ca_pem.clone();
    let (layout, lambda_image, connector_image) = tokio::task::spawn_blocking(move || {
        let layout = samlocal::build()?;
        let lambda_image = rehearsal::lambda_image(&Tls::ensure()?)?;
        let connector_image = fargate::connector_image(Some(&ca))?;
        Ok::<_, String>((layout, lambda_image, connector_image))
    })
    .await
    .expect("build task")
    .unwrap_or_else(|e| panic!("{e}"));
    println!(
        "rehearsal: built and ready to stand up after {:.0?}",
        started.elapsed()
    );

    // The template, stood up: parameters at their defaults but for these.
    let jwt_secret = format!("{}{}", short_id(), "r".repeat(40));
    let parameters = json!({
        "DatabaseUrl": functions_url,
        "ConnectorDatabaseUrl": connector_url,
        "JwtSecret": jwt_secret,
        "WebhookSecret": "whsec_rehearsal_0123456789",
        "Architecture": samlocal::ARCHITECTURE,
        "ConnectorImage": connector_image,
        "SubnetIds": "subnet-0rehearsal",
        "SecurityGroupIds": "sg-0rehearsal",
    });
    let plan: Plan = aws
        .stand_up(&python, &parameters, &dir)
        .unwrap_or_else(|e| panic!("{e}"));

    let add_hosts = vec![
        (secrets_manager_host(), gateway_ip),
        (RESPONSE_HOST.to_string(), gateway_ip),
        (execute_api_host(), gateway_ip),
    ];
    let lambdas = {
        let setup = LambdaSetup {
            run_id: &run_id,
            image: &lambda_image,
            emulator: &emulator,
            build_dir: &layout.build_dir,
            add_hosts: &add_hosts,
        };
        Lambdas::start(&plan, &setup).unwrap_or_else(|e| panic!("{e}"))
    };
    println!(
        "rehearsal: {} functions in their containers after {:.0?}",
        lambdas.routes.len(),
        started.elapsed()
    );

    // 1. The migrations, through the custom resource, as CloudFormation runs them on create.
    let migrations = plan.migrations().clone();
    let migrate_fn = plan.function(
        migrations["function"]
            .as_str()
            .expect("served by a function"),
    );
    let timeout = migrate_fn["timeout"]
        .as_u64()
        .expect("db-migrate's timeout");
    let service_timeout = migrations["properties"]["ServiceTimeout"]
        .as_str()
        .map(|s| s.parse::<u64>().expect("ServiceTimeout is a number"))
        .or_else(|| migrations["properties"]["ServiceTimeout"].as_u64());
    assert!(
        service_timeout.is_some_and(|s| s > timeout && s < 3600),
        "Migrations' ServiceTimeout ({service_timeout:?}) must bound CloudFormation's wait \
         (its default is an hour) and exceed db-migrate's Timeout ({timeout} s)"
    );
    let request_id = uuid::Uuid::new_v4().to_string();
    let stack_id = plan.0["stack_id"].as_str().expect("stack id").to_string();
    let response_url = format!(
        "https://{RESPONSE_HOST}/{}%7CMigrations%7C{request_id}?X-Amz-Algorithm=AWS4-HMAC-SHA256\
         &X-Amz-Date=20261203T000000Z&X-Amz-SignedHeaders=host&X-Amz-Expires=7200\
         &X-Amz-Credential=AKIAREHEARSAL%2F20261203%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=0",
        stack_id.replace(':', "%3A").replace('/', "%2F")
    );
    let event = json!({
        "RequestType": "Create",
        "ServiceToken": migrations["properties"]["ServiceToken"],
        "ResponseURL": response_url,
        "StackId": stack_id,
        "RequestId": request_id,
        "LogicalResourceId": migrations["logical_id"],
        "ResourceType": migrations["type"],
        "ResourceProperties": migrations["properties"],
    });
    let reply = lambdas.invoke("db-migrate", &event).await;
    let answered = devkit::eventually(Duration::from_secs(30), Duration::from_millis(200), || {
        responses.last().is_some()
    })
    .await;
    assert!(
        answered,
        "db-migrate answered CloudFormation nothing (invoke: {reply:?}); its log:\n{}",
        lambdas.logs("db-migrate")
    );
    let (_, answer) = responses.last().expect("an answer");
    assert_eq!(
        answer["Status"],
        "SUCCESS",
        "the Migrations custom resource FAILED, so the stack would roll back: {answer}\n{}",
        lambdas.logs("db-migrate")
    );
    assert_eq!(answer["RequestId"], request_id.as_str());
    assert_eq!(answer["LogicalResourceId"], "Migrations");
    let tables: i64 = admin_count(&db_url, "SELECT count(*) FROM refinery_schema_history").await;
    assert!(tables > 0, "the schema was created");
    println!("rehearsal: migrations applied through the custom resource: {answer}");

    // The README's demo data, the way it says to load it.
    let demo = lambdas.invoke("db-migrate", &json!({ "demo": true })).await;
    assert!(
        demo.as_ref().is_ok_and(|d| d.to_string().contains("demo")),
        "{{\"demo\": true}} failed: {demo:?}\n{}",
        lambdas.logs("db-migrate")
    );

    // 2. The gateway in front of every function's container, and the connector's task.
    let mut gateway_cmd =
        tokio::process::Command::new(rehearsal::workspace().join("target/debug/gateway"));
    gateway_cmd
        .current_dir(rehearsal::workspace())
        .env("GATEWAY_ADDR", format!("127.0.0.1:{gateway_port}"))
        .env(
            "GATEWAY_INVOKE_ROUTES",
            serde_json::to_string(&lambdas.routes).expect("routes"),
        )
        .env("GATEWAY_INVOKE_URL", "http://127.0.0.1:9")
        .env("RUST_LOG", "info");
    let mut gateway =
        devkit::supervisor::Proc::spawn("gateway", gateway_cmd, &dir).expect("gateway");
    gateway
        .wait_for_port(
            &format!("127.0.0.1:{gateway_port}"),
            Duration::from_secs(60),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let connector = plan.connector().clone();
    let container = &connector["containers"][0];
    let credentials: Vec<(String, String)> = connector["task_credentials"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    let secrets: Vec<(String, String)> = container["secrets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|pair| {
            (
                pair[0].as_str().unwrap_or_default().to_string(),
                pair[1].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let task = fargate::Task::start(fargate::TaskSpec {
        name: format!("billwire-rehearsal-{run_id}-connector"),
        image: container["definition"]["Image"]
            .as_str()
            .expect("image")
            .to_string(),
        container: container["definition"].clone(),
        volumes: connector["volumes"].clone(),
        secrets,
        credentials,
        add_hosts: add_hosts.clone(),
        region: rehearsal::REGION.into(),
        task_cpu: connector["cpu"].as_str().map(str::to_string),
        task_memory: connector["memory"].as_str().map(str::to_string),
    })
    .unwrap_or_else(|e| panic!("{e}"));
    task.wait_healthy(Duration::from_secs(180))
        .await
        .unwrap_or_else(|e| panic!("the connector's task never became HEALTHY, so ECS's circuit breaker would roll the stack back: {e}"));
    println!(
        "rehearsal: the connector's task is HEALTHY after {:.0?}",
        started.elapsed()
    );

    // 3. A person's flow: the page, a login, a live connection, an order, its event.
    let base = format!("http://127.0.0.1:{gateway_port}");
    let http = Http {
        base: base.clone(),
        client: reqwest::Client::new(),
        cloudfront_headers: plan.0["cloudfront_api_headers"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect(),
    };
    assert!(
        !http.cloudfront_headers.is_empty(),
        "CloudFront adds the origin header"
    );
    // Straight to the execute-api URL, around CloudFront and its WAF: refused.
    let direct = Http {
        base,
        client: reqwest::Client::new(),
        cloudfront_headers: Vec::new(),
    };
    let (status, refused) = direct
        .call(
            "POST",
            "/api/v1/auth/login",
            None,
            json!({ "email": "admin@demo.test", "password": "Admin123!" }),
        )
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (403, Some("direct_access")),
        "a login that did not come through CloudFront: {refused}"
    );
    let (status, page) = http.call("GET", "/", None, Value::Null).await;
    let page = page.as_str().unwrap_or_default().to_string();
    assert_eq!(status, 200, "the dashboard's page");
    for asset in ["style.css", "vendor/chart.umd.min.js", "js/app.js"] {
        assert!(page.contains(asset), "index.html names {asset}");
        let (status, _) = http
            .call("GET", &format!("/{asset}"), None, Value::Null)
            .await;
        assert_eq!(status, 200, "/{asset}");
    }
    let admin_token = http.login("admin@demo.test", "Admin123!").await;
    let (status, ticket) = http
        .call(
            "POST",
            "/api/v1/events/ticket",
            Some(&admin_token),
            json!({}),
        )
        .await;
    assert_eq!(status, 201, "ticket: {ticket}");
    let wss = plan.function("EventsTicketFunction")["environment"]["WEBSOCKET_URL"].clone();
    assert_eq!(
        ticket["url"].as_str(),
        Some(
            format!(
                "{}?ticket={}",
                wss.as_str().unwrap_or_default(),
                ticket["ticket"].as_str().unwrap_or_default()
            )
            .as_str()
        ),
        "the ticket names the WebSocket API's stage URL, as the template sets it"
    );
    assert_eq!(
        wss,
        format!(
            "wss://{API_ID}.execute-api.{}.amazonaws.com/live",
            rehearsal::REGION
        )
    );
    let ws_url = format!(
        "ws://127.0.0.1:{gateway_port}/ws?ticket={}",
        ticket["ticket"].as_str().expect("ticket")
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(&ws_url)
        .await
        .expect("WebSocket connect");
    socket
        .send(tokio_tungstenite::tungstenite::Message::Text(
            json!({ "action": "subscribe", "after": null })
                .to_string()
                .into(),
        ))
        .await
        .expect("subscribe");

    let customer = http.login("freshuser@test.com", "Test123!").await;
    let (_, plans) = http
        .call("GET", "/api/v1/plans", Some(&customer), Value::Null)
        .await;
    let plan_id = plans["data"][0]["id"].clone();
    let (status, intent) = http
        .call(
            "POST",
            "/api/v1/payments/intent",
            Some(&customer),
            json!({ "plan_id": plan_id, "billing_cycle": "monthly", "payment_method": "pm_card_visa" }),
        )
        .await;
    assert_eq!(status, 201, "payment intent: {intent}");
    let payment_id = intent["id"].as_str().expect("payment id").to_string();
    let (status, paid) = http
        .call(
            "POST",
            &format!("/api/v1/payments/{payment_id}/confirm"),
            Some(&customer),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "confirm: {paid}");

    let mut seen = Vec::new();
    let arrived = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(Ok(message)) = socket.next().await {
            if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
                let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                let found = text.contains(&payment_id) && text.contains("payment_received");
                seen.push(value);
                if found {
                    return true;
                }
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(
        arrived,
        "the dashboard never received payment_received for {payment_id} through the \
         connector's task; it received {seen:?}\nconnector:\n{}",
        task.logs()
    );
    println!("rehearsal: passed in {:.0?}", started.elapsed());
    drop(lambdas);
    drop(task);
    drop(gateway);
    let _ = admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"))
        .await;
}

async fn admin_count(url: &str, sql: &str) -> i64 {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("session");
    tokio::spawn(conn);
    client
        .query_one(sql, &[])
        .await
        .map(|r| r.get(0))
        .unwrap_or(0)
}
