//! Lists, Stripe-style: newest first, `limit` items a page, and `starting_after` (the last
//! item's id) for the next one. Keyset pagination on `(created_at, id)`, so pages stay
//! stable while rows are added.

use super::auth::Principal;
use crate::platform::error::{Error, Result};
use deadpool_postgres::GenericClient;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// A page of a list: pass the last item's id as `starting_after` to get the next one.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub has_more: bool,
}

impl<T> Page<T> {
    /// `rows` was fetched with `limit + 1` to learn whether more exist.
    pub fn from_overfetch(mut rows: Vec<T>, limit: i64) -> Self {
        let has_more = rows.len() as i64 > limit;
        rows.truncate(limit.max(0) as usize);
        Page {
            data: rows,
            has_more,
        }
    }
}

/// Where a page starts and how long it is.
#[derive(Debug, Clone, Copy)]
pub struct Cursor {
    pub limit: i64,
    pub starting_after: Option<Uuid>,
}

/// A table listed newest first, scoped to the caller's account (and, for a customer, to
/// their own rows): it must have `id`, `account_id`, `customer_id`, `status` and
/// `created_at` columns.
pub struct Listing {
    pub table: &'static str,
    /// `SELECT ... FROM <table> <alias> ...`, without a WHERE clause.
    pub select: &'static str,
    pub alias: &'static str,
    /// What a row is called in messages ("payment", "invoice").
    pub what: &'static str,
}

/// One page of `listing` for `who`, optionally only rows in `status`. A `starting_after`
/// the caller cannot see is a 400; a database failure stays what it is (503, never a 400).
pub async fn newest_first<T>(
    db: &impl GenericClient,
    listing: &Listing,
    who: &Principal,
    status: Option<&str>,
    cursor: &Cursor,
    from_row: impl Fn(&tokio_postgres::Row) -> Result<T>,
) -> Result<Page<T>> {
    let Listing {
        table,
        select,
        alias: t,
        what,
    } = listing;
    let after: Option<(chrono::DateTime<chrono::Utc>, Uuid)> = match cursor.starting_after {
        Some(id) => {
            let row = db
                .query_opt(
                    &format!(
                        "SELECT created_at FROM {table}
                          WHERE id = $1 AND account_id = $2
                            AND ($3::uuid IS NULL OR customer_id = $3)"
                    ),
                    &[&id, &who.account_id, &who.customer_scope()],
                )
                .await?
                .ok_or_else(|| {
                    Error::bad_request(
                        "invalid_request",
                        format!("starting_after does not name a {what} you can see"),
                    )
                })?;
            Some((row.try_get(0)?, id))
        }
        None => None,
    };
    let rows = db
        .query(
            &format!(
                "{select} WHERE {t}.account_id = $1
                    AND ($2::uuid IS NULL OR {t}.customer_id = $2)
                    AND ($3::text IS NULL OR {t}.status = $3)
                    AND ($4::timestamptz IS NULL OR ({t}.created_at, {t}.id) < ($4, $5))
                  ORDER BY {t}.created_at DESC, {t}.id DESC
                  LIMIT $6"
            ),
            &[
                &who.account_id,
                &who.customer_scope(),
                &status,
                &after.map(|(at, _)| at),
                &after.map(|(_, id)| id),
                &(cursor.limit + 1),
            ],
        )
        .await?;
    let items = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
    Ok(Page::from_overfetch(items, cursor.limit))
}
