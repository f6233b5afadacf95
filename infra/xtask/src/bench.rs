//! `cargo xtask bench`: numbers, not assertions. Medians of repeated runs, and ratios
//! measured in the same run (these machines are noisy).
//!
//! - `outbox`: writes/s of a payment-like write alone, with its event, with the outbox lock,
//!   with NOTIFY, at several concurrencies (docs/architecture.md, "Gap-free ids": NOTIFY serialises commits).
//! - `fanout`: the real stack (cargo lambda watch, gateway, connector) and N WebSocket
//!   clients: commit-to-client latency at a steady rate, then a burst's throughput.

use devkit::testdb::TestDb;
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use testkit::client::Client;
use testkit::stack::Stack;
use uuid::Uuid;

pub async fn run(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("outbox") => outbox().await,
        Some("fanout") => fanout(&args[1..]).await,
        None => {
            outbox().await?;
            fanout(&[]).await
        }
        Some(other) => Err(format!("unknown benchmark {other:?}: outbox or fanout")),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, String> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    Ok(client)
}

/// The write a payment intent makes, with the event step chosen by `event_fn`.
async fn writes_per_second(
    url: &str,
    ids: (Uuid, Uuid, Uuid),
    event_fn: Option<&str>,
    writers: usize,
    run_for: Duration,
) -> Result<f64, String> {
    let (account, user, plan) = ids;
    let deadline = Instant::now() + run_for;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let client = connect(url).await?;
        let event_fn = event_fn.map(str::to_string);
        tasks.push(tokio::spawn(async move {
            let insert = client
                .prepare(
                    "INSERT INTO payments (id, account_id, customer_id, plan_id, plan_name, billing_cycle,
                                           amount, currency, payment_method, status)
                     VALUES ($1, $2, $3, $4, 'Pro', 'monthly', 1900, 'USD', 'card', 'requires_confirmation')",
                )
                .await?;
            let event = match &event_fn {
                Some(f) => Some(client.prepare(&format!("SELECT {f}($1, $2, 'order_created', $3)")).await?),
                None => None,
            };
            let mut n = 0u64;
            while Instant::now() < deadline {
                client.batch_execute("BEGIN").await?;
                let id = Uuid::now_v7();
                client.execute(&insert, &[&id, &account, &user, &plan]).await?;
                if let Some(e) = &event {
                    client
                        .query_one(e, &[&account, &user, &json!({ "payment_id": id, "amount": 1900 })])
                        .await?;
                }
                client.batch_execute("COMMIT").await?;
                n += 1;
            }
            Ok::<u64, tokio_postgres::Error>(n)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

async fn outbox() -> Result<(), String> {
    println!("\n== outbox: writes/s of a payment intent's transaction (median of 3 runs of 2 s)\n");
    let db = TestDb::new().await;
    let admin = db.raw().await;
    let (account, user, plan) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    admin
        .batch_execute(&format!(
            "INSERT INTO accounts (id, name, slug) VALUES ('{account}', 'Bench', 'bench');
             INSERT INTO users (id, account_id, email, name, password_hash, role)
               VALUES ('{user}', '{account}', 'b@bench.test', 'B', 'x', 'customer');
             INSERT INTO plans (id, account_id, name, monthly_price, yearly_price, currency)
               VALUES ('{plan}', '{account}', 'Pro', 1900, 19000, 'USD');
             -- record_event without NOTIFY, and without the outbox lock, to price each part.
             CREATE FUNCTION bench_event_no_notify(a uuid, u uuid, t text, d jsonb) RETURNS bigint
             LANGUAGE plpgsql AS $$
             DECLARE new_id bigint;
             BEGIN
               PERFORM pg_advisory_xact_lock(7394461024938240001);
               INSERT INTO events (account_id, user_id, type, data) VALUES (a, u, t, d) RETURNING id INTO new_id;
               RETURN new_id;
             END $$;
             CREATE FUNCTION bench_event_no_lock(a uuid, u uuid, t text, d jsonb) RETURNS bigint
             LANGUAGE plpgsql AS $$
             DECLARE new_id bigint;
             BEGIN
               INSERT INTO events (account_id, user_id, type, data) VALUES (a, u, t, d) RETURNING id INTO new_id;
               PERFORM pg_notify('billwire_events', new_id::text);
               RETURN new_id;
             END $$;"
        ))
        .await
        .map_err(|e| e.to_string())?;
    let variants: [(&str, Option<&str>); 4] = [
        ("row only (no event)", None),
        (
            "row + event, lock, no NOTIFY",
            Some("bench_event_no_notify"),
        ),
        ("row + event + NOTIFY, no lock", Some("bench_event_no_lock")),
        ("row + record_event (lock + NOTIFY)", Some("record_event")),
    ];
    println!(
        "{:>7}  {:<36} {:>10} {:>9}",
        "writers", "transaction", "writes/s", "vs row"
    );
    for writers in [1usize, 4, 16] {
        let mut results: HashMap<&str, Vec<f64>> = HashMap::new();
        // Repetitions outermost, so drift hits every variant alike.
        for _ in 0..3 {
            for (name, f) in variants {
                let w = writes_per_second(
                    &db.url,
                    (account, user, plan),
                    f,
                    writers,
                    Duration::from_secs(2),
                )
                .await?;
                results.entry(name).or_default().push(w);
            }
        }
        let base = median(results.get(variants[0].0).cloned().unwrap_or_default());
        for (name, _) in variants {
            let m = median(results.get(name).cloned().unwrap_or_default());
            println!(
                "{writers:>7}  {name:<36} {m:>10.0} {:>8.2}x",
                m / base.max(1.0)
            );
        }
    }
    Ok(())
}

async fn fanout(args: &[String]) -> Result<(), String> {
    let clients: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(100);
    let burst: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(3000);
    println!("\n== fan-out: {clients} WebSocket clients (all the demo admin) through gateway + connector\n");
    let mut s = Stack::start("bench-fanout").await;
    s.start_connector();
    s.leader(Duration::from_secs(30))
        .await
        .ok_or("no connector became leader")?;
    let admin = s.people.demo_admin.clone();
    let target = [(admin.principal.account_id, None)];
    let started = Instant::now();
    let mut subs = Vec::new();
    for _ in 0..clients {
        let url = s.ws_url(&s.ticket(&admin.token).await);
        let mut c = Client::connect(&url)
            .await
            .map_err(|e| format!("refused: {e:?}"))?;
        c.subscribe(None).await;
        subs.push(c);
    }
    println!(
        "connected and subscribed {clients} clients in {:.1?}",
        started.elapsed()
    );

    // 1. Latency at a steady rate: one event every 10 ms from one writer.
    let writer = connect(&s.db.url).await?;
    let mut committed: HashMap<i64, Instant> = HashMap::new();
    for i in 0..200 {
        let row = writer
            .query_one(
                "SELECT record_event($1, NULL, 'order_created', $2)",
                &[&target[0].0, &json!({ "n": i })],
            )
            .await
            .map_err(|e| e.to_string())?;
        committed.insert(row.get(0), Instant::now());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ids: std::collections::BTreeSet<i64> = committed.keys().copied().collect();
    let mut latencies = Vec::new();
    for c in &mut subs {
        if !c.until_ids(&ids, Duration::from_secs(60)).await {
            return Err("a client missed events in the steady phase".into());
        }
        for (at, e) in &c.raw {
            if let Some(sent) = e["id"].as_i64().and_then(|id| committed.get(&id)) {
                latencies.push(at.saturating_duration_since(*sent));
            }
        }
        c.raw.clear();
    }
    latencies.sort();
    println!(
        "steady 100 events/s -> {} deliveries: commit-to-client p50 {:.1?}, p95 {:.1?}, p99 {:.1?}, max {:.1?}",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.95),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
    );

    // 2. A burst, as fast as four writers go.
    let started = Instant::now();
    let mut writers = Vec::new();
    for _ in 0..4 {
        let url = s.db.url.clone();
        writers.push(tokio::spawn(async move {
            testkit::stack::record(&url, burst / 4, &target, 0).await
        }));
    }
    let mut ids = std::collections::BTreeSet::new();
    for w in writers {
        ids.extend(w.await.map_err(|e| e.to_string())?);
    }
    let written = started.elapsed();
    for c in &mut subs {
        if !c.until_ids(&ids, Duration::from_secs(300)).await {
            return Err("a client missed events in the burst".into());
        }
    }
    let all = started.elapsed();
    let deliveries = ids.len() * clients;
    println!(
        "burst of {} events: written in {written:.1?}; all {deliveries} deliveries done in {all:.1?} = {:.0} deliveries/s",
        ids.len(),
        deliveries as f64 / all.as_secs_f64()
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    if let Some(line) = s.connectors[0]
        .log_text()
        .lines()
        .rev()
        .find(|l| l.contains("connector stats"))
    {
        let field = |name: &str| -> f64 {
            line.split(&format!("{name}\u{1b}[0m\u{1b}[2m=\u{1b}[0m"))
                .nth(1)
                .or_else(|| line.split(&format!("{name}=")).nth(1))
                .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0.0)
        };
        let (delivered, messages) = (field("events_delivered"), field("messages_sent"));
        println!(
            "connector: {delivered:.0} events delivered in {messages:.0} management API requests ({:.1} events per request)",
            delivered / messages.max(1.0)
        );
    }
    Ok(())
}
