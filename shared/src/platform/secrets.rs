//! Secrets out of configuration: in AWS a function's environment names where each secret
//! lives (`DATABASE_URL_SECRET_ARN`, `JWT_SECRET_SECRET_ARN`, `WEBHOOK_SECRET_SECRET_ARN`,
//! `ORIGIN_VERIFY_SECRET_SECRET_ARN`),
//! and the values are read from Secrets Manager once, at start-up, then kept in memory for
//! the life of the execution environment. Local mode and tests keep plain variables: with no
//! `*_SECRET_ARN` set, nothing is fetched and no AWS client is built.

use super::config::ConfigError;
use std::collections::HashMap;

/// The settings that may come from Secrets Manager.
pub const NAMES: [&str; 4] = [
    "DATABASE_URL",
    "JWT_SECRET",
    "WEBHOOK_SECRET",
    "ORIGIN_VERIFY_SECRET",
];

/// The variable that names a setting's secret: `DATABASE_URL` -> `DATABASE_URL_SECRET_ARN`.
pub fn arn_variable(name: &str) -> String {
    format!("{name}_SECRET_ARN")
}

/// Reads, through `get`, which of the settings `names` live in Secrets Manager and fetches
/// them (the secret's `SecretString`, as is). Returns the values by setting name; settings
/// without an ARN are left to the environment. A program asks only for what it uses: an
/// ARN in its environment that its role may not read (a `Globals` variable every function
/// inherits) is then never fetched, where fetching it would fail its start.
pub async fn fetch(
    get: impl Fn(&str) -> Option<String>,
    names: &[&'static str],
) -> Result<HashMap<&'static str, String>, ConfigError> {
    let wanted: Vec<(&'static str, String)> = names
        .iter()
        .filter_map(|name| {
            get(&arn_variable(name))
                .filter(|arn| !arn.trim().is_empty())
                .map(|arn| (*name, arn))
        })
        .collect();
    if wanted.is_empty() {
        return Ok(HashMap::new());
    }
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    fetch_from(&aws_sdk_secretsmanager::Client::new(&aws), wanted).await
}

/// Fetches `(setting, secret ARN)` pairs with `client`, all at once.
pub async fn fetch_from(
    client: &aws_sdk_secretsmanager::Client,
    wanted: Vec<(&'static str, String)>,
) -> Result<HashMap<&'static str, String>, ConfigError> {
    let mut values = HashMap::new();
    let fetches = wanted.iter().map(|(name, arn)| {
        let client = client.clone();
        async move {
            let reply = client.get_secret_value().secret_id(arn).send().await;
            (name, arn, reply)
        }
    });
    for (name, arn, reply) in futures::future::join_all(fetches).await {
        let invalid = |reason: String| ConfigError::Invalid {
            name: match *name {
                "DATABASE_URL" => "DATABASE_URL_SECRET_ARN",
                "JWT_SECRET" => "JWT_SECRET_SECRET_ARN",
                "ORIGIN_VERIFY_SECRET" => "ORIGIN_VERIFY_SECRET_SECRET_ARN",
                _ => "WEBHOOK_SECRET_SECRET_ARN",
            },
            reason,
        };
        let secret = reply.map_err(|e| {
            invalid(format!(
                "cannot read {arn} from Secrets Manager: {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
            ))
        })?;
        let value = secret
            .secret_string()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid(format!("{arn} has no SecretString")))?;
        values.insert(*name, value.to_string());
    }
    Ok(values)
}

/// A function's configuration at start-up: the environment, with every setting that names
/// a Secrets Manager secret read from it: those of `names` (see [`fetch`]).
pub async fn config_from_env(names: &[&'static str]) -> Result<super::config::Config, ConfigError> {
    let env = |name: &str| std::env::var(name).ok();
    let secrets = fetch(env, names).await?;
    super::config::Config::from_lookup(|name| secrets.get(name).cloned().or_else(|| env(name)))
}
