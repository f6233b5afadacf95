//! Handler tests: every endpoint driven with real API Gateway HTTP API (2.0) events against
//! a real Postgres, a fresh database per test.

mod support;

mod accounts;
mod auth;
mod connections;
mod customers;
mod demo;
mod events;
mod idempotency;
mod invoices;
mod layering;
mod lease;
mod openapi;
mod origin;
mod outage;
mod outbox;
mod payments;
mod plans;
mod scoping;
mod secrets;
mod stats;
mod tls;
mod webhooks;
