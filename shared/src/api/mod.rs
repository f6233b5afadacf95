//! The edge: the only code that knows `lambda_http`. One module per resource turns API
//! Gateway events into calls on the wings below and their results into responses;
//! [`routes`] is the table of every route and the function serving it; [`response`] maps
//! errors to statuses; [`lambda`] runs a handler as a function and logs once per request;
//! [`openapi`] is the OpenAPI 3.1 description generated from the handlers' annotations
//! (the HTTP pieces they cite are in [`openapi_parts`]).

pub mod accounts;
mod app;
pub mod auth;
pub mod customers;
pub mod events;
pub mod idempotency;
pub mod invoices;
pub mod lambda;
mod log;
pub mod openapi;
pub mod openapi_parts;
pub mod payments;
pub mod plans;
pub mod request;
pub mod response;
pub mod routes;
pub mod stats;
pub mod webhooks;
pub mod websocket;

pub use app::App;
pub use lambda::{dispatch, serve, serve_websocket};
pub use response::ApiResponse;
