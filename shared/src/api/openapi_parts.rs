//! The pieces of the OpenAPI description that are about HTTP, cited by the handlers'
//! `#[utoipa::path]` annotations: the error body and one response component per error
//! status, the bearer scheme's name, the `Idempotency-Key` header, the `{id}` path parameter
//! and the list endpoints' query parameters. `api::openapi` assembles the document.

use super::request::MAX_BODY_BYTES;
use crate::billing::invoices::InvoiceStatus;
use crate::billing::payments::PaymentStatus;
use serde::Serialize;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Required};
use utoipa::{IntoParams, PartialSchema, ToSchema};

/// The name of the bearer security scheme, as operations' `security(...)` cite it.
pub const BEARER: &str = "bearer";

/// Every 4xx and 5xx answer: a stable `code` to branch on and a `message` to show.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable and machine-readable, e.g. `validation_failed`, `not_found`, `slug_taken`.
    pub code: String,
    /// For people; safe to show.
    pub message: String,
}

fn error_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
}

/// The error responses, one component each, that operations cite by status.
macro_rules! error_responses {
    ($($name:ident => $description:expr;)*) => {$(
        pub struct $name;

        impl<'r> utoipa::ToResponse<'r> for $name {
            fn response() -> (&'r str, RefOr<Response>) {
                (stringify!($name), error_response(&$description).into())
            }
        }
    )*};
}

error_responses! {
    BadRequest => "Malformed request: missing body, invalid JSON, unknown or mistyped \
        fields, a bad query parameter or Idempotency-Key";
    Unauthorized => "No valid bearer access token (or, for login and refresh, wrong \
        credentials or a spent refresh token)";
    Forbidden => "The caller may not do this (admins only, or not their own)";
    NotFound => "No such resource visible to the caller";
    Conflict => "The request conflicts with the current state: an illegal state change or \
        a taken name";
    PayloadTooLarge => format!("The body is larger than {MAX_BODY_BYTES} bytes");
    UnsupportedMediaType => "The body is not sent as application/json";
    UnprocessableEntity => "Well-formed but invalid input, or an Idempotency-Key reused with a \
        different request";
    InternalError => "Our fault; the request was not applied";
    Unavailable => "The database is unavailable; retry shortly";
}

/// The `Idempotency-Key` header of an idempotent POST.
pub struct IdempotencyKey;

impl IntoParams for IdempotencyKey {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![ParameterBuilder::new()
            .name("Idempotency-Key")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "Stripe's semantics: a retry with the same key and body replays the stored \
                 response (with `Idempotent-Replayed: true`) and writes nothing; the same key \
                 with another body is 422 `idempotency_key_reused`. 1-255 visible ASCII \
                 characters, kept 24 h, scoped to the caller.",
            ))
            .schema(Some(String::schema()))
            .build()]
    }
}

/// The `{id}` path parameter.
pub struct PathId;

impl IntoParams for PathId {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![ParameterBuilder::new()
            .name("id")
            .parameter_in(ParameterIn::Path)
            .required(Required::True)
            .description(Some("The resource's id (anything else is 404)"))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid))),
            ))
            .build()]
    }
}

/// `GET /api/v1/customers`: a page of the list, newest first.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct PageQuery {
    /// Items per page.
    #[param(minimum = 1, maximum = 100, default = 20)]
    limit: Option<i64>,
    /// The last id of the previous page.
    starting_after: Option<uuid::Uuid>,
}

/// `GET /api/v1/payments`: a page, newest first, optionally of one status.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct PaymentsQuery {
    /// Items per page.
    #[param(minimum = 1, maximum = 100, default = 20)]
    limit: Option<i64>,
    /// The last id of the previous page.
    starting_after: Option<uuid::Uuid>,
    /// Only payments in this status.
    status: Option<PaymentStatus>,
}

/// `GET /api/v1/invoices`: a page, newest first, optionally of one status.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct InvoicesQuery {
    /// Items per page.
    #[param(minimum = 1, maximum = 100, default = 20)]
    limit: Option<i64>,
    /// The last id of the previous page.
    starting_after: Option<uuid::Uuid>,
    /// Only invoices in this status.
    status: Option<InvoiceStatus>,
}

/// `GET /api/v1/events`: the log after an event id, oldest first.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct EventsQuery {
    /// Events after this id (the `next_after` of the previous page).
    #[param(minimum = 0, default = 0)]
    after: Option<i64>,
    /// Events per page.
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<i64>,
}
