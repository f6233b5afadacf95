//! Plans: what an account sells, with a monthly and a yearly price in one currency.

use crate::billing::auth::Principal;
use crate::billing::values::{Amount, BillingCycle, Currency};
use crate::platform::error::{Error, Result};
use crate::store::Tx;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Plan {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub monthly_price: i64,
    pub yearly_price: i64,
    pub currency: String,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "id, name, description, monthly_price, yearly_price, currency, active, created_at, updated_at";

impl Plan {
    fn from_row(row: &tokio_postgres::Row) -> Result<Plan> {
        Ok(Plan {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            monthly_price: row.try_get("monthly_price")?,
            yearly_price: row.try_get("yearly_price")?,
            currency: row.try_get("currency")?,
            active: row.try_get("active")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }

    pub fn price(&self, cycle: BillingCycle) -> i64 {
        match cycle {
            BillingCycle::Monthly => self.monthly_price,
            BillingCycle::Yearly => self.yearly_price,
        }
    }
}

pub struct NewPlan {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub monthly_price: Amount,
    pub yearly_price: Amount,
    pub currency: Currency,
}

#[derive(Default)]
pub struct PlanChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub monthly_price: Option<Amount>,
    pub yearly_price: Option<Amount>,
    pub active: Option<bool>,
}

fn name_taken() -> Error {
    Error::conflict(
        "name_taken",
        "the account already has a plan with this name",
    )
}

pub async fn create(tx: &mut Tx<'_>, account_id: Uuid, new: NewPlan) -> Result<Plan> {
    let row = tx
        .query_opt(
            &format!(
                "INSERT INTO plans (id, account_id, name, description, monthly_price, yearly_price, currency)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (account_id, lower(name)) DO NOTHING
                 RETURNING {COLUMNS}"
            ),
            &[
                &new.id,
                &account_id,
                &new.name,
                &new.description,
                &new.monthly_price.get(),
                &new.yearly_price.get(),
                &new.currency.code(),
            ],
        )
        .await?
        .ok_or_else(name_taken)?;
    Plan::from_row(&row)
}

pub async fn update(tx: &mut Tx<'_>, account_id: Uuid, id: Uuid, ch: PlanChanges) -> Result<Plan> {
    let result = tx
        .query_opt(
            &format!(
                "UPDATE plans SET
                    name = coalesce($3, name),
                    description = coalesce($4, description),
                    monthly_price = coalesce($5, monthly_price),
                    yearly_price = coalesce($6, yearly_price),
                    active = coalesce($7, active),
                    updated_at = now()
                  WHERE id = $1 AND account_id = $2
                  RETURNING {COLUMNS}"
            ),
            &[
                &id,
                &account_id,
                &ch.name,
                &ch.description,
                &ch.monthly_price.map(Amount::get),
                &ch.yearly_price.map(Amount::get),
                &ch.active,
            ],
        )
        .await;
    match result {
        Ok(Some(row)) => Plan::from_row(&row),
        Ok(None) => Err(Error::not_found("plan")),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
            Err(name_taken())
        }
        Err(e) => Err(e.into()),
    }
}

/// Plans a caller may see: admins all of the account's, customers the active ones.
pub async fn list(db: &impl GenericClient, who: &Principal) -> Result<Vec<Plan>> {
    let rows = db
        .query(
            &format!(
                "SELECT {COLUMNS} FROM plans
                  WHERE account_id = $1 AND (active OR $2)
                  ORDER BY monthly_price, name"
            ),
            &[&who.account_id, &who.is_admin()],
        )
        .await?;
    rows.iter().map(Plan::from_row).collect()
}

/// One of the account's plans, locked against concurrent change until the transaction ends.
pub async fn get_for_order(tx: &Tx<'_>, account_id: Uuid, id: Uuid) -> Result<Plan> {
    let row = tx
        .query_opt(
            &format!("SELECT {COLUMNS} FROM plans WHERE id = $1 AND account_id = $2 FOR SHARE"),
            &[&id, &account_id],
        )
        .await?
        .ok_or_else(|| Error::validation("plan_id does not name a plan of this account"))?;
    let plan = Plan::from_row(&row)?;
    if !plan.active {
        return Err(Error::validation("this plan is no longer offered"));
    }
    Ok(plan)
}
