//! Posting to connections through the API Gateway management API, with the real
//! `aws-sdk-apigatewaymanagement` client; only the endpoint differs between AWS and local mode.
//!
//! One client (one pooled, kept-alive HTTP connection set) for the process, and a semaphore
//! bounding requests in flight. Failures other than `410 Gone` are retried with backoff by
//! the caller's task only, so a slow or failing connection never holds up another.

use crate::fair::FairSemaphore;
use crate::fatal::Fatal;
use crate::lease::Lease;
use crate::metrics::Metrics;
use aws_sdk_apigatewaymanagement::config::http::HttpResponse;
use aws_sdk_apigatewaymanagement::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_apigatewaymanagement::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_apigatewaymanagement::error::SdkError;
use aws_sdk_apigatewaymanagement::operation::get_connection::GetConnectionError;
use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use aws_sdk_apigatewaymanagement::Client;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The last check before a post leaves: an SDK interceptor that refuses to transmit once
/// the lease may have ended. It runs after everything that can wait (a send slot,
/// credentials, the endpoint, signing), so a leader paused anywhere before it finds its
/// lease over when it wakes; only one paused between here and the socket write can still
/// send (docs/architecture.md, 4, "Known gaps").
struct LeaseCheck {
    lease: Arc<Lease>,
    refused: Arc<AtomicBool>,
}

impl std::fmt::Debug for LeaseCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseCheck")
            .field("epoch", &self.lease.epoch)
            .finish()
    }
}

impl Intercept for LeaseCheck {
    fn name(&self) -> &'static str {
        "LeaseCheck"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if self.lease.valid() {
            return Ok(());
        }
        self.refused.store(true, Ordering::SeqCst);
        Err("this replica's lease has ended".into())
    }
}

/// API Gateway's limit on one message.
pub use shared::realtime::protocol::MAX_SERVER_MESSAGE_BYTES as MAX_MESSAGE_BYTES;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SendError {
    /// The connection no longer exists (410): forget it.
    #[error("connection is gone")]
    Gone,
    /// The message is over API Gateway's limit; retrying cannot help.
    #[error("message too large")]
    TooLarge,
    /// The connector is shutting down.
    #[error("cancelled")]
    Cancelled,
    /// This replica's lease has ended (or may have): it sends nothing more.
    #[error("no longer the leader")]
    NotLeader,
}

#[derive(Clone)]
pub struct Sender {
    client: Client,
    /// Requests in flight, handed out to waiting accounts in turn.
    limit: Arc<FairSemaphore>,
    timeout: Duration,
    metrics: Arc<Metrics>,
    fatal: Arc<Fatal>,
}

/// Why a request failed, and whether retrying can ever fix it: API Gateway refusing the
/// connector's credentials or permissions (401/403), or an endpoint that cannot be reached
/// at all (no such host, nothing listening, no route), cannot.
fn unfixable<E: std::fmt::Debug>(e: &SdkError<E, HttpResponse>) -> Option<String> {
    match e {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            matches!(status, 401 | 403).then(|| {
                format!(
                    "the management API refuses the connector ({status} {:?}): check its IAM permissions (execute-api:ManageConnections) and that WEBSOCKET_MANAGEMENT_ENDPOINT is the WebSocket API's public endpoint, not a private execute-api endpoint",
                    service.err()
                )
            })
        }
        SdkError::DispatchFailure(failure) => Some(format!(
            "the management API cannot be reached ({failure:?}): check WEBSOCKET_MANAGEMENT_ENDPOINT and the task's route to the internet (public IP or NAT gateway)"
        )),
        _ => None,
    }
}

impl Sender {
    pub async fn new(
        endpoint: &str,
        concurrency: usize,
        timeout: Duration,
        metrics: Arc<Metrics>,
        fatal: Arc<Fatal>,
    ) -> Sender {
        let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let config = aws_sdk_apigatewaymanagement::config::Builder::from(&shared)
            .endpoint_url(endpoint)
            // Retries are ours: they must keep one connection's messages in order.
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build();
        Sender {
            client: Client::from_conf(config),
            limit: FairSemaphore::new(concurrency),
            timeout,
            metrics,
            fatal,
        }
    }

    /// Whether API Gateway still has the connection (`GetConnection`; 410 means gone).
    pub async fn alive(&self, connection_id: &str) -> Result<bool, String> {
        // Probes take their turn as one more account.
        let _permit = self.limit.acquire(uuid::Uuid::nil()).await;
        let reply = tokio::time::timeout(
            self.timeout,
            self.client
                .get_connection()
                .connection_id(connection_id)
                .send(),
        )
        .await
        .map_err(|_| format!("timed out after {:?}", self.timeout))?;
        match reply {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), GetConnectionError::GoneException(_)) =>
            {
                Ok(false)
            }
            Err(e) => Err(format!("{e:?}")),
        }
    }

    /// Posts one message to a connection of `account`, retrying transient failures with
    /// capped backoff until it is delivered, the connection is gone, or `cancel` fires.
    /// Every attempt checks that `lease` still runs just before it is transmitted: a deposed
    /// or paused leader sends nothing more.
    pub async fn post(
        &self,
        account: uuid::Uuid,
        connection_id: &str,
        data: Vec<u8>,
        cancel: &tokio_util::sync::CancellationToken,
        lease: &Arc<Lease>,
    ) -> Result<(), SendError> {
        if data.len() > MAX_MESSAGE_BYTES {
            return Err(SendError::TooLarge);
        }
        let blob = Blob::new(data);
        let mut delay = Duration::from_millis(50);
        loop {
            let attempt = async {
                // Accounts take turns for slots: a crowd of one account's posts (a
                // reconnect storm) does not queue in front of another account's.
                let _permit = self.limit.acquire(account).await;
                // `LeaseCheck` refuses it just before it would leave (after credentials,
                // endpoint and signing) if the lease may have ended meanwhile.
                let check = LeaseCheck {
                    lease: lease.clone(),
                    refused: Arc::new(AtomicBool::new(false)),
                };
                let refused = check.refused.clone();
                let sent = tokio::time::timeout(
                    self.timeout,
                    self.client
                        .post_to_connection()
                        .connection_id(connection_id)
                        .data(blob.clone())
                        .customize()
                        .interceptor(check)
                        .send(),
                )
                .await;
                if refused.load(Ordering::SeqCst) {
                    return None;
                }
                Some(sent)
            };
            let outcome = tokio::select! {
                _ = cancel.cancelled() => return Err(SendError::Cancelled),
                outcome = attempt => match outcome {
                    Some(outcome) => outcome,
                    None => return Err(SendError::NotLeader),
                },
            };
            if let Ok(Err(e)) = &outcome {
                if let Some(cause) = unfixable(e) {
                    self.fatal.failed(cause);
                }
            }
            let error = match outcome {
                Ok(Ok(_)) => {
                    self.fatal.recovered();
                    self.metrics.messages_sent.fetch_add(1, Relaxed);
                    return Ok(());
                }
                Ok(Err(SdkError::ServiceError(e))) => match e.err() {
                    PostToConnectionError::GoneException(_) => return Err(SendError::Gone),
                    PostToConnectionError::PayloadTooLargeException(_) => {
                        return Err(SendError::TooLarge)
                    }
                    other => format!("{other:?}"),
                },
                Ok(Err(other)) => format!("{other:?}"),
                Err(_) => format!("timed out after {:?}", self.timeout),
            };
            self.metrics.send_failures.fetch_add(1, Relaxed);
            tracing::warn!(
                connection_id,
                error,
                retry_in_ms = delay.as_millis() as u64,
                "post to connection failed"
            );
            tokio::select! {
                _ = cancel.cancelled() => return Err(SendError::Cancelled),
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }
}
