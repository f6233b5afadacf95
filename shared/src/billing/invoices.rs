//! Invoices: lines in integer minor units, numbers gap-free per account (`INV-000042`), and
//! Stripe's state machine:
//!
//! ```text
//! draft --finalize--> open --pay--> paid
//!                      |  \--mark-uncollectible--> uncollectible --pay--> paid
//!                      \--void--> void             uncollectible --void--> void
//! ```
//!
//! Anything else is a 409. Creation records `invoice_created`; each transition `order_updated`.

use super::pagination::{self, Cursor, Listing, Page};
use crate::billing::auth::Principal;
use crate::billing::payments::{customer, CustomerRef};
use crate::billing::values::{Amount, Currency, InvoiceNumber, MAX_AMOUNT};
use crate::platform::error::{Error, Result};
use crate::store::outbox::{EventKind, NewEvent};
use crate::store::Tx;
use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::GenericClient;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    Draft,
    Open,
    Paid,
    Void,
    Uncollectible,
}

impl InvoiceStatus {
    pub const ALL: [&'static str; 5] = ["draft", "open", "paid", "void", "uncollectible"];

    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceStatus::Draft => "draft",
            InvoiceStatus::Open => "open",
            InvoiceStatus::Paid => "paid",
            InvoiceStatus::Void => "void",
            InvoiceStatus::Uncollectible => "uncollectible",
        }
    }

    fn from_db(s: &str) -> Result<Self> {
        Ok(match s {
            "draft" => InvoiceStatus::Draft,
            "open" => InvoiceStatus::Open,
            "paid" => InvoiceStatus::Paid,
            "void" => InvoiceStatus::Void,
            "uncollectible" => InvoiceStatus::Uncollectible,
            other => return Err(Error::internal(format!("unknown invoice status {other:?}"))),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Finalize,
    Pay,
    Void,
    MarkUncollectible,
}

impl Transition {
    pub fn name(self) -> &'static str {
        match self {
            Transition::Finalize => "finalize",
            Transition::Pay => "pay",
            Transition::Void => "void",
            Transition::MarkUncollectible => "mark-uncollectible",
        }
    }

    /// Stripe's invoice state machine: the status `self` leads to from `from`, if allowed.
    pub fn apply(self, from: InvoiceStatus) -> Option<InvoiceStatus> {
        use InvoiceStatus::*;
        match (self, from) {
            (Transition::Finalize, Draft) => Some(Open),
            (Transition::Pay, Open | Uncollectible) => Some(Paid),
            (Transition::Void, Open | Uncollectible) => Some(Void),
            (Transition::MarkUncollectible, Open) => Some(Uncollectible),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Line {
    pub description: String,
    pub quantity: i64,
    pub unit_amount: i64,
    pub amount: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Invoice {
    pub id: Uuid,
    #[serde(skip)]
    pub account_id: Uuid,
    pub number: String,
    pub status: InvoiceStatus,
    pub currency: String,
    pub subtotal: i64,
    pub total: i64,
    #[schema(required = true)]
    pub memo: Option<String>,
    #[schema(required = true)]
    pub due_date: Option<NaiveDate>,
    pub customer: CustomerRef,
    /// Present when one invoice is shown, absent in lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines: Option<Vec<Line>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[schema(required = true)]
    pub finalized_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub paid_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub voided_at: Option<DateTime<Utc>>,
}

const SELECT: &str =
    "SELECT i.id, i.account_id, i.number, i.status, i.currency, i.subtotal, i.total,
        i.memo, i.due_date, i.created_at, i.updated_at, i.finalized_at, i.paid_at, i.voided_at,
        u.id AS customer_id, u.name AS customer_name, u.email AS customer_email
   FROM invoices i JOIN users u ON u.id = i.customer_id";

impl Invoice {
    fn from_row(row: &tokio_postgres::Row) -> Result<Invoice> {
        Ok(Invoice {
            id: row.try_get("id")?,
            account_id: row.try_get("account_id")?,
            number: row.try_get("number")?,
            status: InvoiceStatus::from_db(row.try_get("status")?)?,
            currency: row.try_get("currency")?,
            subtotal: row.try_get("subtotal")?,
            total: row.try_get("total")?,
            memo: row.try_get("memo")?,
            due_date: row.try_get("due_date")?,
            customer: CustomerRef {
                id: row.try_get("customer_id")?,
                name: row.try_get("customer_name")?,
                email: row.try_get("customer_email")?,
            },
            lines: None,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            finalized_at: row.try_get("finalized_at")?,
            paid_at: row.try_get("paid_at")?,
            voided_at: row.try_get("voided_at")?,
        })
    }
}

pub struct NewLine {
    pub description: String,
    pub quantity: i64,
    pub unit_amount: Amount,
}

pub struct NewInvoice {
    pub customer_id: Uuid,
    pub currency: Option<Currency>,
    pub lines: Vec<NewLine>,
    pub memo: Option<String>,
    pub due_date: Option<NaiveDate>,
}

pub const MAX_LINES: usize = 100;
pub const MAX_QUANTITY: i64 = 1_000_000;

/// Line amounts and the total, in integer minor units, refusing anything above
/// [`MAX_AMOUNT`] instead of overflowing.
pub fn totals(lines: &[NewLine]) -> Result<(Vec<i64>, i64)> {
    let mut amounts = Vec::with_capacity(lines.len());
    let mut total: i64 = 0;
    for (i, line) in lines.iter().enumerate() {
        let amount = line
            .quantity
            .checked_mul(line.unit_amount.get())
            .filter(|a| *a <= MAX_AMOUNT)
            .ok_or_else(|| {
                Error::validation(format!(
                    "lines[{i}]: quantity x unit_amount exceeds {MAX_AMOUNT}"
                ))
            })?;
        total = total
            .checked_add(amount)
            .filter(|t| *t <= MAX_AMOUNT)
            .ok_or_else(|| Error::validation(format!("the invoice total exceeds {MAX_AMOUNT}")))?;
        amounts.push(amount);
    }
    Ok((amounts, total))
}

/// Creates a draft invoice with the account's next number. Records `invoice_created`.
pub async fn create(tx: &mut Tx<'_>, who: &Principal, new: NewInvoice) -> Result<Invoice> {
    who.require_admin()?;
    let (amounts, total) = totals(&new.lines)?;
    let customer = customer(&**tx, who.account_id, new.customer_id).await?;
    let currency = match new.currency {
        Some(c) => c.code(),
        None => tx
            .query_one(
                "SELECT currency FROM accounts WHERE id = $1",
                &[&who.account_id],
            )
            .await?
            .try_get(0)?,
    };
    // Bumped in this transaction: a rollback gives the number back, so numbers have no gaps.
    let seq: i64 = tx
        .query_one(
            "INSERT INTO invoice_counters (account_id, last_number) VALUES ($1, 1)
             ON CONFLICT (account_id) DO UPDATE SET last_number = invoice_counters.last_number + 1
             RETURNING last_number",
            &[&who.account_id],
        )
        .await?
        .try_get(0)?;
    let number = InvoiceNumber::new(seq as u64)?.to_string();
    let id = Uuid::now_v7();
    let row = tx
        .query_one(
            "INSERT INTO invoices (id, account_id, customer_id, number, status, currency,
                                   subtotal, total, memo, due_date)
             VALUES ($1, $2, $3, $4, 'draft', $5, $6, $6, $7, $8)
             RETURNING created_at, updated_at",
            &[
                &id,
                &who.account_id,
                &customer.id,
                &number,
                &currency,
                &total,
                &new.memo,
                &new.due_date,
            ],
        )
        .await?;
    let mut lines = Vec::with_capacity(new.lines.len());
    for (position, (line, amount)) in new.lines.into_iter().zip(amounts).enumerate() {
        tx.execute(
            "INSERT INTO invoice_lines (invoice_id, position, description, quantity, unit_amount, amount)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &id,
                &(position as i32),
                &line.description,
                &line.quantity,
                &line.unit_amount.get(),
                &amount,
            ],
        )
        .await?;
        lines.push(Line {
            description: line.description,
            quantity: line.quantity,
            unit_amount: line.unit_amount.get(),
            amount,
        });
    }
    let invoice = Invoice {
        id,
        account_id: who.account_id,
        number,
        status: InvoiceStatus::Draft,
        currency,
        subtotal: total,
        total,
        memo: new.memo,
        due_date: new.due_date,
        customer,
        lines: Some(lines),
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        finalized_at: None,
        paid_at: None,
        voided_at: None,
    };
    tx.emit(NewEvent::new(
        who.account_id,
        Some(invoice.customer.id),
        EventKind::InvoiceCreated,
        json!({
            "invoice_id": invoice.id,
            "invoice_number": invoice.number,
            "total": invoice.total,
            "currency": invoice.currency,
            "status": invoice.status,
            "customer": invoice.customer,
        }),
    ));
    Ok(invoice)
}

/// Moves an invoice through the state machine (admins). Records `order_updated`.
pub async fn transition(
    tx: &mut Tx<'_>,
    who: &Principal,
    id: Uuid,
    t: Transition,
) -> Result<Invoice> {
    who.require_admin()?;
    let row = tx
        .query_opt(
            &format!("{SELECT} WHERE i.id = $1 AND i.account_id = $2 FOR UPDATE OF i"),
            &[&id, &who.account_id],
        )
        .await?
        .ok_or_else(|| Error::not_found("invoice"))?;
    let before = Invoice::from_row(&row)?;
    let status = t.apply(before.status).ok_or_else(|| {
        Error::conflict(
            "invalid_state_transition",
            format!(
                "a {} invoice cannot be {}",
                before.status.as_str(),
                past_tense(t)
            ),
        )
    })?;
    let row = tx
        .query_one(
            "UPDATE invoices SET status = $2::text, updated_at = now(),
                    finalized_at = CASE WHEN $2 = 'open' THEN now() ELSE finalized_at END,
                    paid_at = CASE WHEN $2 = 'paid' THEN now() ELSE paid_at END,
                    voided_at = CASE WHEN $2 = 'void' THEN now() ELSE voided_at END
              WHERE id = $1
              RETURNING updated_at, finalized_at, paid_at, voided_at",
            &[&id, &status.as_str()],
        )
        .await?;
    let after = Invoice {
        status,
        updated_at: row.try_get("updated_at")?,
        finalized_at: row.try_get("finalized_at")?,
        paid_at: row.try_get("paid_at")?,
        voided_at: row.try_get("voided_at")?,
        ..before.clone()
    };
    tx.emit(NewEvent::new(
        who.account_id,
        Some(after.customer.id),
        EventKind::OrderUpdated,
        json!({
            "id": after.id,
            "kind": "invoice",
            "status": after.status,
            "previous_status": before.status,
            "invoice_number": after.number,
            "total": after.total,
            "currency": after.currency,
            "customer": after.customer,
        }),
    ));
    Ok(after)
}

fn past_tense(t: Transition) -> &'static str {
    match t {
        Transition::Finalize => "finalized",
        Transition::Pay => "paid",
        Transition::Void => "voided",
        Transition::MarkUncollectible => "marked uncollectible",
    }
}

/// One invoice the caller may see, with its lines.
pub async fn get(db: &impl GenericClient, who: &Principal, id: Uuid) -> Result<Invoice> {
    let row = db
        .query_opt(
            &format!(
                "{SELECT} WHERE i.id = $1 AND i.account_id = $2
                    AND ($3::uuid IS NULL OR i.customer_id = $3)"
            ),
            &[&id, &who.account_id, &who.customer_scope()],
        )
        .await?
        .ok_or_else(|| Error::not_found("invoice"))?;
    let mut invoice = Invoice::from_row(&row)?;
    let lines = db
        .query(
            "SELECT description, quantity, unit_amount, amount FROM invoice_lines
              WHERE invoice_id = $1 ORDER BY position",
            &[&id],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(Line {
                description: r.try_get("description")?,
                quantity: r.try_get("quantity")?,
                unit_amount: r.try_get("unit_amount")?,
                amount: r.try_get("amount")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    invoice.lines = Some(lines);
    Ok(invoice)
}

/// The caller's invoices, newest first, optionally of one status.
pub async fn list(
    db: &impl GenericClient,
    who: &Principal,
    cursor: &Cursor,
    status: Option<&str>,
) -> Result<Page<Invoice>> {
    const LISTING: Listing = Listing {
        table: "invoices",
        select: SELECT,
        alias: "i",
        what: "invoice",
    };
    pagination::newest_first(db, &LISTING, who, status, cursor, Invoice::from_row).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use InvoiceStatus::*;

    #[test]
    fn state_machine_matches_stripe() {
        let all = [Draft, Open, Paid, Void, Uncollectible];
        let allowed = |t: Transition| -> Vec<(InvoiceStatus, InvoiceStatus)> {
            all.iter()
                .filter_map(|s| t.apply(*s).map(|n| (*s, n)))
                .collect()
        };
        assert_eq!(allowed(Transition::Finalize), vec![(Draft, Open)]);
        assert_eq!(
            allowed(Transition::Pay),
            vec![(Open, Paid), (Uncollectible, Paid)]
        );
        assert_eq!(
            allowed(Transition::Void),
            vec![(Open, Void), (Uncollectible, Void)]
        );
        assert_eq!(
            allowed(Transition::MarkUncollectible),
            vec![(Open, Uncollectible)]
        );
    }

    #[test]
    fn totals_are_exact_and_bounded() {
        let line = |q, u| NewLine {
            description: "x".into(),
            quantity: q,
            unit_amount: Amount::parse("u", u).unwrap(),
        };
        assert_eq!(
            totals(&[line(3, 1999), line(1, 1)]).unwrap(),
            (vec![5997, 1], 5998)
        );
        assert!(totals(&[line(MAX_QUANTITY, MAX_AMOUNT)]).is_err());
        assert!(totals(&[line(1, MAX_AMOUNT), line(1, 1)]).is_err());
    }
}
