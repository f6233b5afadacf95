//! `cargo xtask listen` and `cargo xtask order`: a WebSocket client and an API client for
//! local mode, speaking the same protocol a dashboard does.

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use shared::realtime::protocol::ClientMessage;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

pub struct Options {
    pub base: String,
    pub email: String,
    pub password: String,
    pub account: Option<String>,
    pub after: Option<i64>,
    pub method: String,
}

impl Options {
    /// `--name value` pairs, with defaults for the demo.
    pub fn parse(args: &[String], email: &str, password: &str) -> Result<Options, String> {
        let mut o = Options {
            base: format!("http://{}", crate::dev::GATEWAY_ADDR),
            email: email.into(),
            password: password.into(),
            account: None,
            after: None,
            method: "card".into(),
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let value = it
                .next()
                .ok_or_else(|| format!("{flag} needs a value"))?
                .clone();
            match flag.as_str() {
                "--url" => o.base = value.trim_end_matches('/').to_string(),
                "--email" => o.email = value,
                "--password" => o.password = value,
                "--account" => o.account = Some(value),
                "--after" => {
                    o.after = Some(value.parse().map_err(|_| "--after takes an event id")?)
                }
                "--method" => o.method = value,
                other => return Err(format!("unknown option {other}")),
            }
        }
        Ok(o)
    }
}

async fn call(
    http: &reqwest::Client,
    o: &Options,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> Result<Value, String> {
    let url = format!("{}{path}", o.base);
    let mut req = match method {
        "GET" => http.get(&url),
        _ => http.post(&url).json(&body),
    };
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| format!("{url}: {e} (is `cargo xtask dev` running?)"))?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        Ok(body)
    } else {
        Err(format!("{method} {path}: {status}: {body}"))
    }
}

async fn login(http: &reqwest::Client, o: &Options) -> Result<String, String> {
    let mut body = json!({ "email": o.email, "password": o.password });
    if let Some(a) = &o.account {
        body["account"] = json!(a);
    }
    let reply = call(http, o, "POST", "/api/v1/auth/login", None, body).await?;
    reply["access_token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| "login returned no token".into())
}

/// Prints every event the user may see, live; reconnects and resumes after the last id.
pub async fn listen(o: Options) -> Result<(), String> {
    let http = reqwest::Client::new();
    let mut last = o.after;
    let mut delay = Duration::from_secs(1);
    loop {
        let token = login(&http, &o).await?;
        let ticket = call(
            &http,
            &o,
            "POST",
            "/api/v1/events/ticket",
            Some(&token),
            json!({}),
        )
        .await?;
        let ws = format!(
            "{}/ws?ticket={}",
            o.base.replacen("http", "ws", 1),
            ticket["ticket"].as_str().unwrap_or_default()
        );
        let (socket, _) = match tokio_tungstenite::connect_async(&ws).await {
            Ok(s) => s,
            Err(e) => {
                // Jittered over the upper half, so that many listeners dropped at once
                // (API Gateway's two-hour cut) do not come back at once.
                let wait = delay.mul_f64(0.5 + rand::random::<f64>() * 0.5);
                eprintln!("listen: cannot connect ({e}); retrying in {wait:.1?}");
                tokio::time::sleep(wait).await;
                delay = (delay * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        delay = Duration::from_secs(1);
        let (mut tx, mut rx) = socket.split();
        tx.send(Message::Text(
            ClientMessage::Subscribe { after: last }.to_json().into(),
        ))
        .await
        .map_err(|e| e.to_string())?;
        let mut ping = tokio::time::interval(Duration::from_secs(30));
        ping.tick().await;
        loop {
            let message = tokio::select! {
                _ = ping.tick() => {
                    let _ = tx.send(Message::Text(ClientMessage::Ping.to_json().into())).await;
                    continue;
                }
                m = rx.next() => m,
            };
            let Some(Ok(Message::Text(text))) = message else {
                if matches!(message, Some(Ok(_))) {
                    continue;
                }
                eprintln!("listen: disconnected; resuming after event {last:?}");
                break;
            };
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let items = match v["type"].as_str() {
                Some("event") => vec![v],
                Some("events") => v["items"].as_array().cloned().unwrap_or_default(),
                Some("subscribed") => {
                    println!("subscribed after event {}", v["after"]);
                    continue;
                }
                Some("pong") => continue,
                _ => {
                    println!("{text}");
                    continue;
                }
            };
            for e in items {
                let id = e["id"].as_i64().unwrap_or(0);
                // Drop what was already shown (a resend after a connector restart).
                if last.is_some_and(|l| id <= l) {
                    continue;
                }
                last = Some(id);
                println!("#{id} {} {}", e["event"].as_str().unwrap_or("?"), e["data"]);
            }
        }
    }
}

/// Places an order as a customer: an intent for the cheapest plan, then confirms it.
pub async fn order(o: Options) -> Result<(), String> {
    let http = reqwest::Client::new();
    let token = login(&http, &o).await?;
    let plans = call(&http, &o, "GET", "/api/v1/plans", Some(&token), Value::Null).await?;
    let plan = plans["data"]
        .as_array()
        .and_then(|p| p.first())
        .cloned()
        .ok_or("the account has no plans")?;
    let intent = call(
        &http,
        &o,
        "POST",
        "/api/v1/payments/intent",
        Some(&token),
        json!({ "plan_id": plan["id"], "billing_cycle": "monthly", "payment_method": o.method }),
    )
    .await?;
    println!(
        "created payment {} for {} ({} {})",
        intent["id"], plan["name"], intent["amount"], intent["currency"]
    );
    let id = intent["id"].as_str().unwrap_or_default();
    let paid = call(
        &http,
        &o,
        "POST",
        &format!("/api/v1/payments/{id}/confirm"),
        Some(&token),
        json!({}),
    )
    .await?;
    println!("confirmed: {}", paid["status"]);
    Ok(())
}
