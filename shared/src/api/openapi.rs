//! The OpenAPI 3.1 description of the HTTP API, generated from the code: the operations from
//! the `#[utoipa::path]` annotations on the handlers, the schemas from the `ToSchema` derives
//! on the types the handlers read and write. `GET /api/v1/openapi.json` serves it, and the
//! handler tests validate every response they see against it (shared/tests/api/openapi.rs),
//! so it cannot drift from what the API really does.
//!
//! The data types describe themselves; the HTTP pieces the annotations cite (error
//! responses, parameters) are in `api::openapi_parts`.

use super::openapi_parts::{
    BadRequest, Conflict, ErrorBody, Forbidden, InternalError, NotFound, PayloadTooLarge,
    Unauthorized, Unavailable, UnprocessableEntity, UnsupportedMediaType, BEARER,
};
use super::response::{raw_json, ApiResponse};
use super::{accounts, auth, customers, events, invoices, payments, plans, stats, webhooks, App};
use crate::platform::error::{Error, Result};
use http::{header, HeaderValue, StatusCode};
use lambda_http::Request;
use std::sync::OnceLock;
use utoipa::openapi::schema::{Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Required};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Billwire",
        version = env!("CARGO_PKG_VERSION"),
        description = "Billing API: accounts, plans, payments, invoices, customers, the event \
            log and the dashboard. Bodies are JSON; money is integer minor units with an ISO \
            4217 currency. Errors are `{\"error\":{\"code\",\"message\"}}`; a 4xx writes nothing."
    ),
    servers((url = "/")),
    paths(
        accounts::create,
        accounts::register,
        auth::login,
        auth::refresh,
        auth::logout,
        auth::me,
        plans::list,
        plans::create,
        plans::update,
        payments::create_intent,
        payments::confirm,
        payments::refund,
        payments::list,
        payments::get,
        webhooks::receive,
        invoices::create,
        invoices::list,
        invoices::get,
        invoices::finalize,
        invoices::pay,
        invoices::void,
        invoices::mark_uncollectible,
        customers::list,
        events::list,
        events::ticket,
        stats::dashboard,
        document,
    ),
    components(
        schemas(ErrorBody),
        responses(
            BadRequest,
            Unauthorized,
            Forbidden,
            NotFound,
            Conflict,
            PayloadTooLarge,
            UnsupportedMediaType,
            UnprocessableEntity,
            InternalError,
            Unavailable,
        )
    ),
    modifiers(&BearerScheme, &OptionalBodies, &ThroughCloudFront),
)]
pub struct ApiDoc;

/// Adds the bearer scheme that protected operations name: the access token from
/// `POST /api/v1/auth/login` (a JWT, HS256, 15 minutes).
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "The access_token from POST /api/v1/auth/login or /auth/refresh.",
                    ))
                    .build(),
            ),
        );
    }
}

/// Confirm, refund, the invoice state changes and the ticket take an optional body: utoipa
/// writes `request_body = Option<T>` as "T or null", but a JSON `null` is refused like any
/// non-object. What they accept is no body, or a T: the body is not required, and is a T.
struct OptionalBodies;

impl Modify for OptionalBodies {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let operations = openapi.paths.paths.values_mut().flat_map(|item| {
            [&mut item.get, &mut item.post, &mut item.patch]
                .into_iter()
                .flatten()
        });
        for operation in operations {
            let Some(RefOr::T(body)) = operation.request_body.as_mut() else {
                continue;
            };
            for content in body.content.values_mut() {
                let RefOr::T(content) = content else { continue };
                let Some(RefOr::T(Schema::OneOf(one_of))) = &content.schema else {
                    continue;
                };
                let mut not_null = one_of.items.iter().filter(|item| {
                    !matches!(item, RefOr::T(Schema::Object(o)) if o.schema_type == Type::Null.into())
                });
                if let (Some(only), None) = (not_null.next(), not_null.next()) {
                    content.schema = Some(only.clone());
                    body.required = Some(Required::False);
                }
            }
        }
    }
}

/// Deployed behind CloudFront, every operation may answer 403 `direct_access` to a request
/// that did not come through it (`api::lambda`, `Config::origin_secret`).
struct ThroughCloudFront;

impl Modify for ThroughCloudFront {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [&mut item.get, &mut item.post, &mut item.patch];
            for operation in operations.into_iter().flatten() {
                operation
                    .responses
                    .responses
                    .entry("403".to_string())
                    .or_insert_with(|| {
                        RefOr::Ref(utoipa::openapi::Ref::from_response_name("Forbidden"))
                    });
            }
        }
    }
}

/// The document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document as JSON, built once per process.
pub fn json() -> Result<&'static str> {
    static JSON: OnceLock<String> = OnceLock::new();
    if let Some(text) = JSON.get() {
        return Ok(text);
    }
    let text = openapi().to_json().map_err(Error::internal)?;
    Ok(JSON.get_or_init(|| text))
}

/// `GET /api/v1/openapi.json`: this description. Public, and cacheable for a few minutes.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "openapi",
    tag = "meta",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document", body = Object),
        (status = 500, response = InternalError),
    )
)]
pub async fn document(_app: App, _req: Request) -> Result<ApiResponse> {
    let mut response = raw_json(StatusCode::OK, json()?.to_string());
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(response)
}
