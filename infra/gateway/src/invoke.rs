//! Invoking functions through `cargo lambda watch`'s Lambda Invoke API
//! (`POST /2015-03-31/functions/{name}/invocations`), the same call `cargo lambda invoke`
//! and the AWS SDKs make; or, for functions given a route of their own, through that
//! function's Runtime Interface Emulator (`POST /2015-03-31/functions/function/invocations`,
//! one emulator a function, as infra/rehearsal runs them).

use serde_json::Value;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("cannot reach cargo lambda watch at {0}: {1}")]
    Unreachable(String, String),
    #[error("function {0} failed: {1}")]
    Function(String, String),
}

#[derive(Clone)]
pub struct Invoker {
    base: String,
    /// Function -> the address of its own Runtime Interface Emulator.
    routes: std::sync::Arc<std::collections::HashMap<String, String>>,
    client: reqwest::Client,
    /// `cargo lambda watch` runs a few instances of each function and stops answering
    /// altogether when thousands of invocations arrive at once (a reconnect storm: a
    /// `$disconnect`, `$connect` and subscribe per client). They queue here instead, as
    /// Lambda's own scaling would absorb them.
    in_flight: std::sync::Arc<tokio::sync::Semaphore>,
}

impl Invoker {
    /// `base` is cargo lambda watch's address, e.g. `http://127.0.0.1:9000`. The timeout is
    /// generous because `cargo lambda watch` compiles a function on its first invocation.
    pub fn new(base: &str, timeout: Duration, concurrency: usize) -> Invoker {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .unwrap_or_default();
        Invoker {
            base: base.trim_end_matches('/').to_string(),
            routes: Default::default(),
            client,
            in_flight: std::sync::Arc::new(tokio::sync::Semaphore::new(concurrency.max(1))),
        }
    }

    /// Sends `function`'s invocations to its own emulator at `routes[function]` instead.
    pub fn with_routes(mut self, routes: std::collections::HashMap<String, String>) -> Invoker {
        self.routes = std::sync::Arc::new(
            routes
                .into_iter()
                .map(|(f, base)| (f, base.trim_end_matches('/').to_string()))
                .collect(),
        );
        self
    }

    pub async fn invoke(&self, function: &str, event: &Value) -> Result<Value, InvokeError> {
        let url = match self.routes.get(function) {
            Some(own) => format!("{own}/2015-03-31/functions/function/invocations"),
            None => format!("{}/2015-03-31/functions/{function}/invocations", self.base),
        };
        let _turn = self.in_flight.acquire().await;
        let response = self
            .client
            .post(&url)
            .json(event)
            .send()
            .await
            .map_err(|e| InvokeError::Unreachable(self.base.clone(), e.to_string()))?;
        let status = response.status();
        let function_error = response.headers().contains_key("x-amz-function-error");
        let text = response
            .text()
            .await
            .map_err(|e| InvokeError::Unreachable(self.base.clone(), e.to_string()))?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
        if !status.is_success() || function_error || value.get("errorType").is_some() {
            return Err(InvokeError::Function(function.to_string(), text));
        }
        Ok(value)
    }
}
