//! Running a handler as a Lambda function. A function's `main` is one call to [`serve`]
//! (HTTP API) or [`serve_websocket`] (WebSocket API), with its own name.

use super::log;
use super::response::{self, ApiResponse};
use super::routes::{self, Handler, WebSocketHandler};
use super::websocket::WebSocketRequest;
use super::App;
use crate::platform::{secrets, telemetry};
use lambda_http::{LambdaEvent, Request, RequestExt};
use std::time::Instant;

/// Serves the HTTP route that [`routes::ROUTES`] names `function` (the binary's package
/// name): initialises logging, reads the configuration, builds the pool once, and serves
/// until the runtime shuts down.
pub async fn serve(function: &str) -> Result<(), lambda_http::Error> {
    telemetry::init();
    let route = routes::by_function(function)
        .ok_or_else(|| format!("{function} is not in api::routes::ROUTES"))?;
    let config = secrets::config_from_env(&secrets::NAMES).await?;
    (route.requires)(&config)?;
    run(App::new(config)?, route.handler).await
}

/// Serves `handler` with an already-built `App`.
///
/// `run_concurrent` is sequential on classic Lambda and serves `AWS_LAMBDA_MAX_CONCURRENCY`
/// invocations at once where that is set (Lambda Managed Instances, `cargo lambda watch
/// --concurrency`), sharing the one pool.
pub async fn run(app: App, handler: Handler) -> Result<(), lambda_http::Error> {
    lambda_http::run_concurrent(lambda_http::service_fn(move |req: Request| {
        let app = app.clone();
        async move { Ok::<_, lambda_http::Error>(dispatch(handler, app, req).await) }
    }))
    .await
}

/// Runs one request through `handler`, turns an error into its JSON response, and logs one
/// structured line per request, with the cause of a server-side failure. Tests call this
/// with real API Gateway events, exactly as `run` does.
pub async fn dispatch(handler: Handler, app: App, req: Request) -> ApiResponse {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.raw_http_path().to_string();
    let request_id = req
        .lambda_context_ref()
        .map(|c| c.request_id.clone())
        .unwrap_or_default();
    let outcome = match through_the_front_door(&app, &req) {
        Ok(()) => handler(app, req).await,
        Err(refused) => Err(refused),
    };
    let response = match outcome {
        Ok(response) => response,
        Err(error) => {
            log::error(&error, &request_id);
            response::error(&error)
        }
    };
    tracing::info!(
        %method,
        path,
        status = response.status().as_u16(),
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        request_id,
        "request"
    );
    response
}

/// The header CloudFront adds to every request it passes to the HTTP API (template.yaml,
/// `OriginCustomHeaders`); CloudFront overwrites a viewer's header of the same name.
pub const ORIGIN_HEADER: &str = "x-billwire-origin";

/// Whether the request came through CloudFront (and its WAF), where the deployment says it
/// must (`Config::origin_secret`): compared in constant time, refused before any database or
/// password work. Without the setting (local mode, tests) every request passes.
fn through_the_front_door(app: &App, req: &Request) -> crate::platform::error::Result<()> {
    use subtle::ConstantTimeEq;
    let Some(expected) = &app.config.origin_secret else {
        return Ok(());
    };
    let given = req
        .headers()
        .get(ORIGIN_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if bool::from(given.ct_eq(expected.expose().as_bytes())) {
        return Ok(());
    }
    Err(crate::platform::error::Error::new(
        crate::platform::error::Kind::Forbidden,
        "direct_access",
        "this API is served at the dashboard's address; call it there",
    ))
}

/// Serves the WebSocket route (`$connect`, `$disconnect`, `$default`) that
/// [`routes::WEBSOCKET_ROUTES`] names `function`: real API Gateway WebSocket events in,
/// proxy responses out.
pub async fn serve_websocket(function: &str) -> Result<(), lambda_http::Error> {
    telemetry::init();
    let route = routes::websocket_by_function(function)
        .ok_or_else(|| format!("{function} is not in api::routes::WEBSOCKET_ROUTES"))?;
    // The WebSocket routes never see CloudFront's origin header nor a webhook: their start
    // reads only the database URL and the JWT secret.
    let app = App::new(secrets::config_from_env(&["DATABASE_URL", "JWT_SECRET"]).await?)?;
    let handler: WebSocketHandler = route.handler;
    lambda_http::lambda_runtime::run_concurrent(lambda_http::service_fn(
        move |event: LambdaEvent<WebSocketRequest>| {
            let app = app.clone();
            async move {
                let started = Instant::now();
                let route = event
                    .payload
                    .request_context
                    .route_key
                    .clone()
                    .unwrap_or_default();
                let request_id = event.context.request_id;
                let response = handler(app, event.payload).await;
                tracing::info!(
                    route,
                    status = response.status_code,
                    duration_ms = started.elapsed().as_secs_f64() * 1000.0,
                    request_id,
                    "websocket route"
                );
                Ok::<_, lambda_http::Error>(response)
            }
        },
    ))
    .await
}
