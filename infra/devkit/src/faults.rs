//! Fault injection for tests. [`Proxy`]: a TCP proxy that sits between a process and its
//! peer (Postgres, the management API) and breaks the path on command, the way networks
//! break. [`HttpFaults`]: an HTTP proxy in front of the management API that slows or fails
//! the requests for chosen connections. (Pausing a process: `supervisor::Proc::signal("STOP")`.)

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with the connections through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Bytes flow both ways.
    Pass,
    /// Every connection is reset the moment its client next sends anything, and new ones
    /// are refused: the peer "went away" while the client still believes its connection is
    /// open (a pooled session fails on its next statement, not when it is checked out).
    ResetOnSend,
    /// Nothing moves either way and nothing is closed: a partition. Each side's kernel
    /// still ACKs what its peer sent (so keepalives see nothing wrong), bytes wait in
    /// socket buffers, new connections hang unanswered. Back to `Pass`, what waited flows
    /// on, as TCP delivers after a partition heals.
    Blackhole,
    /// Every chunk either way is held this long first: a slow path.
    Delay(Duration),
}

/// A proxy listening on a loopback port, forwarding to `upstream`. Dropping it stops it.
pub struct Proxy {
    addr: SocketAddr,
    mode: Arc<watch::Sender<Mode>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (mode, _) = watch::channel(Mode::Pass);
        let mode = Arc::new(mode);
        let accepting = mode.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mode = accepting.subscribe();
                if *mode.borrow() == Mode::ResetOnSend {
                    drop(client);
                    continue;
                }
                tokio::spawn(relay(client, upstream, mode));
            }
        });
        Ok(Proxy { addr, mode, task })
    }

    /// Where clients connect instead of the upstream.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(mut client: TcpStream, upstream: SocketAddr, mut mode: watch::Receiver<Mode>) {
    // A new connection during a partition hangs until it heals.
    if mode.wait_for(|m| *m != Mode::Blackhole).await.is_err() {
        return;
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut from_client, mut to_client) = client.split();
    let (mut from_server, mut to_server) = server.split();
    let mut up = [0u8; 16 * 1024];
    let mut down = [0u8; 16 * 1024];
    loop {
        let current = *mode.borrow_and_update();
        if current == Mode::Blackhole {
            // Read nothing, close nothing: wait for the partition to heal.
            if mode.changed().await.is_err() {
                return;
            }
            continue;
        }
        let delay = match current {
            Mode::Delay(d) => d,
            _ => Duration::ZERO,
        };
        tokio::select! {
            read = from_client.read(&mut up) => {
                let Ok(n @ 1..) = read else { return };
                if *mode.borrow() == Mode::ResetOnSend {
                    return;
                }
                tokio::time::sleep(delay).await;
                if to_server.write_all(&up[..n]).await.is_err() {
                    return;
                }
            }
            read = from_server.read(&mut down) => {
                let Ok(n @ 1..) = read else { return };
                tokio::time::sleep(delay).await;
                if to_client.write_all(&down[..n]).await.is_err() {
                    return;
                }
            }
            changed = mode.changed() => {
                if changed.is_err() {
                    return;
                }
                // ResetOnSend waits for the client's next bytes (above).
            }
        }
    }
}

/// What [`HttpFaults`] does to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpFault {
    /// Forward it.
    Pass,
    /// Forward it after this long.
    Slow(Duration),
    /// Answer this status without forwarding it.
    Fail(u16),
}

/// An HTTP proxy in front of the API Gateway management API (`/@connections/{id}`), with a
/// fault for all requests and, over it, one per connection id.
pub struct HttpFaults {
    addr: SocketAddr,
    rules: Arc<Mutex<Rules>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct Rules {
    all: Option<HttpFault>,
    by_connection: HashMap<String, HttpFault>,
    /// Requests seen, by connection id.
    seen: HashMap<String, usize>,
    /// POSTs (messages) seen, to any connection.
    posts: usize,
}

impl HttpFaults {
    pub async fn start(upstream: &str) -> std::io::Result<HttpFaults> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let rules = Arc::new(Mutex::new(Rules::default()));
        let state = (
            rules.clone(),
            upstream.trim_end_matches('/').to_string(),
            reqwest::Client::new(),
        );
        let app = axum::Router::new()
            .route("/@connections/{id}", axum::routing::any(forward))
            .with_state(Arc::new(state));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(HttpFaults { addr, rules, task })
    }

    /// The endpoint to give the connector instead of the upstream.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Sets the fault for every connection without one of its own.
    pub fn set_all(&self, fault: HttpFault) {
        if let Ok(mut r) = self.rules.lock() {
            r.all = Some(fault);
        }
    }

    /// Sets the fault for one connection's requests.
    pub fn set(&self, connection_id: &str, fault: HttpFault) {
        if let Ok(mut r) = self.rules.lock() {
            r.by_connection.insert(connection_id.to_string(), fault);
        }
    }

    /// Back to passing everything.
    pub fn heal(&self) {
        if let Ok(mut r) = self.rules.lock() {
            r.all = None;
            r.by_connection.clear();
        }
    }

    /// Messages (POSTs) seen, to any connection, faulted or not.
    pub fn posts(&self) -> usize {
        self.rules.lock().map(|r| r.posts).unwrap_or(0)
    }

    /// Requests seen for one connection.
    pub fn seen(&self, connection_id: &str) -> usize {
        self.rules
            .lock()
            .map(|r| r.seen.get(connection_id).copied().unwrap_or(0))
            .unwrap_or(0)
    }
}

impl Drop for HttpFaults {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type HttpState = Arc<(Arc<Mutex<Rules>>, String, reqwest::Client)>;

async fn forward(
    axum::extract::State(state): axum::extract::State<HttpState>,
    axum::extract::Path(connection): axum::extract::Path<String>,
    request: axum::extract::Request,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (rules, upstream, http) = (&state.0, &state.1, &state.2);
    // As sent: the id percent-encoded.
    let path = request.uri().path().to_string();
    let fault = match rules.lock() {
        Ok(mut r) => {
            *r.seen.entry(connection.clone()).or_default() += 1;
            if request.method() == axum::http::Method::POST {
                r.posts += 1;
            }
            r.by_connection
                .get(&connection)
                .copied()
                .or(r.all)
                .unwrap_or(HttpFault::Pass)
        }
        Err(_) => HttpFault::Pass,
    };
    match fault {
        HttpFault::Fail(status) => {
            let status = axum::http::StatusCode::from_u16(status)
                .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
            return (status, "{\"message\":\"injected fault\"}").into_response();
        }
        HttpFault::Slow(d) => tokio::time::sleep(d).await,
        HttpFault::Pass => {}
    }
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 1 << 20).await else {
        return axum::http::StatusCode::BAD_REQUEST.into_response();
    };
    let query = parts
        .uri
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let mut upstream_request = http.request(parts.method, format!("{upstream}{path}{query}"));
    for (name, value) in &parts.headers {
        if name != axum::http::header::HOST {
            upstream_request = upstream_request.header(name, value);
        }
    }
    match upstream_request.body(body).send().await {
        Ok(reply) => {
            let status = reply.status();
            let headers = reply.headers().clone();
            let bytes = reply.bytes().await.unwrap_or_default();
            let mut response = (status, bytes).into_response();
            for (name, value) in &headers {
                if name != axum::http::header::CONTENT_LENGTH
                    && name != axum::http::header::TRANSFER_ENCODING
                {
                    response.headers_mut().insert(name, value.clone());
                }
            }
            response
        }
        Err(_) => axum::http::StatusCode::BAD_GATEWAY.into_response(),
    }
}
