//! Shared test helpers: a world with its own database, actors with tokens, and a snapshot
//! of every table to prove that a refused request wrote nothing.

pub use devkit::gateway_events::HttpEvent;
pub use devkit::testdb::{Reply, TestDb};
use serde_json::{json, Value};
use shared::api::App;
use shared::billing::auth::{Principal, Role};
use uuid::Uuid;

pub struct World {
    pub db: TestDb,
}

#[derive(Debug, Clone)]
pub struct Actor {
    pub id: Uuid,
    pub account_id: Uuid,
    pub role: Role,
    pub token: String,
    pub email: String,
}

impl Actor {
    pub fn principal(&self) -> Principal {
        Principal {
            user_id: self.id,
            account_id: self.account_id,
            role: self.role,
        }
    }
}

pub async fn world() -> World {
    World {
        db: TestDb::new().await,
    }
}

/// Every table, as a fingerprint of its full contents.
pub const TABLES: [&str; 11] = [
    "accounts",
    "users",
    "plans",
    "payments",
    "invoices",
    "invoice_lines",
    "invoice_counters",
    "events",
    "idempotency_keys",
    "webhook_deliveries",
    "refresh_tokens",
];

impl World {
    pub fn app(&self) -> &App {
        &self.db.app
    }

    /// Sends `event` to the function `api::routes` names for its method and route, and
    /// checks the reply against the OpenAPI document (`crate::openapi::check`).
    pub async fn send(&self, event: HttpEvent) -> Reply {
        send_to(self.app(), event).await
    }

    /// A new merchant account with its admin, through `POST /api/v1/accounts`.
    pub async fn merchant(&self, slug: &str) -> Actor {
        let email = format!("admin@{slug}.test");
        let reply = self
            .send(HttpEvent::post("/api/v1/accounts").json(&json!({
                "name": slug, "slug": slug, "admin_email": email, "admin_password": "Admin123!"
            })))
            .await;
        reply.assert_status(201);
        self.actor(&reply.body["admin"], &email)
    }

    /// A customer of `slug`, through `POST /api/v1/auth/register`.
    pub async fn customer(&self, slug: &str, email: &str) -> Actor {
        let reply = self
            .send(
                HttpEvent::post("/api/v1/auth/register").json(&json!({
                    "email": email, "password": "Test123!", "name": format!("Customer {email}"), "account": slug
                })),
            )
            .await;
        reply.assert_status(201);
        self.actor(&reply.body, email)
    }

    fn actor(&self, user: &Value, email: &str) -> Actor {
        let principal = Principal {
            user_id: uuid(&user["id"]),
            account_id: uuid(&user["account_id"]),
            role: if user["role"] == "admin" {
                Role::Admin
            } else {
                Role::Customer
            },
        };
        let (token, _) = self.app().tokens.issue(&principal).expect("token");
        Actor {
            id: principal.user_id,
            account_id: principal.account_id,
            role: principal.role,
            token,
            email: email.to_string(),
        }
    }

    /// A plan priced 19.00/month, 190.00/year in USD.
    pub async fn plan(&self, admin: &Actor, name: &str) -> Value {
        let reply = self
            .send(
                HttpEvent::post("/api/v1/plans").bearer(&admin.token).json(&json!({
                    "name": name, "monthly_price": 1900, "yearly_price": 19000, "currency": "USD"
                })),
            )
            .await;
        reply.assert_status(201);
        reply.body
    }

    /// A payment intent by `customer` for `plan`, paid with `method`.
    pub async fn intent(&self, customer: &Actor, plan: &Value, method: &str) -> Value {
        let reply = self
            .send(
                HttpEvent::post("/api/v1/payments/intent")
                    .bearer(&customer.token)
                    .json(&json!({ "plan_id": plan["id"], "billing_cycle": "monthly", "payment_method": method })),
            )
            .await;
        reply.assert_status(201);
        reply.body
    }

    pub async fn confirm(&self, who: &Actor, payment: &Value) -> Reply {
        self.send(
            HttpEvent::post("/api/v1/payments/{id}/confirm")
                .param("id", payment["id"].as_str().unwrap_or_default())
                .bearer(&who.token),
        )
        .await
    }

    /// A draft invoice for `customer` with one line of 2 x 15.00.
    pub async fn invoice(&self, admin: &Actor, customer: &Actor) -> Value {
        let reply = self
            .send(
                HttpEvent::post("/api/v1/invoices").bearer(&admin.token).json(&json!({
                    "customer_id": customer.id,
                    "lines": [{ "description": "Consulting", "quantity": 2, "unit_amount": 1500 }]
                })),
            )
            .await;
        reply.assert_status(201);
        reply.body
    }

    /// A fingerprint of every table's full contents.
    pub async fn snapshot(&self) -> Vec<(String, String)> {
        let client = self.db.client().await;
        let mut out = Vec::new();
        for table in TABLES {
            let row = client
                .query_one(
                    &format!(
                        "SELECT count(*)::text || ':' || md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))
                           FROM {table} t"
                    ),
                    &[],
                )
                .await
                .expect("snapshot");
            out.push((table.to_string(), row.get(0)));
        }
        out
    }

    /// Sends `event` and asserts a 4xx JSON error with `code` that changed no table.
    #[track_caller]
    pub fn refuses<'a>(
        &'a self,
        event: HttpEvent,
        status: u16,
        code: &'a str,
    ) -> impl std::future::Future<Output = ()> + 'a {
        let caller = std::panic::Location::caller();
        async move {
            let before = self.snapshot().await;
            let reply = self.send(event.clone()).await;
            assert!(
                reply.status == status && reply.error_code() == code,
                "{caller}: expected {status} {code}, got {} {} for {}",
                reply.status,
                reply.body,
                event.to_json()
            );
            reply.assert_error(status, code);
            let after = self.snapshot().await;
            assert_eq!(
                before, after,
                "{caller}: a refused request changed the database"
            );
        }
    }

    /// Events as the REST log shows them to `who`.
    pub async fn events_for(&self, who: &Actor) -> Vec<Value> {
        let reply = self
            .send(
                HttpEvent::get("/api/v1/events")
                    .bearer(&who.token)
                    .query("limit", 1000),
            )
            .await;
        reply.assert_status(200);
        reply.body["data"].as_array().cloned().unwrap_or_default()
    }
}

/// Sends `event` to `app` (one built for the test, e.g. behind a fault proxy), and checks
/// the reply against the OpenAPI document like [`World::send`].
pub async fn send_to(app: &App, event: HttpEvent) -> Reply {
    let reply = event.send(app).await;
    crate::openapi::check(&event, &reply);
    reply
}

pub fn uuid(v: &Value) -> Uuid {
    v.as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .unwrap_or_else(|| panic!("not a uuid: {v}"))
}
