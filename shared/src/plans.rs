//! Plans: what an account sells, with a monthly and a yearly price in one currency.

use crate::auth::Principal;
use crate::db::Tx;
use crate::error::{ApiError, ApiResult};
use crate::types::{text, Amount, BillingCycle, Currency};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::Serialize;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize)]
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
    fn from_row(row: &tokio_postgres::Row) -> ApiResult<Plan> {
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

fn name_taken() -> ApiError {
    ApiError::conflict(
        "name_taken",
        "the account already has a plan with this name",
    )
}

pub async fn create(tx: &mut Tx<'_>, account_id: Uuid, new: NewPlan) -> ApiResult<Plan> {
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

pub async fn update(
    tx: &mut Tx<'_>,
    account_id: Uuid,
    id: Uuid,
    ch: PlanChanges,
) -> ApiResult<Plan> {
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
        Ok(None) => Err(ApiError::not_found("plan")),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
            Err(name_taken())
        }
        Err(e) => Err(e.into()),
    }
}

/// Plans a caller may see: admins all of the account's, customers the active ones.
pub async fn list(db: &impl GenericClient, who: &Principal) -> ApiResult<Vec<Plan>> {
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
pub async fn get_for_order(tx: &Tx<'_>, account_id: Uuid, id: Uuid) -> ApiResult<Plan> {
    let row = tx
        .query_opt(
            &format!("SELECT {COLUMNS} FROM plans WHERE id = $1 AND account_id = $2 FOR SHARE"),
            &[&id, &account_id],
        )
        .await?
        .ok_or_else(|| ApiError::validation("plan_id does not name a plan of this account"))?;
    let plan = Plan::from_row(&row)?;
    if !plan.active {
        return Err(ApiError::validation("this plan is no longer offered"));
    }
    Ok(plan)
}

pub mod api {
    use super::*;
    use crate::app::App;
    use crate::auth::authenticate;
    use crate::http::{self, path_id, ApiResponse, StatusCode};
    use crate::idempotency;
    use lambda_http::Request;
    use serde::Deserialize;

    /// `GET /api/v1/plans`.
    pub async fn list(app: App, req: Request) -> ApiResult<ApiResponse> {
        let who = authenticate(&app, &req)?;
        http::Query::new(&req, &[])?;
        let db = app.db().await?;
        let plans = super::list(&db, &who).await?;
        http::json(StatusCode::OK, &serde_json::json!({ "data": plans }))
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct CreateInput {
        name: String,
        #[serde(default)]
        description: Option<String>,
        monthly_price: i64,
        yearly_price: i64,
        currency: String,
    }

    /// `POST /api/v1/plans` (admins).
    pub async fn create(app: App, req: Request) -> ApiResult<ApiResponse> {
        let who = authenticate(&app, &req)?;
        who.require_admin()?;
        let input: CreateInput = http::json_body(&req)?;
        let new = NewPlan {
            id: Uuid::now_v7(),
            name: text("name", &input.name, 1, 100)?,
            description: text(
                "description",
                input.description.as_deref().unwrap_or(""),
                0,
                1000,
            )?,
            monthly_price: Amount::parse("monthly_price", input.monthly_price)?,
            yearly_price: Amount::parse("yearly_price", input.yearly_price)?,
            currency: Currency::parse("currency", &input.currency)?,
        };
        let mut db = app.db().await?;
        let mut tx = Tx::begin(&mut db).await?;
        if let Some(replay) = idempotency::begin(&mut tx, &req, Some(&who)).await? {
            return Ok(replay);
        }
        let plan = super::create(&mut tx, who.account_id, new).await?;
        tx.respond(StatusCode::CREATED, &plan).await
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct UpdateInput {
        name: Option<String>,
        description: Option<String>,
        monthly_price: Option<i64>,
        yearly_price: Option<i64>,
        active: Option<bool>,
    }

    /// `PATCH /api/v1/plans/{id}` (admins). The currency is fixed once a plan exists.
    pub async fn update(app: App, req: Request) -> ApiResult<ApiResponse> {
        let who = authenticate(&app, &req)?;
        who.require_admin()?;
        let id = path_id(&req, "plan")?;
        let input: UpdateInput = http::json_body(&req)?;
        let changes = PlanChanges {
            name: input
                .name
                .as_deref()
                .map(|n| text("name", n, 1, 100))
                .transpose()?,
            description: input
                .description
                .as_deref()
                .map(|d| text("description", d, 0, 1000))
                .transpose()?,
            monthly_price: input
                .monthly_price
                .map(|p| Amount::parse("monthly_price", p))
                .transpose()?,
            yearly_price: input
                .yearly_price
                .map(|p| Amount::parse("yearly_price", p))
                .transpose()?,
            active: input.active,
        };
        if input_is_empty(&changes) {
            return Err(ApiError::validation(
                "nothing to change: pass name, description, monthly_price, yearly_price or active",
            ));
        }
        let mut db = app.db().await?;
        let mut tx = Tx::begin(&mut db).await?;
        let plan = super::update(&mut tx, who.account_id, id, changes).await?;
        tx.respond(StatusCode::OK, &plan).await
    }

    fn input_is_empty(c: &PlanChanges) -> bool {
        c.name.is_none()
            && c.description.is_none()
            && c.monthly_price.is_none()
            && c.yearly_price.is_none()
            && c.active.is_none()
    }
}
