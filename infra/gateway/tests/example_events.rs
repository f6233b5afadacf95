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
