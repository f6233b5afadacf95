//! The WebSocket functions, driven with real API Gateway WebSocket events, and the ticket
//! endpoint with real HTTP API events.

use crate::support::*;
use devkit::gateway_events::WsEvent;
use lambda_http::aws_lambda_events::apigw::ApiGatewayProxyResponse;
use lambda_http::aws_lambda_events::encodings::Body;
use serde_json::{json, Value};

fn body(r: &ApiGatewayProxyResponse) -> Value {
    match &r.body {
        Some(Body::Text(t)) => serde_json::from_str(t).unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

async fn ticket(w: &World, who: &Actor) -> String {
    let reply = w
        .send(HttpEvent::post("/api/v1/events/ticket").bearer(&who.token))
        .await;
    reply.assert_status(201);
    assert_eq!(reply.body["expires_in"], 60);
    reply.body["ticket"].as_str().expect("ticket").to_string()
}

async fn connect(
    w: &World,
    id: &str,
    ticket: Option<&str>,
    account: Option<&str>,
) -> ApiGatewayProxyResponse {
    let mut e = WsEvent::connect(id);
    if let Some(t) = ticket {
        e = e.query("ticket", t);
    }
    if let Some(a) = account {
        e = e.query("account", a);
    }
    e.send(w.app()).await
}

async fn message(w: &World, id: &str, text: &str) -> ApiGatewayProxyResponse {
    WsEvent::message(id, "$default", text).send(w.app()).await
}

async fn state(w: &World, id: &str) -> Option<(String, Option<i64>, i32)> {
    w.db.client()
        .await
        .query_opt(
            "SELECT state, requested_after, generation FROM ws_connections WHERE connection_id = $1",
            &[&id],
        )
        .await
        .expect("query")
        .map(|r| (r.get(0), r.get(1), r.get(2)))
}

#[tokio::test]
async fn a_ticket_opens_one_connection_once() {
    let w = world().await;
    let admin = w.merchant("shop").await;
    let t = ticket(&w, &admin).await;
    assert_eq!(t.len(), 64);
    // Only its hash is stored.
    let row =
        w.db.client()
            .await
            .query_one(
                "SELECT count(*) FILTER (WHERE ticket_hash = sha256(convert_to($1, 'UTF8'))),
                    count(*) FILTER (WHERE strpos(t::text, $1) > 0)
               FROM ws_tickets t",
                &[&t],
            )
            .await
            .expect("count");
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (1, 0));

    let ok = connect(&w, "conn-1=", Some(&t), Some("shop")).await;
    assert_eq!(ok.status_code, 200);
    assert_eq!(
        state(&w, "conn-1=").await,
        Some(("pending".into(), None, 0))
    );
    let again = connect(&w, "conn-2=", Some(&t), None).await;
    assert_eq!(again.status_code, 401);
    assert_eq!(body(&again)["error"]["code"], "unauthorized");
    assert_eq!(state(&w, "conn-2=").await, None);
}

#[tokio::test]
async fn bad_tickets_are_refused_and_register_nothing() {
    let w = world().await;
    let admin = w.merchant("shop").await;
    let other = w.merchant("other").await;
    let expired = ticket(&w, &admin).await;
    w.db.client()
        .await
        .execute(
            "UPDATE ws_tickets SET expires_at = now() - interval '1 second'",
            &[],
        )
        .await
        .expect("expire");
    let foreign = ticket(&w, &other).await;
    for (t, account, status) in [
        (None, None, 401),
        (Some(""), None, 401),
        (Some("nope"), None, 401),
        (Some(expired.as_str()), None, 401),
        (Some("x".repeat(300).as_str()), None, 401),
        (Some(foreign.as_str()), Some("shop"), 403),
    ] {
        let r = connect(&w, "conn-x=", t, account).await;
        assert_eq!(r.status_code, status, "{t:?} {account:?}");
        assert!(body(&r)["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
        assert_eq!(state(&w, "conn-x=").await, None);
    }
    // The ticket endpoint itself needs a caller.
    w.refuses(
        HttpEvent::post("/api/v1/events/ticket"),
        401,
        "unauthorized",
    )
    .await;
    w.refuses(
        HttpEvent::post("/api/v1/events/ticket")
            .bearer(&admin.token)
            .json(&json!({ "ttl": 3600 })),
        400,
        "invalid_request",
    )
    .await;
}

#[tokio::test]
async fn subscribe_fixes_the_cursor_and_wakes_the_connector() {
    let w = world().await;
    let admin = w.merchant("shop").await;
    let ann = w.customer("shop", "ann@example.com").await;
    let plan = w.plan(&admin, "Pro").await;
    for _ in 0..3 {
        w.intent(&ann, &plan, "card").await;
    }
    let t = ticket(&w, &admin).await;
    assert_eq!(connect(&w, "c1=", Some(&t), None).await.status_code, 200);

    let (client, mut conn) = tokio_postgres::connect(&w.db.url, tokio_postgres::NoTls)
        .await
        .expect("listen");
    let (tx, mut notes) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        use futures::StreamExt;
        let mut s = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
        while let Some(Ok(m)) = s.next().await {
            if let tokio_postgres::AsyncMessage::Notification(n) = m {
                let _ = tx.send(n.payload().to_string());
            }
        }
    });
    client
        .batch_execute("LISTEN billwire_connections")
        .await
        .expect("listen");

    // null: from the newest event.
    let r = message(&w, "c1=", r#"{"action":"subscribe","after":null}"#).await;
    assert_eq!(r.status_code, 200);
    assert!(
        r.body.is_none(),
        "the connector, not the function, answers subscribe"
    );
    assert_eq!(
        state(&w, "c1=").await,
        Some(("subscribing".into(), Some(3), 1))
    );
    let note = tokio::time::timeout(std::time::Duration::from_secs(5), notes.recv()).await;
    assert_eq!(note.ok().flatten().as_deref(), Some("c1="));
    // An id beyond the newest is clamped to it; an older one is kept.
    message(&w, "c1=", r#"{"action":"subscribe","after":999}"#).await;
    assert_eq!(
        state(&w, "c1=").await,
        Some(("subscribing".into(), Some(3), 2))
    );
    message(&w, "c1=", r#"{"action":"subscribe","after":1}"#).await;
    assert_eq!(
        state(&w, "c1=").await,
        Some(("subscribing".into(), Some(1), 3))
    );
    message(&w, "c1=", r#"{"action":"subscribe"}"#).await;
    assert_eq!(
        state(&w, "c1=").await,
        Some(("subscribing".into(), Some(3), 4))
    );
    drop(client);

    let pong = message(&w, "c1=", r#"{"action":"ping"}"#).await;
    assert_eq!(body(&pong), json!({ "type": "pong" }));

    let r = message(&w, "unknown=", r#"{"action":"subscribe","after":null}"#).await;
    assert_eq!(body(&r)["code"], "not_connected");
}

#[tokio::test]
async fn bad_messages_get_an_error_back_and_change_nothing() {
    let w = world().await;
    let admin = w.merchant("shop").await;
    let t = ticket(&w, &admin).await;
    assert_eq!(connect(&w, "c1=", Some(&t), None).await.status_code, 200);
    let before = state(&w, "c1=").await;
    let big = format!(r#"{{"action":"ping","x":"{}"}}"#, "x".repeat(5000));
    for (text, code) in [
        ("", "invalid_json"),
        ("hello", "invalid_json"),
        ("[]", "invalid_json"),
        ("42", "invalid_json"),
        ("{}", "unknown_action"),
        (r#"{"action":7}"#, "unknown_action"),
        (r#"{"action":"dance"}"#, "unknown_action"),
        (r#"{"action":"subscribe","after":-1}"#, "invalid_message"),
        (r#"{"action":"subscribe","after":1.5}"#, "invalid_message"),
        (r#"{"action":"subscribe","after":"10"}"#, "invalid_message"),
        (
            r#"{"action":"subscribe","after":null,"user":"x"}"#,
            "invalid_message",
        ),
        (r#"{"action":"ping","after":1}"#, "invalid_message"),
        (big.as_str(), "message_too_large"),
    ] {
        let r = message(&w, "c1=", text).await;
        assert_eq!(r.status_code, 200, "{text:.40}");
        let b = body(&r);
        assert_eq!(b["type"], "error", "{text:.40}");
        assert_eq!(b["code"], code, "{text:.40}: {b}");
        assert!(b["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert_eq!(state(&w, "c1=").await, before);
}

#[tokio::test]
async fn disconnect_forgets_the_connection() {
    let w = world().await;
    let admin = w.merchant("shop").await;
    let t = ticket(&w, &admin).await;
    assert_eq!(connect(&w, "c1=", Some(&t), None).await.status_code, 200);
    let r = WsEvent::disconnect("c1=", 1001, "Going away")
        .send(w.app())
        .await;
    assert_eq!(r.status_code, 200);
    assert_eq!(state(&w, "c1=").await, None);
    // Twice is fine.
    let r = WsEvent::disconnect("c1=", 1001, "Going away")
        .send(w.app())
        .await;
    assert_eq!(r.status_code, 200);
}

#[tokio::test]
async fn a_reused_connection_id_starts_afresh_as_its_new_caller() {
    let w = world().await;
    let admin = w.merchant("shop").await;
    let ann = w.customer("shop", "ann@example.com").await;
    let first = ticket(&w, &admin).await;
    assert_eq!(
        connect(&w, "reused=", Some(&first), None).await.status_code,
        200
    );
    message(&w, "reused=", r#"{"action":"subscribe","after":0}"#).await;
    w.db.client()
        .await
        .execute(
            "UPDATE ws_connections SET state = 'live', cursor = 7 WHERE connection_id = 'reused='",
            &[],
        )
        .await
        .expect("as the connector would");
    let (tx, mut notified) = tokio::sync::mpsc::unbounded_channel();
    let (client, mut connection) = {
        let url = w.db.url.clone();
        tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("connect")
    };
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        use futures::StreamExt;
        while let Some(Ok(m)) = messages.next().await {
            if let tokio_postgres::AsyncMessage::Notification(n) = m {
                let _ = tx.send(n.payload().to_string());
            }
        }
    });
    // The connection is being polled (above), so the LISTEN can complete.
    client
        .batch_execute("LISTEN billwire_connections")
        .await
        .expect("listen");

    // The same id connects again, as someone else.
    let second = ticket(&w, &ann).await;
    assert_eq!(
        connect(&w, "reused=", Some(&second), None)
            .await
            .status_code,
        200
    );
    let row =
        w.db.client()
            .await
            .query_one(
                "SELECT user_id, role, state, requested_after, cursor, generation
               FROM ws_connections WHERE connection_id = 'reused='",
                &[],
            )
            .await
            .expect("row");
    assert_eq!(row.get::<_, uuid::Uuid>(0), ann.id);
    assert_eq!(row.get::<_, String>(1), "customer");
    assert_eq!(row.get::<_, String>(2), "pending");
    assert_eq!(row.get::<_, Option<i64>>(3), None);
    assert_eq!(
        row.get::<_, Option<i64>>(4),
        None,
        "no cursor of the old caller"
    );
    assert_eq!(row.get::<_, i32>(5), 2, "a new generation");
    // The connector is told, so it stops delivering the old caller's events.
    let payload = tokio::time::timeout(std::time::Duration::from_secs(10), notified.recv())
        .await
        .expect("a wake-up for the connector");
    assert_eq!(payload.as_deref(), Some("reused="));
}

#[tokio::test]
async fn an_old_subscriptions_cursor_is_never_written_over_a_new_one() {
    use shared::realtime::registry::{save_cursors, CursorUpdate};
    let w = world().await;
    let admin = w.merchant("shop").await;
    let t = ticket(&w, &admin).await;
    connect(&w, "resub=", Some(&t), None).await;
    message(&w, "resub=", r#"{"action":"subscribe","after":0}"#).await;
    let db = w.db.client().await;
    db.execute(
        "UPDATE ws_connections SET state = 'live', cursor = 40 WHERE connection_id = 'resub='",
        &[],
    )
    .await
    .expect("live");
    // Re-subscribe asking for less; the connector activates the new generation at 10.
    message(&w, "resub=", r#"{"action":"subscribe","after":10}"#).await;
    db.execute(
        "UPDATE ws_connections SET state = 'live', cursor = 10 WHERE connection_id = 'resub='",
        &[],
    )
    .await
    .expect("live again");
    let update = |generation, cursor| CursorUpdate {
        connection_id: "resub=".into(),
        generation,
        cursor,
    };
    // The first subscription's progress, flushed late, changes nothing...
    save_cursors(&db, &[update(1, 90)], 0).await.expect("save");
    assert_eq!(cursor_of(&db, "resub=").await, Some(10));
    // ...while the current one's moves it forward, and never back.
    save_cursors(&db, &[update(2, 12)], 0).await.expect("save");
    assert_eq!(cursor_of(&db, "resub=").await, Some(12));
    save_cursors(&db, &[update(2, 11)], 0).await.expect("save");
    assert_eq!(cursor_of(&db, "resub=").await, Some(12));
}

async fn cursor_of(db: &deadpool_postgres::Object, id: &str) -> Option<i64> {
    db.query_one(
        "SELECT cursor FROM ws_connections WHERE connection_id = $1",
        &[&id],
    )
    .await
    .expect("cursor")
    .get(0)
}

#[tokio::test]
async fn a_ticket_is_never_kept_for_a_replay() {
    let w = world().await;
    let admin = w.merchant("shop").await;
    let request = || {
        HttpEvent::post("/api/v1/events/ticket")
            .bearer(&admin.token)
            .idempotency_key("same-key")
    };
    let first = w.send(request()).await;
    let second = w.send(request()).await;
    first.assert_status(201);
    second.assert_status(201);
    assert!(!second.headers.contains_key("idempotent-replayed"));
    assert_ne!(
        first.body["ticket"], second.body["ticket"],
        "a retry gets a new ticket"
    );
    // Neither ticket is stored anywhere in plain text.
    let db = w.db.client().await;
    for reply in [&first, &second] {
        let ticket = reply.body["ticket"].as_str().expect("ticket");
        let found: i64 = db
            .query_one(
                "SELECT (SELECT count(*) FROM idempotency_keys k WHERE strpos(k::text, $1) > 0)
                      + (SELECT count(*) FROM ws_tickets t WHERE strpos(t::text, $1) > 0)",
                &[&ticket],
            )
            .await
            .expect("search")
            .get(0);
        assert_eq!(found, 0, "ticket {ticket} is stored in plain text");
    }
}
