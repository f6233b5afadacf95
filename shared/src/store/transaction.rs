//! `Tx`, the one unit of work every write goes through, so that a change, the events it
//! causes and the response remembered under its Idempotency-Key commit together or not at
//! all (docs/architecture.md, "The atomic outbox").

use super::idempotency::{self, Claim, Decision, Key, StoredResponse};
use super::outbox::{self, NewEvent};
use crate::platform::database::Client;
use crate::platform::error::{Error, Result};
use std::ops::Deref;

/// A write transaction. Domain code runs its statements through it (it derefs to the
/// transaction) and `emit`s the events the write causes; `commit` (or
/// `commit_with_response`) then appends those events (last, so the outbox lock is held as
/// briefly as possible), stores the idempotent response, and commits, all or nothing.
/// Dropping a `Tx` rolls everything back.
pub struct Tx<'c> {
    inner: deadpool_postgres::Transaction<'c>,
    events: Vec<NewEvent>,
    claim: Option<Claim>,
}

impl<'c> Tx<'c> {
    pub async fn begin(client: &'c mut Client) -> Result<Tx<'c>> {
        Ok(Tx {
            inner: client.transaction().await?,
            events: Vec::new(),
            claim: None,
        })
    }

    /// Records that this write causes `event`; it is written when the transaction commits.
    pub fn emit(&mut self, event: NewEvent) {
        self.events.push(event);
    }

    /// Dates the pending events `at` instead of now (backdated demo data).
    pub fn backdate_events(&mut self, at: chrono::DateTime<chrono::Utc>) {
        for event in &mut self.events {
            event.created_at = Some(at);
        }
    }

    /// Claims an Idempotency-Key inside this transaction. `Decision::Replay` carries the
    /// response stored by an earlier request with the same key and body: return it and
    /// write nothing. After `Decision::Proceed`, commit with `commit_with_response`.
    pub async fn claim(&mut self, key: Key) -> Result<Decision> {
        let (decision, claim) = idempotency::try_claim(&self.inner, key).await?;
        self.claim = claim;
        Ok(decision)
    }

    /// Stores `response` under the claimed key (if any) and commits, so a retry replays it.
    pub async fn commit_with_response(mut self, response: &StoredResponse) -> Result<Vec<i64>> {
        if let Some(claim) = self.claim.take() {
            idempotency::store(&self.inner, &claim, response).await?;
        }
        self.commit().await
    }

    /// Appends the emitted events and commits; returns the events' ids.
    pub async fn commit(self) -> Result<Vec<i64>> {
        if self.claim.is_some() {
            // A claimed key must be committed with its response, or a retry would replay
            // an empty one.
            return Err(Error::internal(
                "idempotency key claimed but no response stored",
            ));
        }
        let ids = outbox::append(&self.inner, &self.events).await?;
        self.inner.commit().await?;
        Ok(ids)
    }
}

impl<'c> Deref for Tx<'c> {
    type Target = deadpool_postgres::Transaction<'c>;

    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}
