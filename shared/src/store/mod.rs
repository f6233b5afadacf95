//! The write path: [`Tx`] (the one unit of work), the [`outbox`] it appends events to and
//! reads them back from gap-free, and [`idempotency`] keys stored with their responses.
//! Built on `platform`; knows nothing of the billing rules or HTTP.

pub mod idempotency;
pub mod outbox;
mod transaction;

pub use transaction::Tx;
