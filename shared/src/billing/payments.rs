//! Payments (the seed's orders): created as an intent for a plan, then confirmed (succeeded
//! or failed), possibly refunded. Every status change records its event in the same
//! transaction.
//!
//! Test payment methods, Stripe-style: `card`, `pm_card_visa`, `pm_card_mastercard` and
//! `pm_card_amex` succeed; `pm_card_chargeDeclined` fails with `card_declined` and
//! `pm_card_chargeDeclinedInsufficientFunds` with `insufficient_funds`.

use super::pagination::{self, Cursor, Listing, Page};
use crate::billing::auth::Principal;
use crate::billing::plans;
use crate::billing::values::BillingCycle;
use crate::platform::error::{Error, Result};
use crate::store::outbox::{EventKind, NewEvent};
use crate::store::Tx;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    RequiresConfirmation,
    Succeeded,
    Failed,
    Canceled,
    Refunded,
}

impl PaymentStatus {
    pub const ALL: [&'static str; 5] = [
        "requires_confirmation",
        "succeeded",
        "failed",
        "canceled",
        "refunded",
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::RequiresConfirmation => "requires_confirmation",
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Canceled => "canceled",
            PaymentStatus::Refunded => "refunded",
        }
    }

    fn from_db(s: &str) -> Result<Self> {
        Ok(match s {
            "requires_confirmation" => PaymentStatus::RequiresConfirmation,
            "succeeded" => PaymentStatus::Succeeded,
            "failed" => PaymentStatus::Failed,
            "canceled" => PaymentStatus::Canceled,
            "refunded" => PaymentStatus::Refunded,
            other => return Err(Error::internal(format!("unknown payment status {other:?}"))),
        })
    }
}

/// The customer a payment or invoice belongs to, as shown with it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CustomerRef {
    pub id: Uuid,
    pub name: String,
    pub email: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Payment {
    pub id: Uuid,
    #[serde(skip)]
    pub account_id: Uuid,
    pub status: PaymentStatus,
    pub amount: i64,
    pub currency: String,
    pub plan_id: Uuid,
    pub plan_name: String,
    pub billing_cycle: BillingCycle,
    pub payment_method: String,
    /// Why it failed: null unless `failed`.
    #[schema(required = true)]
    pub failure_code: Option<String>,
    #[schema(required = true)]
    pub failure_message: Option<String>,
    pub customer: CustomerRef,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const SELECT: &str =
    "SELECT p.id, p.account_id, p.status, p.amount, p.currency, p.plan_id, p.plan_name,
        p.billing_cycle, p.payment_method, p.failure_code, p.failure_message,
        p.created_at, p.updated_at, u.id AS customer_id, u.name AS customer_name,
        u.email AS customer_email
   FROM payments p JOIN users u ON u.id = p.customer_id";

impl Payment {
    fn from_row(row: &tokio_postgres::Row) -> Result<Payment> {
        let cycle: &str = row.try_get("billing_cycle")?;
        Ok(Payment {
            id: row.try_get("id")?,
            account_id: row.try_get("account_id")?,
            status: PaymentStatus::from_db(row.try_get("status")?)?,
            amount: row.try_get("amount")?,
            currency: row.try_get("currency")?,
            plan_id: row.try_get("plan_id")?,
            plan_name: row.try_get("plan_name")?,
            billing_cycle: if cycle == "yearly" {
                BillingCycle::Yearly
            } else {
                BillingCycle::Monthly
            },
            payment_method: row.try_get("payment_method")?,
            failure_code: row.try_get("failure_code")?,
            failure_message: row.try_get("failure_message")?,
            customer: CustomerRef {
                id: row.try_get("customer_id")?,
                name: row.try_get("customer_name")?,
                email: row.try_get("customer_email")?,
            },
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

/// How a confirmation with a payment method turns out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Failed { code: String, message: String },
}

/// The payment methods this provider knows, and what confirming with each does.
pub fn method_outcome(method: &str) -> Option<Outcome> {
    match method {
        "card" | "pm_card_visa" | "pm_card_mastercard" | "pm_card_amex" => Some(Outcome::Succeeded),
        "pm_card_chargeDeclined" => Some(Outcome::Failed {
            code: "card_declined".into(),
            message: "Your card was declined.".into(),
        }),
        "pm_card_chargeDeclinedInsufficientFunds" => Some(Outcome::Failed {
            code: "insufficient_funds".into(),
            message: "Your card has insufficient funds.".into(),
        }),
        _ => None,
    }
}

pub const METHODS: &str = "card, pm_card_visa, pm_card_mastercard, pm_card_amex, \
                           pm_card_chargeDeclined, pm_card_chargeDeclinedInsufficientFunds";

/// A payment method that `method_outcome` knows.
pub fn parse_method(raw: &str) -> Result<String> {
    let m = raw.trim();
    match method_outcome(m) {
        Some(_) => Ok(m.to_string()),
        None => Err(Error::validation(format!(
            "payment_method {raw:?} is not supported; use one of: {METHODS}"
        ))),
    }
}

pub struct NewIntent {
    pub plan_id: Uuid,
    pub billing_cycle: BillingCycle,
    pub payment_method: String,
    /// Admins create intents for a customer; customers for themselves.
    pub customer_id: Option<Uuid>,
}

/// Creates a payment intent for a plan; the amount is the plan's price for the cycle.
/// Records `order_created`.
pub async fn create_intent(tx: &mut Tx<'_>, who: &Principal, new: NewIntent) -> Result<Payment> {
    let customer_id = match (who.is_admin(), new.customer_id) {
        (true, Some(id)) => id,
        (true, None) => {
            return Err(Error::validation(
                "admins must pass customer_id: the customer the payment is for",
            ))
        }
        (false, Some(id)) if id != who.user_id => {
            return Err(Error::forbidden(
                "customers create payments only for themselves",
            ))
        }
        (false, _) => who.user_id,
    };
    let customer = customer(&**tx, who.account_id, customer_id).await?;
    let plan = plans::get_for_order(tx, who.account_id, new.plan_id).await?;
    let amount = plan.price(new.billing_cycle);
    let id = Uuid::now_v7();
    let row = tx
        .query_one(
            "INSERT INTO payments (id, account_id, customer_id, plan_id, plan_name, billing_cycle,
                                   amount, currency, payment_method, status)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'requires_confirmation')
             RETURNING created_at, updated_at",
            &[
                &id,
                &who.account_id,
                &customer.id,
                &plan.id,
                &plan.name,
                &new.billing_cycle.as_str(),
                &amount,
                &plan.currency,
                &new.payment_method,
            ],
        )
        .await?;
    let payment = Payment {
        id,
        account_id: who.account_id,
        status: PaymentStatus::RequiresConfirmation,
        amount,
        currency: plan.currency,
        plan_id: plan.id,
        plan_name: plan.name,
        billing_cycle: new.billing_cycle,
        payment_method: new.payment_method,
        failure_code: None,
        failure_message: None,
        customer,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    };
    tx.emit(NewEvent::new(
        who.account_id,
        Some(payment.customer.id),
        EventKind::OrderCreated,
        json!({
            "payment_id": payment.id,
            "amount": payment.amount,
            "currency": payment.currency,
            "plan_name": payment.plan_name,
            "billing_cycle": payment.billing_cycle,
            "customer": payment.customer,
        }),
    ));
    Ok(payment)
}

/// A customer of the account (not an admin, not another account's user).
pub async fn customer(db: &impl GenericClient, account_id: Uuid, id: Uuid) -> Result<CustomerRef> {
    let row = db
        .query_opt(
            "SELECT id, name, email FROM users WHERE id = $1 AND account_id = $2 AND role = 'customer'",
            &[&id, &account_id],
        )
        .await?
        .ok_or_else(|| Error::validation("customer_id does not name a customer of this account"))?;
    Ok(CustomerRef {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        email: row.try_get("email")?,
    })
}

/// Whose payment may be touched: a caller's view, or the provider's (any account).
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    User(&'a Principal),
    Provider,
}

/// The payment as it stands, locked, for the provider's webhook.
pub async fn current_for_provider(tx: &Tx<'_>, id: Uuid) -> Result<Payment> {
    lock(tx, Actor::Provider, id).await
}

/// Locks a payment for a status change, or 404 when the actor may not see it.
async fn lock(tx: &Tx<'_>, actor: Actor<'_>, id: Uuid) -> Result<Payment> {
    let row = match actor {
        Actor::User(who) => {
            tx.query_opt(
                &format!(
                    "{SELECT} WHERE p.id = $1 AND p.account_id = $2
                        AND ($3::uuid IS NULL OR p.customer_id = $3) FOR UPDATE OF p"
                ),
                &[&id, &who.account_id, &who.customer_scope()],
            )
            .await?
        }
        Actor::Provider => {
            tx.query_opt(&format!("{SELECT} WHERE p.id = $1 FOR UPDATE OF p"), &[&id])
                .await?
        }
    };
    let row = row.ok_or_else(|| Error::not_found("payment"))?;
    Payment::from_row(&row)
}

/// Confirms an intent: the payment method decides whether it succeeds (`payment_received`)
/// or fails (`order_updated`). `method` switches the payment method first, as Stripe allows.
pub async fn confirm(
    tx: &mut Tx<'_>,
    actor: Actor<'_>,
    id: Uuid,
    method: Option<String>,
) -> Result<Payment> {
    let payment = lock(tx, actor, id).await?;
    let method = method.unwrap_or_else(|| payment.payment_method.clone());
    let outcome = method_outcome(&method)
        .ok_or_else(|| Error::internal(format!("stored payment method {method:?} is unknown")))?;
    settle(tx, payment, &method, outcome).await
}

/// Applies a provider's verdict (from the webhook) exactly as `confirm` would. Settling a
/// payment into the state it is already in changes nothing and returns it as it is.
pub async fn settle_from_provider(tx: &mut Tx<'_>, id: Uuid, outcome: Outcome) -> Result<Payment> {
    let payment = lock(tx, Actor::Provider, id).await?;
    let already = matches!(
        (&outcome, payment.status),
        (Outcome::Succeeded, PaymentStatus::Succeeded)
            | (Outcome::Failed { .. }, PaymentStatus::Failed)
    );
    if already {
        return Ok(payment);
    }
    let method = payment.payment_method.clone();
    settle(tx, payment, &method, outcome).await
}

async fn settle(
    tx: &mut Tx<'_>,
    payment: Payment,
    method: &str,
    outcome: Outcome,
) -> Result<Payment> {
    if payment.status != PaymentStatus::RequiresConfirmation {
        return Err(Error::conflict(
            "invalid_state",
            format!(
                "only a payment that requires confirmation can be confirmed; this one is {}",
                payment.status.as_str()
            ),
        ));
    }
    let (status, code, message) = match outcome {
        Outcome::Succeeded => (PaymentStatus::Succeeded, None, None),
        Outcome::Failed { code, message } => (PaymentStatus::Failed, Some(code), Some(message)),
    };
    let updated = set_status(
        tx,
        &payment,
        status,
        method,
        code.as_deref(),
        message.as_deref(),
    )
    .await?;
    let account_id = payment.account_id;
    tx.emit(match status {
        PaymentStatus::Succeeded => NewEvent::new(
            account_id,
            Some(updated.customer.id),
            EventKind::PaymentReceived,
            json!({
                "payment_id": updated.id,
                "amount": updated.amount,
                "currency": updated.currency,
                "customer": updated.customer,
            }),
        ),
        _ => status_changed(account_id, &payment, &updated),
    });
    Ok(updated)
}

/// Refunds a succeeded payment (admins). Records `order_updated`.
pub async fn refund(tx: &mut Tx<'_>, who: &Principal, id: Uuid) -> Result<Payment> {
    who.require_admin()?;
    let payment = lock(tx, Actor::User(who), id).await?;
    if payment.status != PaymentStatus::Succeeded {
        return Err(Error::conflict(
            "invalid_state",
            format!(
                "only a succeeded payment can be refunded; this one is {}",
                payment.status.as_str()
            ),
        ));
    }
    let method = payment.payment_method.clone();
    let updated = set_status(tx, &payment, PaymentStatus::Refunded, &method, None, None).await?;
    tx.emit(status_changed(who.account_id, &payment, &updated));
    Ok(updated)
}

fn status_changed(account_id: Uuid, before: &Payment, after: &Payment) -> NewEvent {
    NewEvent::new(
        account_id,
        Some(after.customer.id),
        EventKind::OrderUpdated,
        json!({
            "id": after.id,
            "kind": "payment",
            "status": after.status,
            "previous_status": before.status,
            "amount": after.amount,
            "currency": after.currency,
            "customer": after.customer,
        }),
    )
}

async fn set_status(
    tx: &Tx<'_>,
    payment: &Payment,
    status: PaymentStatus,
    method: &str,
    failure_code: Option<&str>,
    failure_message: Option<&str>,
) -> Result<Payment> {
    let row = tx
        .query_one(
            "UPDATE payments SET status = $2, payment_method = $3, failure_code = $4,
                    failure_message = $5, updated_at = now()
              WHERE id = $1 RETURNING updated_at",
            &[
                &payment.id,
                &status.as_str(),
                &method,
                &failure_code,
                &failure_message,
            ],
        )
        .await?;
    Ok(Payment {
        status,
        payment_method: method.to_string(),
        failure_code: failure_code.map(str::to_string),
        failure_message: failure_message.map(str::to_string),
        updated_at: row.try_get(0)?,
        ..payment.clone()
    })
}

/// One payment the caller may see.
pub async fn get(db: &impl GenericClient, who: &Principal, id: Uuid) -> Result<Payment> {
    let row = db
        .query_opt(
            &format!(
                "{SELECT} WHERE p.id = $1 AND p.account_id = $2
                    AND ($3::uuid IS NULL OR p.customer_id = $3)"
            ),
            &[&id, &who.account_id, &who.customer_scope()],
        )
        .await?
        .ok_or_else(|| Error::not_found("payment"))?;
    Payment::from_row(&row)
}

/// The caller's payments, newest first.
pub async fn list(
    db: &impl GenericClient,
    who: &Principal,
    cursor: &Cursor,
    status: Option<&str>,
) -> Result<Page<Payment>> {
    const LISTING: Listing = Listing {
        table: "payments",
        select: SELECT,
        alias: "p",
        what: "payment",
    };
    pagination::newest_first(db, &LISTING, who, status, cursor, Payment::from_row).await
}
