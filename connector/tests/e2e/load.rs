//! Load: many silent connections during housekeeping, a minute of writing at the machine's
//! maximum, a thousand clients cut at once. Tagged `#[ignore = "load: ..."]`: `cargo xtask
//! test` runs them after the suite, one at a time with nothing else running, so that they
//! measure the connector rather than their neighbours. They print what they measured.

use super::*;
use devkit::faults::{HttpFault, HttpFaults};
use futures::StreamExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// A ticket straight from the store (the ticket endpoint is tested elsewhere; a thousand
/// of them through `cargo lambda watch` would measure that instead).
async fn ticket(s: &Stack, who: &Person) -> String {
    let db = s.db.client().await;
    shared::realtime::tickets::issue_ticket(&db, &who.principal)
        .await
        .expect("ticket")
}

/// Connects `who`, retrying with jittered backoff while the gateway's connect rate (API
/// Gateway's 500 a second) refuses it. Returns the client and how many refusals it met.
async fn connect(s: &Stack, who: &Person) -> (Client, u32) {
    let mut refused = 0;
    let mut backoff = Duration::from_millis(100);
    loop {
        match Client::connect(&s.ws_url(&ticket(s, who).await)).await {
            Ok(c) => return (c, refused),
            Err(testkit::client::Refused(429)) => {
                refused += 1;
                let jitter = rand::random::<u64>() % (backoff.as_millis() as u64 + 1);
                tokio::time::sleep(Duration::from_millis(jitter) + backoff / 2).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            Err(e) => panic!("connect refused: {e:?}"),
        }
    }
}

/// The ids of `account`'s connections.
async fn connections_of(s: &Stack, account: Uuid) -> Vec<String> {
    s.db.raw()
        .await
        .query(
            "SELECT connection_id FROM ws_connections WHERE account_id = $1",
            &[&account],
        )
        .await
        .expect("connections")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Writes `n` events for `account`, one every `every`; returns (id, when its commit returned).
async fn paced(s: &Stack, account: Uuid, n: usize, every: Duration) -> Vec<(i64, Instant)> {
    let db = s.db.raw().await;
    let mut written = Vec::with_capacity(n);
    let mut tick = tokio::time::interval(every);
    for i in 0..n {
        tick.tick().await;
        let id: i64 = db
            .query_one(
                "SELECT record_event($1, NULL, 'order_updated', $2)",
                &[&account, &json!({ "n": i })],
            )
            .await
            .expect("record_event")
            .get(0);
        written.push((id, Instant::now()));
    }
    written
}

/// Each written event's latency to `c`: commit returned → message arrived.
async fn latencies(c: &mut Client, written: &[(i64, Instant)]) -> Vec<Duration> {
    let ids: BTreeSet<i64> = written.iter().map(|(id, _)| *id).collect();
    assert!(
        c.until_ids(&ids, Duration::from_secs(60)).await,
        "events missing"
    );
    let arrived: HashMap<i64, Instant> = c
        .raw
        .iter()
        .filter_map(|(at, e)| Some((e["id"].as_i64()?, *at)))
        .rev()
        .collect();
    let mut out: Vec<Duration> = written
        .iter()
        .map(|(id, at)| arrived[id].saturating_duration_since(*at))
        .collect();
    out.sort();
    out
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "load: cargo xtask test runs it after the suite, alone"]
async fn load_a_housekeeping_pass_over_500_silent_connections_does_not_slow_live_delivery() {
    let mut s = Stack::start("housekeeping-load").await;
    let api = HttpFaults::start(&s.base).await.expect("proxy");
    s.start_connector_with(&[
        ("WEBSOCKET_MANAGEMENT_ENDPOINT", &api.url()),
        ("CONNECTOR_HOUSEKEEPING_SECONDS", "1"),
        ("CONNECTOR_STALE_SECONDS", "1"),
    ]);
    assert!(s.leader(Duration::from_secs(15)).await.is_some());
    let p = s.people.clone();
    let account = p.demo_admin.principal.account_id;
    let mut live = subscribed(&s, &p.demo_admin, None).await;
    let before = paced(&s, account, 50, Duration::from_millis(100)).await;
    let before = latencies(&mut live, &before).await;

    // 500 connections that never subscribe and never ping; asking API Gateway about each
    // takes 500 ms.
    let silent: Vec<Client> = futures::stream::iter(0..500)
        .map(|_| connect(&s, &p.acme_admin))
        .buffer_unordered(16)
        .map(|(c, _)| c)
        .collect()
        .await;
    let ids = connections_of(&s, p.acme_admin.principal.account_id).await;
    assert_eq!(ids.len(), 500);
    for id in &ids {
        api.set(id, HttpFault::Slow(Duration::from_millis(500)));
    }
    let probed = || ids.iter().map(|id| api.seen(id)).sum::<usize>();
    let deadline = Instant::now() + Duration::from_secs(30);
    while probed() < 16 {
        assert!(Instant::now() < deadline, "housekeeping never probed them");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let probed_before = probed();
    let during = paced(&s, account, 100, Duration::from_millis(100)).await;
    let probes = probed() - probed_before;
    let during = latencies(&mut live, &during).await;
    println!(
        "live delivery latency, median / p99 / max: before {:?} / {:?} / {:?}; during housekeeping over 500 silent connections ({probes} probes of 500 ms in those 10 s) {:?} / {:?} / {:?}",
        percentile(&before, 0.5),
        percentile(&before, 0.99),
        percentile(&before, 1.0),
        percentile(&during, 0.5),
        percentile(&during, 0.99),
        percentile(&during, 1.0),
    );
    assert!(probes >= 100, "housekeeping was not probing: {probes}");
    // Inline, the pass (500 × 500 ms / 16) would hold delivery up for 15 s.
    assert!(
        percentile(&during, 0.99) < percentile(&before, 0.99) + Duration::from_millis(500),
        "housekeeping slowed live delivery"
    );
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "load: cargo xtask test runs it after the suite, alone"]
async fn load_a_minute_of_writing_at_full_speed_keeps_durable_cursors_within_two_seconds() {
    let mut s = Stack::start("sustained").await;
    s.start_connector();
    assert!(s.leader(Duration::from_secs(15)).await.is_some());
    let p = s.people.clone();
    let who = [&p.demo_admin, &p.acme_admin];
    let mut clients = Vec::new();
    let mut connection_ids = Vec::new();
    for w in who {
        clients.push(subscribed(&s, w, None).await);
        connection_ids.push(newest_connection(&s).await);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..2)
        .map(|i| {
            let (url, stop, written) = (s.db.url.clone(), stop.clone(), written.clone());
            let account = who[i].principal.account_id;
            tokio::spawn(async move {
                let (db, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .expect("connect");
                tokio::spawn(conn);
                while !stop.load(Ordering::Relaxed) {
                    db.execute(
                        "SELECT record_event($1, NULL, 'order_updated', '{}')",
                        &[&account],
                    )
                    .await
                    .expect("record_event");
                    written.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    let db = s.db.raw().await;
    let started = Instant::now();
    // Per client: (when, highest id delivered by then), and how far it has read.
    let mut history: Vec<Vec<(Instant, i64)>> = vec![Vec::new(); clients.len()];
    let mut read = vec![0usize; clients.len()];
    let mut delivered = vec![0i64; clients.len()];
    let mut lags = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    while started.elapsed() < Duration::from_secs(60) {
        tick.tick().await;
        for (i, c) in clients.iter_mut().enumerate() {
            c.drain();
            for (_, e) in &c.raw[read[i]..] {
                delivered[i] = delivered[i].max(e["id"].as_i64().unwrap_or(0));
            }
            read[i] = c.raw.len();
            // Raw events are not needed any more: keep memory flat.
            c.raw.clear();
            read[i] = 0;
            let now = Instant::now();
            history[i].push((now, delivered[i]));
            let durable: i64 = db
                .query_one(
                    "SELECT coalesce(cursor, 0) FROM ws_connections WHERE connection_id = $1",
                    &[&connection_ids[i]],
                )
                .await
                .expect("cursor")
                .get(0);
            // Since when has the client had more than the durable cursor says?
            let lag = history[i]
                .iter()
                .find(|(_, d)| *d > durable)
                .map(|(at, _)| now.duration_since(*at))
                .unwrap_or_default();
            lags.push(lag);
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.expect("writer");
    }
    let total = written.load(Ordering::Relaxed);
    lags.sort();
    println!(
        "60 s at full speed: {total} events ({:.0}/s); durable cursor behind delivery, median {:?}, p99 {:?}, max {:?} ({} samples)",
        total as f64 / started.elapsed().as_secs_f64(),
        percentile(&lags, 0.5),
        percentile(&lags, 0.99),
        percentile(&lags, 1.0),
        lags.len()
    );
    assert!(total > 1000, "the writers barely wrote");
    assert!(
        percentile(&lags, 1.0) <= Duration::from_secs(2),
        "a durable cursor lagged delivery by more than 2 s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "load: cargo xtask test runs it after the suite, alone"]
async fn load_a_thousand_clients_cut_at_once_all_resume_without_loss() {
    const N: usize = 1000;
    let mut s = Stack::start("reconnect-storm").await;
    s.start_connector();
    assert!(s.leader(Duration::from_secs(15)).await.is_some());
    let p = s.people.clone();
    let demo = p.demo_admin.principal.account_id;
    let acme = p.acme_admin.principal.account_id;
    let mut other = subscribed(&s, &p.acme_admin, None).await;

    let opened = Instant::now();
    let mut clients: Vec<Client> = futures::stream::iter(0..N)
        .map(|_| async {
            let (mut c, _) = connect(&s, &p.demo_admin).await;
            c.subscribe(None).await;
            c
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let ids = connections_of(&s, demo).await;
    assert_eq!(ids.len(), N);
    println!(
        "{N} clients connected and subscribed in {:?}",
        opened.elapsed()
    );
    let first = s.burst(20, &[(demo, None)], 0).await;
    let first_set: BTreeSet<i64> = first.iter().copied().collect();
    for c in &mut clients {
        assert!(c.until_ids(&first_set, Duration::from_secs(60)).await);
    }

    // API Gateway's two-hour cut, for all of them at once.
    let cut_at = Instant::now();
    let http = s.http.clone();
    futures::stream::iter(&ids)
        .map(|id| {
            let http = http.clone();
            let url = format!("{}/@connections/{}", s.base, urlencode(id));
            async move { http.delete(url).send().await.map(|r| r.status().as_u16()) }
        })
        .buffer_unordered(64)
        .for_each(|r| async move { assert_eq!(r.ok(), Some(204)) })
        .await;

    // While they come back: events for them, and the other client's live latency.
    let during = {
        let url = s.db.url.clone();
        tokio::spawn(async move { record(&url, 100, &[(demo, None)], 0).await })
    };
    let other_written = paced(&s, acme, 50, Duration::from_millis(100));
    let reconnects = futures::stream::iter(clients.iter_mut())
        .map(|c| {
            let s = &s;
            let who = &p.demo_admin;
            async move {
                assert!(
                    c.until(Duration::from_secs(60), |c| c.closed_code().is_some())
                        .await,
                    "not cut"
                );
                let after = c.last_id();
                // Jittered, as the dashboard and `cargo xtask listen` do.
                tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % 1000)).await;
                let (mut fresh, refused) = connect(s, who).await;
                fresh.subscribe(after).await;
                (fresh, after, refused)
            }
        })
        .buffer_unordered(N)
        .collect::<Vec<_>>();
    let (resumed, other_written) = tokio::join!(reconnects, other_written);
    let back = cut_at.elapsed();
    let other_lat = latencies(&mut other, &other_written).await;
    let more = during.await.expect("writer");
    let refused: u32 = resumed.iter().map(|(_, _, r)| r).sum();
    let after_cut: BTreeSet<i64> = more.iter().copied().collect();
    let mut resent = 0;
    for (old, (mut fresh, after, _)) in clients.into_iter().zip(resumed) {
        assert!(fresh.until_ids(&after_cut, Duration::from_secs(60)).await);
        fresh.drain();
        let before: BTreeSet<i64> = old.unique_ids();
        let since = fresh.raw_ids();
        assert!(since.iter().all(|id| Some(*id) > after), "sent what it had");
        let mut all: BTreeSet<i64> = before.clone();
        all.extend(since.iter().copied());
        let expected: BTreeSet<i64> = first_set.union(&after_cut).copied().collect();
        assert_eq!(
            all, expected,
            "a client lost or gained events across the cut"
        );
        resent += since.len() - fresh.unique_ids().len();
    }
    println!(
        "{N} clients cut at once: all resumed within {back:?}, {refused} connects refused by the rate limit and retried, {resent} duplicates; the other client's live latency meanwhile median {:?} p99 {:?} max {:?}",
        percentile(&other_lat, 0.5),
        percentile(&other_lat, 0.99),
        percentile(&other_lat, 1.0)
    );
    assert!(
        percentile(&other_lat, 1.0) < Duration::from_secs(3),
        "live delivery to the others stalled"
    );
}

/// Percent-encodes a connection id for the management API's path.
fn urlencode(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
