//! The billing rules: accounts and their users, authentication, plans, payments, invoices,
//! customers, dashboard stats, the payment provider's webhooks, and the validated values
//! they are made of. Writes go through `store::Tx` and emit their events there. Nothing
//! here knows HTTP: operations take typed input and return typed results or an `Error`
//! whose `Kind` the edge maps to a status.

pub mod accounts;
pub mod auth;
pub mod customers;
pub mod invoices;
pub mod pagination;
pub mod payments;
pub mod plans;
pub mod stats;
pub mod values;
pub mod webhooks;
