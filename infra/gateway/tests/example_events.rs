//! Every function has a checked-in example event (for `cargo lambda invoke --data-file`),
//! and each is a valid API Gateway event of the kind its route receives.

use gateway::template::{default_path, Template};
use lambda_http::aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use std::path::Path;

fn example(function: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../functions")
        .join(function)
        .join("events/example.json");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run `cargo xtask fixtures`)", path.display()))
}

#[test]
fn every_route_has_a_valid_example_event() {
    let t = Template::load(&default_path()).expect("template.yaml");
    for route in &t.http_routes {
        let text = example(&route.function);
        let request = lambda_http::request::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: not an HTTP API event: {e}", route.function));
        assert_eq!(
            request.method().as_str(),
            route.method,
            "{}",
            route.function
        );
        let json: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(json["routeKey"], route.route_key(), "{}", route.function);
        assert!(
            route.matches(&route.method, request.uri().path()).is_some(),
            "{}",
            route.function
        );
    }
    for route in &t.ws_routes {
        let text = example(&route.function);
        let event: ApiGatewayWebsocketProxyRequest = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: not a WebSocket event: {e}", route.function));
        assert_eq!(
            event.request_context.route_key.as_deref(),
            Some(route.route_key.as_str())
        );
    }
}

/// `template.yaml` (what API Gateway and local mode route by) and `api::routes` (what the
/// functions serve, and what tests call) name the same routes and functions, and every
/// crate under `functions/` is one of them (or `db-migrate`).
#[test]
fn the_template_and_the_route_table_agree() {
    use shared::api::routes::{ROUTES, WEBSOCKET_ROUTES};
    use std::collections::BTreeSet;
    let t = Template::load(&default_path()).expect("template.yaml");
    let in_template: BTreeSet<(String, String, String)> = t
        .http_routes
        .iter()
        .map(|r| (r.function.clone(), r.method.clone(), r.path.clone()))
        .collect();
    let in_table: BTreeSet<(String, String, String)> = ROUTES
        .iter()
        .map(|r| (r.function.into(), r.method.into(), r.path.into()))
        .collect();
    assert_eq!(in_template, in_table);
    let ws_template: BTreeSet<(String, String)> = t
        .ws_routes
        .iter()
        .map(|r| (r.function.clone(), r.route_key.clone()))
        .collect();
    let ws_table: BTreeSet<(String, String)> = WEBSOCKET_ROUTES
        .iter()
        .map(|r| (r.function.into(), r.route_key.into()))
        .collect();
    assert_eq!(ws_template, ws_table);
    let crates: BTreeSet<String> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../functions"))
            .expect("functions/")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name != "db-migrate")
            .collect();
    let served: BTreeSet<String> = ROUTES
        .iter()
        .map(|r| r.function)
        .chain(WEBSOCKET_ROUTES.iter().map(|r| r.function))
        .map(String::from)
        .collect();
    assert_eq!(crates, served);
}
