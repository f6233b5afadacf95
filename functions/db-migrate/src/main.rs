//! Applies the migrations in `migrations/` (the same runner tests and local mode use).
//! Invoke it after each deploy; with `{"demo": true}` it also loads the demo accounts.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};
use shared::platform::config::Config;
use shared::platform::database::{self, Connect};
use shared::platform::telemetry;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let config = Config::from_env()?;
    let pool = database::pool(&Connect::from_config(&config)?, 1)?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let pool = pool.clone();
        async move {
            let mut client = pool.get().await?;
            database::migrate(&mut client).await?;
            let mut loaded = Vec::new();
            if event.payload.get("demo").and_then(Value::as_bool) == Some(true) {
                loaded = demo::load(&mut client).await?.accounts_created;
            }
            Ok::<_, Error>(json!({ "migrated": true, "demo_accounts_created": loaded }))
        }
    }))
    .await
}
