//! The OpenAPI description (`shared::api::openapi`) says what the code does.
//!
//! Besides the tests here, [`check`] runs on every reply a handler test sees
//! (`World::send`): the status must be documented for that route and the body must
//! validate against its schema. Schemas are checked closed: a property the document does
//! not name fails, so a field added to a response without its schema is caught too. A
//! successful request's own body and query are checked against the operation as well.

use crate::support::*;
use jsonschema::Validator;
use serde_json::{json, Map, Value};
use shared::api::routes::ROUTES;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

/// The document as JSON.
fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| serde_json::to_value(shared::api::openapi::openapi()).expect("json"))
}

/// The operation for a method and a route template, if documented.
fn operation(method: &str, route: &str) -> Option<&'static Value> {
    document()["paths"]
        .get(route)?
        .get(method.to_ascii_lowercase())
}

/// Follows a `$ref` within the document (`#/components/...`).
fn resolve(value: &'static Value) -> &'static Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference.strip_prefix('#').expect("a local $ref");
            resolve(
                document()
                    .pointer(pointer)
                    .unwrap_or_else(|| panic!("dangling $ref {reference}")),
            )
        }
        None => value,
    }
}

/// The document's schemas, closed: every object that lists its properties also says
/// `unevaluatedProperties: false` (at the `allOf` that composes it, for a flattened one).
fn closed_schemas() -> &'static Value {
    static CLOSED: OnceLock<Value> = OnceLock::new();
    CLOSED.get_or_init(|| {
        let schemas = &document()["components"]["schemas"];
        let mut closed = schemas.clone();
        if let Value::Object(map) = &mut closed {
            for schema in map.values_mut() {
                close(schema, false, schemas);
            }
        }
        closed
    })
}

fn close(schema: &mut Value, in_all_of: bool, schemas: &Value) {
    let Value::Object(node) = schema else { return };
    if let Some(Value::Array(parts)) = node.get_mut("allOf") {
        for part in parts.iter_mut() {
            // A part that is a reference is inlined, so that closing the whole does not
            // close the referenced schema where it stands alone.
            if let Some(name) = part
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
            {
                *part = schemas[name].clone();
            }
            close(part, true, schemas);
        }
        node.entry("unevaluatedProperties")
            .or_insert(Value::Bool(false));
    }
    if node.contains_key("properties") && !in_all_of && !node.contains_key("additionalProperties") {
        node.insert("unevaluatedProperties".into(), Value::Bool(false));
    }
    if let Some(Value::Object(properties)) = node.get_mut("properties") {
        for property in properties.values_mut() {
            close(property, false, schemas);
        }
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(Value::Array(items)) = node.get_mut(key) {
            for item in items {
                close(item, false, schemas);
            }
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(inner) = node.get_mut(key) {
            close(inner, false, schemas);
        }
    }
}

/// A draft 2020-12 validator for `schema`, its `$ref`s resolved in `schemas`.
fn validator(schema: &Value, schemas: &Value) -> Validator {
    let mut root = Map::new();
    root.insert(
        "$schema".into(),
        json!("https://json-schema.org/draft/2020-12/schema"),
    );
    root.insert("components".into(), json!({ "schemas": schemas }));
    if let Value::Object(schema) = schema {
        root.extend(schema.clone());
    }
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&Value::Object(root))
        .unwrap_or_else(|e| panic!("not a valid schema: {e}\n{schema}"))
}

/// Compiled validators by schema text and closedness: `World::send` validates often.
type Validators = HashMap<(String, bool), Arc<Validator>>;

/// Validates `instance` against `schema` and lists what does not match.
fn errors(schema: &Value, closed: bool, instance: &Value) -> Vec<String> {
    static CACHE: OnceLock<Mutex<Validators>> = OnceLock::new();
    let key = (schema.to_string(), closed);
    let validator = {
        let mut cache = CACHE.get_or_init(Default::default).lock().expect("cache");
        cache
            .entry(key)
            .or_insert_with(|| {
                let schemas = if closed {
                    closed_schemas()
                } else {
                    &document()["components"]["schemas"]
                };
                let mut schema = schema.clone();
                if closed {
                    close(&mut schema, false, &document()["components"]["schemas"]);
                }
                Arc::new(validator(&schema, schemas))
            })
            .clone()
    };
    validator
        .iter_errors(instance)
        .map(|e| format!("at {:?}: {e}", e.instance_path().to_string()))
        .collect()
}

/// The reply to `event` is what the document says that route answers with that status;
/// and if it succeeded, the request was one the document describes.
pub fn check(event: &HttpEvent, reply: &Reply) {
    let (method, route) = (event.method(), event.route());
    let operation = operation(method, route)
        .unwrap_or_else(|| panic!("{method} {route} is not in the OpenAPI document"));
    let status = reply.status.to_string();
    let response = operation["responses"]
        .get(&status)
        .map(resolve)
        .unwrap_or_else(|| {
            panic!(
                "{method} {route} answered {status}, which the OpenAPI document does not list \
                 for it; body: {}",
                reply.body
            )
        });
    let schema = &response["content"]["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "{method} {route} {status}: no JSON schema documented"
    );
    let problems = errors(schema, true, &reply.body);
    assert!(
        problems.is_empty(),
        "{method} {route} answered {status} with a body the OpenAPI document does not \
         describe:\n  {}\nbody: {}\nschema: {schema}",
        problems.join("\n  "),
        reply.body
    );
    if reply.headers.contains_key("idempotent-replayed") {
        assert!(
            documents_idempotency_key(operation),
            "{method} {route} replayed a stored response but does not document Idempotency-Key"
        );
    }
    if (200..300).contains(&reply.status) {
        check_request(event, operation);
    }
}

/// A request that succeeded used only documented query parameters and sent a body its
/// operation describes.
fn check_request(event: &HttpEvent, operation: &'static Value) {
    let (method, route) = (event.method(), event.route());
    let raw = event.to_json();
    let documented: BTreeSet<&str> = parameters(operation)
        .filter(|p| p["in"] == "query")
        .filter_map(|p| p["name"].as_str())
        .collect();
    if let Some(query) = raw["queryStringParameters"].as_object() {
        for name in query.keys() {
            assert!(
                documented.contains(name.as_str()),
                "{method} {route} accepted query parameter {name:?}, which the OpenAPI \
                 document does not list"
            );
        }
    }
    let body = match (&raw["body"], raw["isBase64Encoded"].as_bool()) {
        (Value::String(text), Some(false) | None) if !text.trim().is_empty() => {
            serde_json::from_str::<Value>(text).ok()
        }
        _ => None,
    };
    let request_body = operation.get("requestBody").map(resolve);
    match (body, request_body) {
        (Some(body), Some(request_body)) => {
            let schema = &request_body["content"]["application/json"]["schema"];
            let problems = errors(schema, false, &body);
            assert!(
                problems.is_empty(),
                "{method} {route} accepted a body the OpenAPI document does not describe:\n  \
                 {}\nbody: {body}\nschema: {schema}",
                problems.join("\n  ")
            );
        }
        (None, Some(request_body)) => assert!(
            request_body["required"] != true,
            "{method} {route} succeeded without the body the OpenAPI document requires"
        ),
        (Some(body), None) => panic!(
            "{method} {route} accepted a body ({body}) but the OpenAPI document describes none"
        ),
        (None, None) => {}
    }
}

fn parameters(operation: &'static Value) -> impl Iterator<Item = &'static Value> {
    operation["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(resolve)
}

fn documents_idempotency_key(operation: &'static Value) -> bool {
    parameters(operation).any(|p| p["in"] == "header" && p["name"] == "Idempotency-Key")
}

/// What a route needs: `None` for a public one.
fn security(operation: &Value) -> Option<&Value> {
    operation
        .get("security")
        .filter(|s| s.as_array().is_some_and(|a| !a.is_empty()))
}

const PUBLIC: [&str; 7] = [
    "accounts-create",
    "auth-register",
    "auth-login",
    "auth-refresh",
    "auth-logout",
    "payments-webhook",
    "openapi",
];

/// Their answers are credentials (or nothing to replay), so they are never stored.
const NOT_IDEMPOTENT: [&str; 4] = ["auth-login", "auth-refresh", "auth-logout", "events-ticket"];

#[test]
fn the_document_is_openapi_3_1_and_lists_exactly_the_routes() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "Billwire");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(doc["servers"], json!([{ "url": "/" }]));
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("a path item")
                .keys()
                .filter(|k| {
                    ["get", "post", "put", "patch", "delete", "head", "options"]
                        .contains(&k.as_str())
                })
                .map(move |method| (method.to_ascii_uppercase(), path.clone()))
        })
        .collect();
    let routed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    assert_eq!(documented, routed);
    for route in ROUTES {
        let operation = operation(route.method, route.path).expect("documented");
        assert_eq!(
            operation["operationId"], route.function,
            "an operation is named after the function serving it"
        );
    }
}

#[test]
fn every_reference_resolves_and_every_error_is_the_error_schema() {
    fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    out.push(r);
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(document(), &mut all);
    for r in all {
        let pointer = r.strip_prefix('#').unwrap_or(r);
        assert!(document().pointer(pointer).is_some(), "dangling $ref {r}");
    }
    for route in ROUTES {
        let operation = operation(route.method, route.path).expect("documented");
        let responses = operation["responses"].as_object().expect("responses");
        for (status, response) in responses {
            let schema = &resolve(response)["content"]["application/json"]["schema"];
            if status.starts_with('4') || status.starts_with('5') {
                assert_eq!(
                    schema["$ref"], "#/components/schemas/ErrorBody",
                    "{} {} {status}",
                    route.method, route.path
                );
            }
        }
        assert!(
            responses.contains_key("500"),
            "{} {}",
            route.method,
            route.path
        );
    }
    let error = &document()["components"]["schemas"]["ErrorBody"];
    assert!(errors(
        error,
        true,
        &json!({ "error": { "code": "not_found", "message": "no such payment" } })
    )
    .is_empty());
    assert!(!errors(error, true, &json!({ "error": "not_found" })).is_empty());
}

#[test]
fn idempotent_posts_document_the_key_and_only_public_routes_lack_the_bearer() {
    let bearer = &document()["components"]["securitySchemes"][shared::api::openapi_parts::BEARER];
    assert_eq!(bearer["type"], "http");
    assert_eq!(bearer["scheme"], "bearer");
    assert_eq!(bearer["bearerFormat"], "JWT");
    for route in ROUTES {
        let operation = operation(route.method, route.path).expect("documented");
        let what = format!("{} {} ({})", route.method, route.path, route.function);
        let idempotent = route.method == "POST" && !NOT_IDEMPOTENT.contains(&route.function);
        assert_eq!(
            documents_idempotency_key(operation),
            idempotent,
            "{what}: Idempotency-Key"
        );
        if PUBLIC.contains(&route.function) {
            assert_eq!(security(operation), None, "{what} is public");
            assert!(
                !operation["responses"]
                    .as_object()
                    .expect("responses")
                    .contains_key("401")
                    || matches!(route.function, "auth-login" | "auth-refresh"),
                "{what} is public: no 401"
            );
        } else {
            assert_eq!(
                security(operation),
                Some(&json!([{ shared::api::openapi_parts::BEARER: [] }])),
                "{what} needs a bearer token"
            );
            assert!(
                operation["responses"].get("401").is_some(),
                "{what}: 401 documented"
            );
        }
        if route.path.contains("{id}") {
            let id = parameters(operation)
                .find(|p| p["in"] == "path" && p["name"] == "id")
                .unwrap_or_else(|| panic!("{what}: the id parameter"));
            assert_eq!(id["required"], true);
            assert_eq!(id["schema"]["format"], "uuid");
        }
    }
}

/// The security the document states is what the code enforces: without a token every
/// protected route answers 401, and no public one does. (`World::send` checks each reply.)
#[tokio::test]
async fn protected_routes_refuse_a_missing_token_and_public_ones_do_not() {
    let w = world().await;
    for route in ROUTES {
        let mut event = HttpEvent::new(route.method, route.path);
        if route.path.contains("{id}") {
            event = event.param("id", uuid::Uuid::now_v7());
        }
        let reply = w.send(event).await;
        let protected = security(operation(route.method, route.path).expect("documented"));
        if protected.is_some() {
            reply.assert_error(401, "unauthorized");
        } else {
            assert_ne!(
                reply.status, 401,
                "{} {}: {}",
                route.method, route.path, reply.body
            );
        }
    }
}

#[tokio::test]
async fn the_document_is_served_publicly_and_may_be_cached() {
    let w = world().await;
    let reply = w.send(HttpEvent::get("/api/v1/openapi.json")).await;
    reply.assert_status(200);
    assert_eq!(&reply.body, document());
    assert_eq!(reply.headers["content-type"], "application/json");
    let cache = reply.headers["cache-control"].to_str().expect("ascii");
    assert!(cache.starts_with("public, max-age="), "{cache}");
}

/// The closed check itself: an unknown property fails, also next to flattened ones
/// (`Me` is a `User` with its account, an `allOf`), and a missing one fails.
#[test]
fn response_schemas_are_checked_closed() {
    let me = json!({ "$ref": "#/components/schemas/Me" });
    let body = json!({
        "id": "0190c0de-0000-7000-8000-000000000001",
        "account_id": "0190c0de-0000-7000-8000-000000000002",
        "email": "ann@example.com", "name": "Ann", "role": "customer",
        "created_at": "2026-01-01T00:00:00Z",
        "account": {
            "id": "0190c0de-0000-7000-8000-000000000002",
            "name": "Shop", "slug": "shop", "currency": "USD"
        }
    });
    assert_eq!(errors(&me, true, &body), Vec::<String>::new());
    let mut extra = body.clone();
    extra["password_hash"] = json!("x");
    assert!(!errors(&me, true, &extra).is_empty());
    let mut nested = body.clone();
    nested["account"]["secret"] = json!(1);
    assert!(!errors(&me, true, &nested).is_empty());
    let mut missing = body.clone();
    missing.as_object_mut().expect("object").remove("email");
    assert!(!errors(&me, true, &missing).is_empty());
    let mut bad_format = body;
    bad_format["created_at"] = json!("yesterday");
    assert!(!errors(&me, true, &bad_format).is_empty());
}
