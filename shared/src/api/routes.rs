//! Every route and the function that serves it: the one table that function mains, tests,
//! example-event fixtures and local mode's warm-up read, so a route cannot meet the wrong
//! handler. `template.yaml` declares the same routes for API Gateway; a test keeps the two
//! equal.

use super::response::ApiResponse;
use super::websocket::WebSocketRequest;
use super::{
    accounts, auth, customers, events, invoices, openapi, payments, plans, stats, webhooks,
    websocket, App,
};
use crate::platform::config::{Config, ConfigError};
use crate::platform::error::Result;
use futures::future::BoxFuture;
use lambda_http::aws_lambda_events::apigw::ApiGatewayProxyResponse;
use lambda_http::Request;

pub type Handler = fn(App, Request) -> BoxFuture<'static, Result<ApiResponse>>;
pub type WebSocketHandler =
    fn(App, WebSocketRequest) -> BoxFuture<'static, ApiGatewayProxyResponse>;

/// An HTTP API route.
pub struct Route {
    /// The function (crate under `functions/`, and `template.yaml` resource) serving it.
    pub function: &'static str,
    pub method: &'static str,
    /// The path as API Gateway writes it, parameters in braces.
    pub path: &'static str,
    pub handler: Handler,
    /// What the function checks in its configuration before it starts: a function that
    /// cannot work without a setting refuses to start rather than fail every request.
    pub requires: fn(&Config) -> Result<(), ConfigError>,
}

/// A WebSocket API route (`$connect`, `$disconnect`, `$default`).
pub struct WebSocketRoute {
    pub function: &'static str,
    pub route_key: &'static str,
    pub handler: WebSocketHandler,
}

macro_rules! route {
    ($function:literal, $method:literal, $path:literal, $handler:path) => {
        Route {
            function: $function,
            method: $method,
            path: $path,
            handler: |app, req| Box::pin($handler(app, req)),
            requires: |_| Ok(()),
        }
    };
    ($function:literal, $method:literal, $path:literal, $handler:path, requires $check:expr) => {
        Route {
            requires: $check,
            ..route!($function, $method, $path, $handler)
        }
    };
}

macro_rules! websocket_route {
    ($function:literal, $route_key:literal, $handler:path) => {
        WebSocketRoute {
            function: $function,
            route_key: $route_key,
            handler: |app, event| Box::pin($handler(app, event)),
        }
    };
}

pub static ROUTES: &[Route] = &[
    route!(
        "accounts-create",
        "POST",
        "/api/v1/accounts",
        accounts::create
    ),
    route!(
        "auth-register",
        "POST",
        "/api/v1/auth/register",
        accounts::register
    ),
    route!("auth-login", "POST", "/api/v1/auth/login", auth::login),
    route!(
        "auth-refresh",
        "POST",
        "/api/v1/auth/refresh",
        auth::refresh
    ),
    route!("auth-logout", "POST", "/api/v1/auth/logout", auth::logout),
    route!("auth-me", "GET", "/api/v1/auth/me", auth::me),
    route!("plans-list", "GET", "/api/v1/plans", plans::list),
    route!("plans-create", "POST", "/api/v1/plans", plans::create),
    route!("plans-update", "PATCH", "/api/v1/plans/{id}", plans::update),
    route!(
        "payments-intent",
        "POST",
        "/api/v1/payments/intent",
        payments::create_intent
    ),
    route!(
        "payments-confirm",
        "POST",
        "/api/v1/payments/{id}/confirm",
        payments::confirm
    ),
    route!(
        "payments-refund",
        "POST",
        "/api/v1/payments/{id}/refund",
        payments::refund
    ),
    route!("payments-list", "GET", "/api/v1/payments", payments::list),
    route!(
        "payments-get",
        "GET",
        "/api/v1/payments/{id}",
        payments::get
    ),
    route!(
        "payments-webhook",
        "POST",
        "/api/v1/payments/webhook",
        webhooks::receive,
        requires | config | config.require_webhook_secret().map(|_| ())
    ),
    route!(
        "invoices-create",
        "POST",
        "/api/v1/invoices",
        invoices::create
    ),
    route!("invoices-list", "GET", "/api/v1/invoices", invoices::list),
    route!(
        "invoices-get",
        "GET",
        "/api/v1/invoices/{id}",
        invoices::get
    ),
    route!(
        "invoices-finalize",
        "POST",
        "/api/v1/invoices/{id}/finalize",
        invoices::finalize
    ),
    route!(
        "invoices-pay",
        "POST",
        "/api/v1/invoices/{id}/pay",
        invoices::pay
    ),
    route!(
        "invoices-void",
        "POST",
        "/api/v1/invoices/{id}/void",
        invoices::void
    ),
    route!(
        "invoices-mark-uncollectible",
        "POST",
        "/api/v1/invoices/{id}/mark-uncollectible",
        invoices::mark_uncollectible
    ),
    route!(
        "customers-list",
        "GET",
        "/api/v1/customers",
        customers::list
    ),
    route!("events-list", "GET", "/api/v1/events", events::list),
    route!(
        "events-ticket",
        "POST",
        "/api/v1/events/ticket",
        events::ticket
    ),
    route!(
        "dashboard-stats",
        "GET",
        "/api/v1/dashboard/stats",
        stats::dashboard
    ),
    route!("openapi", "GET", "/api/v1/openapi.json", openapi::document),
];

pub static WEBSOCKET_ROUTES: &[WebSocketRoute] = &[
    websocket_route!("ws-connect", "$connect", websocket::connect),
    websocket_route!("ws-disconnect", "$disconnect", websocket::disconnect),
    websocket_route!("ws-default", "$default", websocket::message),
];

/// The route a function serves.
pub fn by_function(function: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|r| r.function == function)
}

/// The route for a method and a path as API Gateway writes it (`/api/v1/payments/{id}`).
pub fn find(method: &str, path: &str) -> Option<&'static Route> {
    ROUTES
        .iter()
        .find(|r| r.method.eq_ignore_ascii_case(method) && r.path == path)
}

pub fn websocket_by_function(function: &str) -> Option<&'static WebSocketRoute> {
    WEBSOCKET_ROUTES.iter().find(|r| r.function == function)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_function_and_every_route_appears_once() {
        let functions: HashSet<_> = ROUTES
            .iter()
            .map(|r| r.function)
            .chain(WEBSOCKET_ROUTES.iter().map(|r| r.function))
            .collect();
        assert_eq!(functions.len(), ROUTES.len() + WEBSOCKET_ROUTES.len());
        let routes: HashSet<_> = ROUTES.iter().map(|r| (r.method, r.path)).collect();
        assert_eq!(routes.len(), ROUTES.len());
    }
}
