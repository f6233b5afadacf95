//! Applies the migrations in `migrations/` (the same runner tests and local mode use).
//! Invoke it after each deploy; with `{"demo": true}` it also loads the demo accounts.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};
use shared::{config::Config, db, demo, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let config = Config::from_env()?;
    let pool = db::pool(&config.connect()?, 1)?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let pool = pool.clone();
        async move {
            let mut client = pool.get().await?;
            db::migrate(&mut client).await?;
            let mut loaded = Vec::new();
            if event.payload.get("demo").and_then(Value::as_bool) == Some(true) {
                loaded = demo::load(&mut client).await?.accounts_created;
            }
            Ok::<_, Error>(json!({ "migrated": true, "demo_accounts_created": loaded }))
        }
    }))
    .await
}
