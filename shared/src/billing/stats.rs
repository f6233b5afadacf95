//! The dashboard's numbers: orders, revenue, recent activity, top customers and a 30-day
//! series for charts. Admins see their account; customers see their own orders.
//!
//! All figures come from one snapshot, together with `as_of_event`: the newest event id the
//! caller could see in that snapshot. A dashboard that subscribes with `after = as_of_event`
//! therefore receives exactly the changes its numbers do not include yet.

use crate::billing::auth::Principal;
use crate::billing::customers::{Customer, AGGREGATES};
use crate::platform::error::Result;
use chrono::NaiveDate;
use serde::Serialize;
use serde_json::{Map, Value};
use tokio_postgres::IsolationLevel;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct Stats {
    /// The account's currency; revenue figures are in it (minor units).
    pub currency: String,
    pub total_orders: i64,
    pub total_revenue: i64,
    pub orders_24h: i64,
    pub payments_24h: i64,
    pub revenue_24h: i64,
    pub total_customers: i64,
    /// Payment count per status (statuses without payments are absent).
    #[schema(value_type = HashMap<String, i64>)]
    pub payments_by_status: Map<String, Value>,
    /// Invoice count per status (statuses without invoices are absent).
    #[schema(value_type = HashMap<String, i64>)]
    pub invoices_by_status: Map<String, Value>,
    /// Total of open invoices, in `currency`.
    pub outstanding_invoices: i64,
    pub top_customers: Vec<Customer>,
    pub revenue_by_day: Vec<DayPoint>,
    pub as_of_event: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DayPoint {
    pub date: NaiveDate,
    pub orders: i64,
    pub revenue: i64,
}

pub async fn dashboard(
    db: &mut crate::platform::database::Client,
    who: &Principal,
) -> Result<Stats> {
    let tx = db
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let account = who.account_id;
    let customer = who.customer_scope();
    let currency: String = tx
        .query_one("SELECT currency FROM accounts WHERE id = $1", &[&account])
        .await?
        .try_get(0)?;

    let totals = tx
        .query_one(
            "SELECT count(*) AS total_orders,
                    count(*) FILTER (WHERE created_at > now() - interval '24 hours') AS orders_24h,
                    count(*) FILTER (WHERE status = 'succeeded'
                                       AND updated_at > now() - interval '24 hours') AS payments_24h,
                    coalesce(sum(amount) FILTER (WHERE status = 'succeeded' AND currency = $3), 0)::bigint
                        AS total_revenue,
                    coalesce(sum(amount) FILTER (WHERE status = 'succeeded' AND currency = $3
                                                   AND updated_at > now() - interval '24 hours'), 0)::bigint
                        AS revenue_24h
               FROM payments
              WHERE account_id = $1 AND ($2::uuid IS NULL OR customer_id = $2)",
            &[&account, &customer, &currency],
        )
        .await?;

    let by_status = |rows: Vec<tokio_postgres::Row>| -> Result<Map<String, Value>> {
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<_, String>(0)?,
                    Value::from(r.try_get::<_, i64>(1)?),
                ))
            })
            .collect()
    };
    let payments_by_status = by_status(
        tx.query(
            "SELECT status, count(*) FROM payments
              WHERE account_id = $1 AND ($2::uuid IS NULL OR customer_id = $2)
              GROUP BY status ORDER BY status",
            &[&account, &customer],
        )
        .await?,
    )?;
    let invoices_by_status = by_status(
        tx.query(
            "SELECT status, count(*) FROM invoices
              WHERE account_id = $1 AND ($2::uuid IS NULL OR customer_id = $2)
              GROUP BY status ORDER BY status",
            &[&account, &customer],
        )
        .await?,
    )?;
    let outstanding_invoices: i64 = tx
        .query_one(
            "SELECT coalesce(sum(total), 0)::bigint FROM invoices
              WHERE account_id = $1 AND ($2::uuid IS NULL OR customer_id = $2)
                AND status = 'open' AND currency = $3",
            &[&account, &customer, &currency],
        )
        .await?
        .try_get(0)?;

    let (total_customers, top_customers) = if customer.is_none() {
        let count: i64 = tx
            .query_one(
                "SELECT count(*) FROM users WHERE account_id = $1 AND role = 'customer'",
                &[&account],
            )
            .await?
            .try_get(0)?;
        let top = tx
            .query(
                &format!(
                    "SELECT u.id, u.name, u.email, u.created_at, {AGGREGATES}
                       FROM (SELECT customer_id, sum(amount) AS spent FROM payments
                              WHERE account_id = $1 AND status = 'succeeded' AND currency = $2
                              GROUP BY customer_id
                              ORDER BY spent DESC, customer_id
                              LIMIT 5) top
                       JOIN users u ON u.id = top.customer_id
                      ORDER BY top.spent DESC, u.id"
                ),
                &[&account, &currency],
            )
            .await?
            .iter()
            .map(Customer::from_row)
            .collect::<Result<Vec<_>>>()?;
        (count, top)
    } else {
        (0, Vec::new())
    };

    let revenue_by_day = tx
        .query(
            "SELECT d::date AS day,
                    count(p.id) AS orders,
                    coalesce(sum(p.amount) FILTER (WHERE p.status = 'succeeded' AND p.currency = $3), 0)::bigint
                        AS revenue
               FROM generate_series((now() AT TIME ZONE 'UTC')::date - 29,
                                    (now() AT TIME ZONE 'UTC')::date, interval '1 day') d
               LEFT JOIN payments p
                      ON p.account_id = $1 AND ($2::uuid IS NULL OR p.customer_id = $2)
                     AND (p.created_at AT TIME ZONE 'UTC')::date = d::date
              GROUP BY d ORDER BY d",
            &[&account, &customer, &currency],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(DayPoint {
                date: r.try_get("day")?,
                orders: r.try_get("orders")?,
                revenue: r.try_get("revenue")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;

    let as_of_event: i64 = tx
        .query_one(
            "SELECT coalesce(max(id), 0) FROM events
              WHERE account_id = $1 AND ($2::uuid IS NULL OR user_id = $2)",
            &[&account, &customer],
        )
        .await?
        .try_get(0)?;
    tx.commit().await?;

    Ok(Stats {
        currency,
        total_orders: totals.try_get("total_orders")?,
        total_revenue: totals.try_get("total_revenue")?,
        orders_24h: totals.try_get("orders_24h")?,
        payments_24h: totals.try_get("payments_24h")?,
        revenue_24h: totals.try_get("revenue_24h")?,
        total_customers,
        payments_by_status,
        invoices_by_status,
        outstanding_invoices,
        top_customers,
        revenue_by_day,
        as_of_event,
    })
}
