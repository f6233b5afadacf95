//! db-migrate's handler: applies the migrations, either for CloudFormation (a
//! `Custom::Migrations` resource) or for a person who invokes the function by hand.
//!
//! CloudFormation sends `{"RequestType": "Create" | "Update" | "Delete", "ResponseURL", "StackId",
//! "RequestId", "LogicalResourceId", "PhysicalResourceId"?, "ResourceProperties"}` and then waits
//! (up to an hour) until a JSON answer is PUT to the pre-signed `ResponseURL`. So every
//! CloudFormation request is answered, SUCCESS or FAILED, whatever happens: a bad
//! `DATABASE_URL`, an unreachable database, a failing migration, or the function's own
//! deadline coming close (the work is abandoned in time to answer).
//!
//! - Create and Update run the migrations (idempotent: applied ones are skipped, and an
//!   advisory lock serializes concurrent runners).
//! - Delete does nothing: deleting the stack must never drop the data.

use serde::Deserialize;
use serde_json::{json, Value};
use shared::platform::database::{self, Connect};
use shared::platform::{config, secrets};
use std::time::Duration;

/// Time kept back from the deadline to send CloudFormation its answer.
pub const ANSWER_RESERVE: Duration = Duration::from_secs(10);
/// CloudFormation refuses responses over 4096 bytes; the reason is cut well below that.
const MAX_REASON: usize = 1000;
/// The physical id of the migration resource when CloudFormation has not assigned one yet.
pub const PHYSICAL_ID: &str = "billwire-migrations";

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// A CloudFormation custom-resource request (the fields this handler needs).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CustomResourceRequest {
    pub request_type: RequestType,
    #[serde(rename = "ResponseURL")]
    pub response_url: String,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
    #[serde(default)]
    pub physical_resource_id: Option<String>,
    #[serde(default)]
    pub resource_properties: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum RequestType {
    Create,
    Update,
    Delete,
}

/// The invocation's payload, told apart by CloudFormation's `RequestType` field.
pub enum Invocation {
    CloudFormation(CustomResourceRequest),
    /// `{}` or `{"demo": true}`, invoked by hand.
    Direct {
        demo: bool,
    },
}

impl Invocation {
    pub fn parse(payload: Value) -> Result<Invocation, Error> {
        if payload.get("RequestType").is_some() {
            let request = serde_json::from_value(payload)
                .map_err(|e| format!("not a CloudFormation custom-resource request: {e}"))?;
            return Ok(Invocation::CloudFormation(request));
        }
        let demo = payload.get("demo").and_then(Value::as_bool) == Some(true);
        Ok(Invocation::Direct { demo })
    }
}

/// Handles one invocation. `remaining` is the time until the function's deadline; `get`
/// reads configuration (`DATABASE_URL`, `DATABASE_CA_FILE`), normally from the environment.
pub async fn handle(
    payload: Value,
    remaining: Duration,
    get: impl Fn(&str) -> Option<String>,
) -> Result<Value, Error> {
    match Invocation::parse(payload)? {
        Invocation::Direct { demo } => {
            let budget = remaining.saturating_sub(Duration::from_secs(1));
            match tokio::time::timeout(budget, migrate(&get, demo)).await {
                Ok(Ok(outcome)) => Ok(json!({
                    "migrated": true,
                    "schema_version": outcome.schema_version,
                    "demo_accounts_created": outcome.demo_accounts_created,
                })),
                Ok(Err(e)) => Err(e),
                Err(_) => Err("timed out before the migrations finished".into()),
            }
        }
        Invocation::CloudFormation(request) => {
            let response = respond_to(&request, remaining, &get).await;
            let status = response["Status"].as_str().unwrap_or("?").to_string();
            tracing::info!(
                request_type = ?request.request_type,
                status,
                reason = response["Reason"].as_str().unwrap_or(""),
                "answering CloudFormation"
            );
            // If the answer cannot be delivered, fail the invocation: CloudFormation invokes
            // asynchronously, so Lambda retries it (and migrating again is harmless).
            send_response(&request.response_url, &response).await?;
            Ok(response)
        }
    }
}

/// Does what the request asks, within the time left, and builds CloudFormation's answer.
pub async fn respond_to(
    request: &CustomResourceRequest,
    remaining: Duration,
    get: &impl Fn(&str) -> Option<String>,
) -> Value {
    let physical_id = request
        .physical_resource_id
        .clone()
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| PHYSICAL_ID.to_string());
    let result = match request.request_type {
        // Deleting the stack (or replacing the resource) must never touch the data.
        RequestType::Delete => Ok(json!({})),
        RequestType::Create | RequestType::Update => {
            let budget = remaining.saturating_sub(ANSWER_RESERVE);
            match tokio::time::timeout(budget, migrate(get, false)).await {
                Ok(Ok(outcome)) => Ok(json!({
                    "SchemaVersion": outcome.schema_version.map(|v| v.to_string()).unwrap_or_default(),
                })),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!(
                    "db-migrate gave up after {}s to answer before its deadline; raise its \
                     Timeout or check that the database is reachable from its subnets",
                    budget.as_secs()
                )),
            }
        }
    };
    let (status, reason, data) = match result {
        Ok(data) => ("SUCCESS", "done".to_string(), data),
        Err(reason) => ("FAILED", truncate(&reason, MAX_REASON), json!({})),
    };
    json!({
        "Status": status,
        "Reason": reason,
        "PhysicalResourceId": physical_id,
        "StackId": request.stack_id,
        "RequestId": request.request_id,
        "LogicalResourceId": request.logical_resource_id,
        "NoEcho": false,
        "Data": data,
    })
}

/// PUTs the answer to the pre-signed URL. The URL was signed with an empty Content-Type, so
/// the request must carry exactly that.
pub async fn send_response(url: &str, response: &Value) -> Result<(), Error> {
    let body = serde_json::to_vec(response)?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(8))
        .build()?;
    let mut last_error = String::new();
    for attempt in 0..3u64 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(300 * attempt)).await;
        }
        let sent = client
            .put(url)
            .header(reqwest::header::CONTENT_TYPE, "")
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => last_error = format!("the response URL answered {}", r.status()),
            Err(e) => last_error = format!("cannot reach the response URL: {e}"),
        }
        tracing::warn!(attempt, error = %last_error, "CloudFormation response not delivered");
    }
    Err(last_error.into())
}

pub struct Outcome {
    pub schema_version: Option<i64>,
    pub demo_accounts_created: Vec<String>,
}

async fn migrate(get: &impl Fn(&str) -> Option<String>, demo: bool) -> Result<Outcome, Error> {
    // In AWS the URL lives in Secrets Manager (DATABASE_URL_SECRET_ARN); read here, not at
    // init, so that a secret that cannot be read becomes a FAILED answer too. Only that one:
    // db-migrate also inherits JWT_SECRET_SECRET_ARN from the template's Globals, which its
    // role may not read.
    let secrets = secrets::fetch(get, &["DATABASE_URL"]).await?;
    let get = &|name: &str| secrets.get(name).cloned().or_else(|| get(name));
    let url = config::required(
        get,
        "DATABASE_URL",
        "a Postgres URL such as postgres://user:password@host:5432/billwire?sslmode=require",
    )?;
    let connect = Connect::new(&url, config::database_ca_file(get).as_deref())?;
    let pool = database::pool(&connect, 1)?;
    let mut client = pool
        .get()
        .await
        .map_err(|e| format!("cannot connect to the database: {e}"))?;
    database::migrate(&mut client).await?;
    let schema_version: Option<i64> = client
        .query_one(
            "SELECT max(version)::int8 FROM refinery_schema_history",
            &[],
        )
        .await?
        .get(0);
    let mut demo_accounts_created = Vec::new();
    if demo {
        demo_accounts_created = demo::load(&mut client).await?.accounts_created;
    }
    Ok(Outcome {
        schema_version,
        demo_accounts_created,
    })
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}
