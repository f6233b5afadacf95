//! The WebSocket protocol, typed, in one place: what clients send (`ClientMessage`), what
//! they receive (`ServerMessage`), and how both look as JSON. The WebSocket functions parse
//! with it, the connector writes with it, and clients and tests read with it
//! (docs/architecture.md, "The WebSocket protocol").
//!
//! 1. `POST /api/v1/events/ticket` returns a single-use ticket valid for 60 s; the client
//!    connects with `?ticket=...` (the JWT never goes into a URL).
//! 2. Its first message is `{"action":"subscribe","after":<last id seen or null>}`; the
//!    connector answers `{"type":"subscribed","after":N}` once the connection's cursor is
//!    set, and from then on delivers every event after N the connection may see, as
//!    `{"type":"event",...}` or several at once as `{"type":"events","items":[...]}`.
//! 3. `{"action":"ping"}` is answered with `{"type":"pong"}`; anything malformed with
//!    `{"type":"error","code":"...","message":"..."}`.
//! 4. An event too large for one message (128 KB) arrives as
//!    `{"type":"oversized","id":N,"event":"..."}`: fetch it through `GET /api/v1/events`.

use crate::store::outbox::Event;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Client messages are tiny; anything larger is refused before parsing.
pub const MAX_CLIENT_MESSAGE_BYTES: usize = 4096;

/// API Gateway's limit on one message to a client (128 KB frames).
pub const MAX_SERVER_MESSAGE_BYTES: usize = 128 * 1024;

/// What a client may send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage {
    /// Deliver every event after `after` (`None`: from the newest).
    Subscribe {
        after: Option<i64>,
    },
    Ping,
}

/// Why a client message was refused: sent back as a [`ServerMessage::Error`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Refusal {
            code,
            message: message.into(),
        }
    }

    pub fn to_message(&self) -> ServerMessage {
        ServerMessage::Error {
            code: self.code.to_string(),
            message: self.message.clone(),
        }
    }
}

impl ClientMessage {
    /// Parses one message as a client sent it. Nothing a client sends can make this fail
    /// other than with a `Refusal` that says what to fix.
    pub fn parse(body: &str) -> Result<ClientMessage, Refusal> {
        if body.len() > MAX_CLIENT_MESSAGE_BYTES {
            return Err(Refusal::new(
                "message_too_large",
                format!("messages must be at most {MAX_CLIENT_MESSAGE_BYTES} bytes"),
            ));
        }
        let Ok(Value::Object(msg)) = serde_json::from_str::<Value>(body) else {
            return Err(Refusal::new(
                "invalid_json",
                "messages are JSON objects with an \"action\"",
            ));
        };
        let action = msg.get("action").and_then(Value::as_str).unwrap_or("");
        let unknown_field = msg
            .keys()
            .find(|k| !matches!((action, k.as_str()), (_, "action") | ("subscribe", "after")));
        if let Some(field) = unknown_field {
            return Err(Refusal::new(
                "invalid_message",
                format!("unknown field {field:?}"),
            ));
        }
        match action {
            "subscribe" => {
                let after = match msg.get("after") {
                    None | Some(Value::Null) => None,
                    Some(v) => Some(v.as_i64().filter(|n| *n >= 0).ok_or_else(|| {
                        Refusal::new(
                            "invalid_message",
                            "\"after\" must be the last event id you saw (an integer >= 0) or null",
                        )
                    })?),
                };
                Ok(ClientMessage::Subscribe { after })
            }
            "ping" => Ok(ClientMessage::Ping),
            "" => Err(Refusal::new(
                "unknown_action",
                "a message needs an \"action\": subscribe or ping",
            )),
            other => Err(Refusal::new(
                "unknown_action",
                format!("unknown action {other:?}; use subscribe or ping"),
            )),
        }
    }

    /// The JSON a client sends.
    pub fn to_json(&self) -> String {
        match self {
            ClientMessage::Subscribe { after } => {
                serde_json::json!({ "action": "subscribe", "after": after }).to_string()
            }
            ClientMessage::Ping => r#"{"action":"ping"}"#.to_string(),
        }
    }
}

/// What a client receives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The subscription is set: every event after `after` follows, in id order.
    Subscribed {
        after: i64,
    },
    /// One event: `{"type":"event","id":..,"event":..,"data":..,"created_at":..}`.
    Event(Event),
    /// Several events at once, in id order.
    Events {
        items: Vec<Event>,
    },
    /// An event too large for one WebSocket message (API Gateway's 128 KB): its id and
    /// type only. Fetch it with `GET /api/v1/events?after=<id - 1>&limit=1`. It counts as
    /// delivered: the events after it follow.
    Oversized {
        id: i64,
        event: String,
    },
    Pong,
    Error {
        code: String,
        message: String,
    },
}

impl ServerMessage {
    pub fn to_json(&self) -> String {
        // Serialising these types cannot fail: no maps with non-string keys, no I/O.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn parse(text: &str) -> serde_json::Result<ServerMessage> {
        serde_json::from_str(text)
    }
}

/// One event as its own message; the connector serialises each event once.
pub fn event_json(event: &Event) -> String {
    ServerMessage::Event(event.clone()).to_json()
}

/// Several events already serialised by [`event_json`], as one `events` message, without
/// serialising them again. Equal to `ServerMessage::Events` of the same events.
pub fn batch_json<'a>(events: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::from(r#"{"type":"events","items":["#);
    for (i, event) in events.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(event);
    }
    out.push_str("]}");
    out
}

/// The bytes a batch message adds around its events: the envelope plus a comma per event.
pub const BATCH_OVERHEAD_BYTES: usize = r#"{"type":"events","items":[]}"#.len();

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn event(id: i64) -> Event {
        Event {
            id,
            account_id: uuid::Uuid::nil(),
            user_id: None,
            event: "order_created".into(),
            data: serde_json::json!({ "amount": 1900 }),
            created_at: Utc
                .timestamp_opt(1_700_000_000, 0)
                .single()
                .unwrap_or_default(),
        }
    }

    #[test]
    fn client_messages_parse_or_say_what_is_wrong() {
        assert_eq!(
            ClientMessage::parse(r#"{"action":"subscribe","after":5}"#),
            Ok(ClientMessage::Subscribe { after: Some(5) })
        );
        assert_eq!(
            ClientMessage::parse(r#"{"action":"subscribe","after":null}"#),
            Ok(ClientMessage::Subscribe { after: None })
        );
        assert_eq!(
            ClientMessage::parse(r#"{"action":"ping"}"#),
            Ok(ClientMessage::Ping)
        );
        for (body, code) in [
            ("nope", "invalid_json"),
            ("[1]", "invalid_json"),
            (r#"{"action":"ping","x":1}"#, "invalid_message"),
            (r#"{"action":"subscribe","after":-1}"#, "invalid_message"),
            (r#"{"action":"subscribe","after":"7"}"#, "invalid_message"),
            (r#"{}"#, "unknown_action"),
            (r#"{"action":"dance"}"#, "unknown_action"),
        ] {
            assert_eq!(ClientMessage::parse(body).unwrap_err().code, code, "{body}");
        }
        let big = format!(r#"{{"action":"ping","pad":"{}"}}"#, "x".repeat(5000));
        assert_eq!(
            ClientMessage::parse(&big).unwrap_err().code,
            "message_too_large"
        );
        for m in [
            ClientMessage::Ping,
            ClientMessage::Subscribe { after: Some(9) },
            ClientMessage::Subscribe { after: None },
        ] {
            assert_eq!(ClientMessage::parse(&m.to_json()), Ok(m));
        }
    }

    #[test]
    fn server_messages_have_their_documented_shapes() {
        let json: Value = serde_json::from_str(&event_json(&event(7))).unwrap();
        assert_eq!(json["type"], "event");
        assert_eq!(json["id"], 7);
        assert_eq!(json["event"], "order_created");
        assert!(json.get("account_id").is_none() && json.get("user_id").is_none());
        assert_eq!(
            ServerMessage::Subscribed { after: 3 }.to_json(),
            r#"{"type":"subscribed","after":3}"#
        );
        assert_eq!(ServerMessage::Pong.to_json(), r#"{"type":"pong"}"#);
        assert_eq!(
            ServerMessage::Oversized {
                id: 9,
                event: "invoice_created".into()
            }
            .to_json(),
            r#"{"type":"oversized","id":9,"event":"invoice_created"}"#
        );
    }

    #[test]
    fn a_batch_is_the_events_message_of_the_same_events() {
        let events = [event(1), event(2)];
        let wires: Vec<String> = events.iter().map(event_json).collect();
        let batch = batch_json(wires.iter().map(String::as_str));
        assert_eq!(
            ServerMessage::parse(&batch).unwrap(),
            ServerMessage::Events {
                items: events.to_vec()
            }
        );
        assert_eq!(
            batch.len(),
            BATCH_OVERHEAD_BYTES + wires.iter().map(|w| w.len() + 1).sum::<usize>() - 1
        );
    }
}
