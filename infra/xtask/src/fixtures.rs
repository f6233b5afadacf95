//! `cargo xtask fixtures`: one example event per function in `functions/<name>/events/`,
//! for `cargo lambda invoke <name> --data-file ...` against local mode.
//!
//! They are real API Gateway HTTP API (2.0) events. Requests that need a caller carry a
//! token signed with local mode's secret for a demo user (demo rows have stable ids), valid
//! until 2100; they work only against local mode. The output is deterministic, so the files
//! change only when the routes or this generator do.

use crate::{LOCAL_JWT_SECRET, LOCAL_WEBHOOK_SECRET};
use demo::stable_id;
use devkit::gateway_events::{HttpEvent, WsEvent};
use serde_json::json;
use shared::api::routes::{ROUTES, WEBSOCKET_ROUTES};
use shared::billing::auth::{Principal, Role, Tokens};
use shared::platform::config::JwtSettings;
use std::time::Duration;

const ISSUED: i64 = 1_767_225_600; // 2026-01-01
const EXPIRES: i64 = 4_102_444_800; // 2100-01-01
const PLACEHOLDER_ID: &str = "00000000-0000-7000-8000-000000000000";

pub fn write() -> Result<(), String> {
    let root = devkit::localpg::workspace_root();
    let tokens = Tokens::new(JwtSettings {
        secret: LOCAL_JWT_SECRET.as_bytes().to_vec(),
        issuer: "billwire".into(),
        audience: "billwire-api".into(),
        access_token_ttl: Duration::from_secs(900),
        refresh_token_ttl: Duration::from_secs(14 * 86_400),
    });
    let account = stable_id("account/demo");
    let token = |email: &str, role| {
        tokens
            .issue_at(
                &Principal {
                    user_id: stable_id(&format!("user/{email}")),
                    account_id: account,
                    role,
                },
                ISSUED,
                EXPIRES,
            )
            .map_err(|e| e.to_string())
    };
    let customer = token(demo::DEMO_CUSTOMER.0, Role::Customer)?;
    let admin = token(demo::DEMO_ADMIN.0, Role::Admin)?;
    let starter = stable_id("plan/demo/Starter");

    for (n, route) in ROUTES.iter().enumerate() {
        let mut event = HttpEvent::new(route.method, route.path).context(
            &format!("example-{}", route.function),
            ISSUED * 1000 + n as i64,
        );
        if route.path.contains("{id}") {
            let id = if route.function.starts_with("plans-") {
                starter.to_string()
            } else {
                PLACEHOLDER_ID.to_string()
            };
            event = event.param("id", id);
        }
        let admin_only = matches!(
            route.function,
            "plans-create"
                | "plans-update"
                | "payments-refund"
                | "customers-list"
                | "dashboard-stats"
        ) || route.function.starts_with("invoices-")
            && !matches!(route.function, "invoices-list" | "invoices-get");
        event = match route.function {
            "accounts-create" | "auth-register" | "auth-login" | "auth-refresh" | "auth-logout"
            | "payments-webhook" | "openapi" => event,
            _ if admin_only => event.bearer(&admin),
            _ => event.bearer(&customer),
        };
        let body = match route.function {
            "accounts-create" => Some(json!({
                "name": "Example Shop", "admin_email": "owner@example.shop", "admin_password": "Sup3rSecret!"
            })),
            "auth-register" => Some(json!({
                "email": "new.customer@example.com", "password": "Test123!", "name": "New Customer", "account": "demo"
            })),
            "auth-login" => Some(json!({
                "email": demo::DEMO_CUSTOMER.0, "password": demo::DEMO_CUSTOMER.1
            })),
            // A placeholder: refresh tokens are minted by login (expect a 401 as is).
            "auth-refresh" | "auth-logout" => Some(json!({ "refresh_token": "rt_example" })),
            "plans-create" => Some(json!({
                "name": "Team", "monthly_price": 9900, "yearly_price": 99000, "currency": "USD"
            })),
            "plans-update" => Some(json!({ "description": "For teams getting started" })),
            "payments-intent" => Some(json!({
                "plan_id": starter, "billing_cycle": "monthly", "payment_method": "card"
            })),
            "invoices-create" => Some(json!({
                "customer_id": stable_id(&format!("user/{}", demo::DEMO_CUSTOMER.0)),
                "lines": [{ "description": "Consulting", "quantity": 2, "unit_amount": 15000 }],
                "memo": "Thanks!"
            })),
            "payments-webhook" => {
                let body = json!({
                    "id": "evt_example_1", "type": "payment_intent.succeeded",
                    "data": { "object": { "id": PLACEHOLDER_ID } }
                })
                .to_string();
                let signature = shared::billing::webhooks::sign(
                    LOCAL_WEBHOOK_SECRET.as_bytes(),
                    ISSUED,
                    body.as_bytes(),
                );
                event = event
                    .raw_body(&body)
                    .header("content-type", "application/json")
                    .header("billwire-signature", signature);
                None
            }
            _ => None,
        };
        if let Some(body) = body {
            event = event.json(&body);
        }
        write_event(&root, route.function, &event.to_json())?;
    }
    for (n, route) in WEBSOCKET_ROUTES.iter().enumerate() {
        let id = "ExampleConnId=";
        let at = ISSUED * 1000 + n as i64;
        let event = match route.route_key {
            // Replace the ticket with a fresh one: POST /api/v1/events/ticket.
            "$connect" => WsEvent::connect(id).query(
                "ticket",
                "replace-with-a-ticket-from-POST-/api/v1/events/ticket",
            ),
            "$disconnect" => WsEvent::disconnect(id, 1001, "Going away"),
            key => WsEvent::message(id, key, r#"{"action":"ping"}"#),
        }
        .connected_at(ISSUED * 1000)
        .context(&format!("example-{}", route.function), at);
        write_event(&root, route.function, &event.to_json())?;
    }
    Ok(())
}

fn write_event(
    root: &std::path::Path,
    function: &str,
    event: &serde_json::Value,
) -> Result<(), String> {
    let dir = root.join("functions").join(function).join("events");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let text = serde_json::to_string_pretty(event).map_err(|e| e.to_string())?;
    let file = dir.join("example.json");
    std::fs::write(&file, text + "\n").map_err(|e| format!("{}: {e}", file.display()))?;
    println!(
        "wrote {}",
        file.strip_prefix(root).unwrap_or(&file).display()
    );
    Ok(())
}
