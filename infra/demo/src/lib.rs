//! Demo data: an account "Demo" with a few weeks of orders and invoices from a dozen
//! customers, and a second account "Acme" so isolation can be seen.
//!
//! Everything is written through the same domain functions the API uses (so every row has
//! its event), then backdated. Loading is idempotent: an account that exists is left alone.
//! The random choices are seeded, so every machine gets the same demo.

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shared::billing::accounts::{self, NewAccount, NewUser};
use shared::billing::auth::{Principal, Role, User};
use shared::billing::invoices::{self, NewInvoice, NewLine, Transition};
use shared::billing::payments::{self, Actor, NewIntent};
use shared::billing::plans::{self, NewPlan, Plan};
use shared::billing::values::{Amount, BillingCycle, Currency, Email, Password, Slug};
use shared::platform::database::Client;
use shared::platform::error::Result;
use shared::store::Tx;
use uuid::Uuid;

pub const DEMO_ADMIN: (&str, &str) = ("admin@demo.test", "Admin123!");
pub const DEMO_CUSTOMER: (&str, &str) = ("freshuser@test.com", "Test123!");
pub const ACME_ADMIN: (&str, &str) = ("admin@acme.test", "Admin123!");
const CUSTOMER_PASSWORD: &str = "Test123!";

/// Demo rows have stable ids (UUIDv5 of a name), so checked-in example events can name them.
pub fn stable_id(name: &str) -> Uuid {
    const NAMESPACE: Uuid = Uuid::from_u128(0x6b1f_1f0e_5a43_4c2e_9a51_b111_7e00_0001);
    Uuid::new_v5(&NAMESPACE, name.as_bytes())
}

const DEMO_CUSTOMERS: [&str; 12] = [
    "Ava Thompson",
    "Liam Chen",
    "Sofia Garcia",
    "Noah Patel",
    "Emma Johansson",
    "Lucas Silva",
    "Mia Kowalski",
    "Ethan Brown",
    "Zara Ahmed",
    "Oliver Novak",
    "Chloe Martin",
    "Mateo Rossi",
];

#[derive(Debug, Default)]
pub struct Loaded {
    pub accounts_created: Vec<String>,
}

struct Spec {
    name: &'static str,
    slug: &'static str,
    admin: (&'static str, &'static str),
    plans: &'static [(&'static str, i64, i64)],
    customers: Vec<(String, String)>,
    payments: usize,
    invoices: usize,
    seed: u64,
}

/// Loads both demo accounts where missing.
pub async fn load(db: &mut Client) -> Result<Loaded> {
    let mut loaded = Loaded::default();
    let mut demo_customers = vec![("Fresh User".to_string(), DEMO_CUSTOMER.0.to_string())];
    demo_customers.extend(
        DEMO_CUSTOMERS
            .iter()
            .map(|n| (n.to_string(), email_for(n, "example.com"))),
    );
    let specs = [
        Spec {
            name: "Demo",
            slug: "demo",
            admin: DEMO_ADMIN,
            plans: &[
                ("Starter", 1_900, 19_000),
                ("Pro", 4_900, 49_000),
                ("Enterprise", 19_900, 199_000),
            ],
            customers: demo_customers,
            payments: 72,
            invoices: 18,
            seed: 42,
        },
        Spec {
            name: "Acme",
            slug: "acme",
            admin: ACME_ADMIN,
            plans: &[("Basic", 900, 9_000), ("Team", 2_900, 29_000)],
            customers: ["Wile Coyote", "Road Runner", "Daffy Duck"]
                .iter()
                .map(|n| (n.to_string(), email_for(n, "acme.test")))
                .collect(),
            payments: 12,
            invoices: 4,
            seed: 7,
        },
    ];
    for spec in specs {
        if accounts::find_by_slug(&*db, spec.slug).await?.is_none() {
            load_account(db, &spec).await?;
            loaded.accounts_created.push(spec.slug.to_string());
        }
    }
    Ok(loaded)
}

fn email_for(name: &str, domain: &str) -> String {
    format!("{}@{domain}", name.to_lowercase().replace(' ', "."))
}

async fn load_account(db: &mut Client, spec: &Spec) -> Result<()> {
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let now = Utc::now();
    let admin_user = NewUser::new(
        Email::parse("email", spec.admin.0)?,
        "Admin".into(),
        &Password::parse("password", spec.admin.1)?,
    )
    .await?
    .with_id(stable_id(&format!("user/{}", spec.admin.0)));
    let mut customers = Vec::new();
    for (name, email) in &spec.customers {
        customers.push(
            NewUser::new(
                Email::parse("email", email)?,
                name.clone(),
                &Password::parse("password", CUSTOMER_PASSWORD)?,
            )
            .await?
            .with_id(stable_id(&format!("user/{email}"))),
        );
    }

    // The account, its users and plans, in one transaction.
    let mut tx = Tx::begin(db).await?;
    let (account, admin) = accounts::create(
        &mut tx,
        NewAccount {
            id: stable_id(&format!("account/{}", spec.slug)),
            name: spec.name.into(),
            slug: Slug::parse("slug", spec.slug)?,
            currency: Currency::parse("currency", "USD")?,
            admin: admin_user,
        },
    )
    .await?;
    let mut users: Vec<User> = Vec::new();
    for c in customers {
        users.push(accounts::register_customer(&mut tx, spec.slug, c).await?);
    }
    let mut plan_rows: Vec<Plan> = Vec::new();
    for (name, monthly, yearly) in spec.plans {
        plan_rows.push(
            plans::create(
                &mut tx,
                account.id,
                NewPlan {
                    id: stable_id(&format!("plan/{}/{name}", spec.slug)),
                    name: (*name).into(),
                    description: format!("The {name} plan"),
                    monthly_price: Amount::parse("monthly_price", *monthly)?,
                    yearly_price: Amount::parse("yearly_price", *yearly)?,
                    currency: Currency::parse("currency", "USD")?,
                },
            )
            .await?,
        );
    }
    let started = now - Duration::days(29);
    tx.execute(
        "UPDATE accounts SET created_at = $2 WHERE id = $1",
        &[&account.id, &started],
    )
    .await?;
    tx.execute(
        "UPDATE users SET created_at = $2::timestamptz - random() * interval '2 days' WHERE account_id = $1",
        &[&account.id, &started],
    )
    .await?;
    tx.execute(
        "UPDATE plans SET created_at = $2, updated_at = $2 WHERE account_id = $1",
        &[&account.id, &started],
    )
    .await?;
    tx.commit().await?;

    let admin = Principal {
        user_id: admin.id,
        account_id: account.id,
        role: Role::Admin,
    };

    // A few weeks of orders, oldest first, each in its own transaction like a real request.
    let mut times: Vec<DateTime<Utc>> = (0..spec.payments)
        .map(|_| now - Duration::minutes(rng.random_range(30..28 * 24 * 60)))
        .collect();
    times.sort();
    // Something happened today, so the "last 24 h" figures are not empty.
    for t in times.iter_mut().rev().take(4) {
        *t = now - Duration::minutes(rng.random_range(5..20 * 60));
    }
    times.sort();
    for at in times {
        let customer = &users[rng.random_range(0..users.len())];
        let plan = &plan_rows[weighted(&mut rng, &[5, 3, 1][..plan_rows.len()])];
        let cycle = if rng.random_bool(0.8) {
            BillingCycle::Monthly
        } else {
            BillingCycle::Yearly
        };
        let fate = rng.random_range(0..100);
        let method = if (75..85).contains(&fate) {
            "pm_card_chargeDeclined"
        } else {
            "card"
        };
        let mut tx = Tx::begin(db).await?;
        let payment = payments::create_intent(
            &mut tx,
            &admin,
            NewIntent {
                plan_id: plan.id,
                billing_cycle: cycle,
                payment_method: method.into(),
                customer_id: Some(customer.id),
            },
        )
        .await?;
        // The newest few stay unconfirmed, as a live shop would have.
        if fate < 92 || at < now - Duration::hours(6) {
            payments::confirm(&mut tx, Actor::User(&admin), payment.id, None).await?;
            if fate >= 85 && method == "card" {
                payments::refund(&mut tx, &admin, payment.id).await?;
            }
        }
        let settled = at + Duration::seconds(rng.random_range(5..90));
        tx.execute(
            "UPDATE payments SET created_at = $2, updated_at = $3 WHERE id = $1",
            &[&payment.id, &at, &settled],
        )
        .await?;
        tx.backdate_events(at);
        tx.commit().await?;
    }

    // Invoices: most paid, some open, one void, a couple of drafts.
    for i in 0..spec.invoices {
        let at = now - Duration::hours(rng.random_range(1..27 * 24));
        let customer = &users[rng.random_range(0..users.len())];
        let plan = &plan_rows[rng.random_range(0..plan_rows.len())];
        let mut tx = Tx::begin(db).await?;
        let invoice = invoices::create(
            &mut tx,
            &admin,
            NewInvoice {
                customer_id: customer.id,
                currency: None,
                lines: vec![
                    NewLine {
                        description: format!("{} plan, monthly", plan.name),
                        quantity: 1,
                        unit_amount: Amount::parse("unit_amount", plan.monthly_price)?,
                    },
                    NewLine {
                        description: "Extra seats".into(),
                        quantity: rng.random_range(1..5),
                        unit_amount: Amount::parse("unit_amount", 500)?,
                    },
                ],
                memo: Some("Thank you for your business.".into()),
                due_date: Some((at + Duration::days(14)).date_naive()),
            },
        )
        .await?;
        let path: &[Transition] = match i % 6 {
            0 => &[],
            1 => &[Transition::Finalize],
            2 => &[Transition::Finalize, Transition::Void],
            3 => &[Transition::Finalize, Transition::MarkUncollectible],
            _ => &[Transition::Finalize, Transition::Pay],
        };
        for t in path {
            invoices::transition(&mut tx, &admin, invoice.id, *t).await?;
        }
        tx.execute(
            "UPDATE invoices SET created_at = $2::timestamptz, updated_at = $2::timestamptz,
                    finalized_at = CASE WHEN finalized_at IS NULL THEN NULL ELSE $2::timestamptz END,
                    paid_at = CASE WHEN paid_at IS NULL THEN NULL ELSE $2::timestamptz END,
                    voided_at = CASE WHEN voided_at IS NULL THEN NULL ELSE $2::timestamptz END
              WHERE id = $1",
            &[&invoice.id, &at],
        )
        .await?;
        tx.backdate_events(at);
        tx.commit().await?;
    }
    Ok(())
}

/// An index drawn with the given relative weights.
fn weighted(rng: &mut StdRng, weights: &[u32]) -> usize {
    let total: u32 = weights.iter().sum();
    let mut pick = rng.random_range(0..total.max(1));
    for (i, w) in weights.iter().enumerate() {
        if pick < *w {
            return i;
        }
        pick -= w;
    }
    0
}
