//! A WebSocket client as a dashboard would be: connect with a ticket, subscribe, collect
//! events, drop ids it has seen, resume after the last one.

use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub struct Client {
    sink: SplitSink<Socket, Message>,
    incoming: mpsc::UnboundedReceiver<(Instant, Value)>,
    /// Every event received, in arrival order, duplicates included.
    pub raw: Vec<(Instant, Value)>,
    /// Everything else: subscribed, pong, error, and `{"type":"_closed"}` when it closed.
    pub other: Vec<Value>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Client {
    /// Dropping a client drops its TCP connection, without a close frame, as a vanished
    /// browser would.
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Why a connection was refused: the handshake's HTTP status.
#[derive(Debug)]
pub struct Refused(pub u16);

impl Client {
    pub async fn connect(url: &str) -> Result<Client, Refused> {
        let socket = match tokio_tungstenite::connect_async(url).await {
            Ok((s, _)) => s,
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                return Err(Refused(response.status().as_u16()))
            }
            Err(e) => panic!("websocket connect failed: {e}"),
        };
        Ok(Self::from_socket(socket))
    }

    fn from_socket(socket: Socket) -> Client {
        let (sink, mut stream) = socket.split();
        let (tx, incoming) = mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            while let Some(message) = stream.next().await {
                match message {
                    Ok(Message::Text(t)) => {
                        let v = serde_json::from_str(&t).unwrap_or(Value::String(t.to_string()));
                        if tx.send((Instant::now(), v)).is_err() {
                            return;
                        }
                    }
                    Ok(Message::Close(frame)) => {
                        let code = frame.map(|f| u16::from(f.code)).unwrap_or(1005);
                        let _ =
                            tx.send((Instant::now(), json!({ "type": "_closed", "code": code })));
                        return;
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            let _ = tx.send((Instant::now(), json!({ "type": "_closed", "code": 1006 })));
        });
        Client {
            sink,
            incoming,
            raw: Vec::new(),
            other: Vec::new(),
            reader,
        }
    }

    pub async fn send(&mut self, text: &str) {
        self.sink
            .send(Message::Text(text.into()))
            .await
            .expect("send on websocket");
    }

    /// Subscribes and waits for `{"type":"subscribed"}`; returns its `after`.
    pub async fn subscribe(&mut self, after: Option<i64>) -> i64 {
        self.send(&json!({ "action": "subscribe", "after": after }).to_string())
            .await;
        let found = self
            .until(Duration::from_secs(30), |c| {
                c.other.iter().any(|m| m["type"] == "subscribed")
            })
            .await;
        assert!(found, "no subscribed message; got {:?}", self.other);
        let pos = self
            .other
            .iter()
            .position(|m| m["type"] == "subscribed")
            .unwrap_or(0);
        let m = self.other.remove(pos);
        m["after"].as_i64().expect("subscribed.after")
    }

    fn absorb(&mut self, at: Instant, v: Value) {
        match v["type"].as_str() {
            Some("event") => self.raw.push((at, v)),
            Some("events") => {
                for item in v["items"].as_array().cloned().unwrap_or_default() {
                    self.raw.push((at, item));
                }
            }
            _ => self.other.push(v),
        }
    }

    /// Takes whatever has arrived, without waiting.
    pub fn drain(&mut self) {
        while let Ok((at, v)) = self.incoming.try_recv() {
            self.absorb(at, v);
        }
    }

    /// Reads until `done` holds or `timeout` passes; returns whether it held.
    pub async fn until(&mut self, timeout: Duration, done: impl Fn(&Client) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            self.drain();
            if done(self) {
                return true;
            }
            match tokio::time::timeout_at(deadline, self.incoming.recv()).await {
                Ok(Some((at, v))) => self.absorb(at, v),
                Ok(None) | Err(_) => {
                    self.drain();
                    return done(self);
                }
            }
        }
    }

    /// Waits until every id in `ids` has arrived.
    pub async fn until_ids(&mut self, ids: &BTreeSet<i64>, timeout: Duration) -> bool {
        self.until(timeout, |c| ids.is_subset(&c.unique_ids()))
            .await
    }

    /// Ids in arrival order, duplicates included.
    pub fn raw_ids(&self) -> Vec<i64> {
        self.raw
            .iter()
            .filter_map(|(_, e)| e["id"].as_i64())
            .collect()
    }

    /// What the dashboard shows: each id once (it drops ids it has seen).
    pub fn unique_ids(&self) -> BTreeSet<i64> {
        self.raw_ids().into_iter().collect()
    }

    /// Ids after client-side dedup, in the order first seen.
    pub fn shown_ids(&self) -> Vec<i64> {
        let mut seen = BTreeSet::new();
        self.raw_ids()
            .into_iter()
            .filter(|id| seen.insert(*id))
            .collect()
    }

    pub fn last_id(&self) -> Option<i64> {
        self.raw_ids().into_iter().max()
    }

    pub fn closed_code(&self) -> Option<u64> {
        self.other
            .iter()
            .find(|m| m["type"] == "_closed")
            .and_then(|m| m["code"].as_u64())
    }

    pub async fn close(mut self) {
        let _ = self.sink.send(Message::Close(None)).await;
        let _ = self.sink.close().await;
        // Let the reader see the server's close before the socket goes.
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.reader).await;
    }
}

/// A client that subscribes and then never reads again, with a tiny receive buffer: the
/// worst kind of slow consumer.
pub struct Stalled {
    _socket: Socket,
}

impl Stalled {
    pub async fn connect_and_subscribe(url: &str) -> Stalled {
        let uri: tokio_tungstenite::tungstenite::http::Uri = url.parse().expect("url");
        let port = uri.port_u16().unwrap_or(80);
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("rcvbuf");
        let stream = socket
            .connect(([127, 0, 0, 1], port).into())
            .await
            .expect("tcp connect");
        let (mut ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream))
            .await
            .expect("handshake");
        ws.send(Message::Text(
            r#"{"action":"subscribe","after":null}"#.into(),
        ))
        .await
        .expect("subscribe");
        Stalled { _socket: ws }
    }
}
