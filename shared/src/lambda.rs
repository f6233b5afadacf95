//! Running a handler as a Lambda function. A function's `main` is one call to [`serve`].

use crate::app::App;
use crate::error::ApiResult;
use crate::http::ApiResponse;
use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest,
};
use lambda_http::{LambdaEvent, Request, RequestExt};
use std::future::Future;
use std::time::Instant;

/// Initialises logging, reads the configuration, builds the pool once, and serves `handler`
/// until the runtime shuts down.
pub async fn serve<H, F>(handler: H) -> Result<(), lambda_http::Error>
where
    H: Fn(App, Request) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = ApiResult<ApiResponse>> + Send + 'static,
{
    crate::telemetry::init();
    let app = App::from_env()?;
    run(app, handler).await
}

/// Serves `handler` with an already-built `App`.
///
/// `run_concurrent` is sequential on classic Lambda and serves `AWS_LAMBDA_MAX_CONCURRENCY`
/// invocations at once where that is set (Lambda Managed Instances, `cargo lambda watch
/// --concurrency`), sharing the one pool.
pub async fn run<H, F>(app: App, handler: H) -> Result<(), lambda_http::Error>
where
    H: Fn(App, Request) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = ApiResult<ApiResponse>> + Send + 'static,
{
    lambda_http::run_concurrent(lambda_http::service_fn(move |req: Request| {
        let (app, handler) = (app.clone(), handler.clone());
        async move { Ok::<_, lambda_http::Error>(dispatch(&handler, app, req).await) }
    }))
    .await
}

/// Runs one request through `handler`, turns errors into JSON responses, and logs one
/// structured line. Tests call this with real API Gateway events, exactly as `run` does.
pub async fn dispatch<H, F>(handler: &H, app: App, req: Request) -> ApiResponse
where
    H: Fn(App, Request) -> F,
    F: Future<Output = ApiResult<ApiResponse>>,
{
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.raw_http_path().to_string();
    let request_id = req
        .lambda_context_ref()
        .map(|c| c.request_id.clone())
        .unwrap_or_default();
    let response = match handler(app, req).await {
        Ok(response) => response,
        Err(error) => {
            if error.status.is_client_error() {
                tracing::info!(code = error.code, message = %error.message, "request refused");
            }
            error.into_response()
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

/// Serves a WebSocket route handler (`$connect`, `$disconnect`, `$default`): real API
/// Gateway WebSocket events in, proxy responses out.
pub async fn serve_ws<H, F>(handler: H) -> Result<(), lambda_http::Error>
where
    H: Fn(App, ApiGatewayWebsocketProxyRequest) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = ApiGatewayProxyResponse> + Send + 'static,
{
    crate::telemetry::init();
    let app = App::from_env()?;
    lambda_http::lambda_runtime::run_concurrent(lambda_http::service_fn(
        move |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| {
            let (app, handler) = (app.clone(), handler.clone());
            async move {
                let started = Instant::now();
                let route = event
                    .payload
                    .request_context
                    .route_key
                    .clone()
                    .unwrap_or_default();
                let response = handler(app, event.payload).await;
                tracing::info!(
                    route,
                    status = response.status_code,
                    duration_ms = started.elapsed().as_secs_f64() * 1000.0,
                    request_id = event.context.request_id,
                    "websocket route"
                );
                Ok::<_, lambda_http::Error>(response)
            }
        },
    ))
    .await
}
