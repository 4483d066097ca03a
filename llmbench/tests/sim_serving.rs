//! The simulator as a server: queueing for slots, many streams at once,
//! shutdown, ports, and bounded memory without truth.

mod sim_support;

use std::time::{Duration, Instant};

use llmbench::sim::{Itl, Protocol, SimConfig, Simulator};
use serde_json::json;
use sim_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_queue_for_slots_first_come_first_served() {
    let sim = start(fast().max_concurrency(1));
    let addr = sim.addr();
    let calls: Vec<_> = (0..3)
        .map(|_| {
            tokio::spawn(call(
                addr,
                "POST",
                "/v1/chat/completions",
                Some(chat("hi", Some(4), true, false)),
            ))
        })
        .collect();
    for c in calls {
        assert!(c.await.expect("joined").complete);
    }
    let truth = sim.truth();
    assert_eq!(truth.len(), 3);
    for pair in truth.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(b.started_at.expect("started") >= a.finished_at.expect("finished"));
    }
    // So the last one started no earlier than two whole services after the
    // first: prefill plus three gaps each.
    let service =
        Duration::from_millis(5) + Duration::from_micros(120) + 3 * Duration::from_millis(2);
    assert!(
        truth[2].started_at.expect("started")
            >= truth[0].started_at.expect("started") + 2 * service
    );
}

#[tokio::test]
async fn shutdown_drops_open_streams_and_frees_the_port() {
    let sim = start(fast().itl(Itl::Constant(Duration::from_millis(50))));
    let addr = sim.addr();
    let mut conn = Conn::open(addr).await;
    conn.send(
        "POST",
        "/v1/chat/completions",
        Some(&chat("hi", Some(1000), true, false)),
    )
    .await;
    let (status, headers) = conn.read_head().await;
    assert_eq!(status, 200);
    std::thread::spawn(move || sim.shutdown())
        .join()
        .expect("shutdown");
    let reply = tokio::time::timeout(LIMIT, conn.read_body(status, headers))
        .await
        .expect("the connection ends");
    assert!(!reply.complete);

    let again = Simulator::start_on(fast(), addr).expect("port is free again");
    assert_eq!(again.addr(), addr);
}

#[tokio::test]
async fn start_on_a_taken_address_names_it() {
    // Inside async code on purpose: a failed start must not panic there.
    let sim = start(fast());
    let err = Simulator::start_on(fast(), sim.addr()).expect_err("address in use");
    assert!(err.to_string().contains(&sim.addr().to_string()), "{err}");
}

#[test]
fn stop_ends_wait_and_refuses_new_connections() {
    let sim = std::sync::Arc::new(start(fast()));
    let addr = sim.addr();
    let waiter = {
        let sim = std::sync::Arc::clone(&sim);
        std::thread::spawn(move || sim.wait())
    };
    sim.stop();
    waiter.join().expect("wait returned");
    assert!(std::net::TcpStream::connect(addr).is_err());
    assert_eq!(sim.truth().len(), 0);
}

/// Many streams at once: every token arrives, none is written early, and the
/// write-to-read delay stays small. Figures are printed with `--nocapture`.
async fn many_streams(streams: usize, tokens: u32) {
    let itl = Duration::from_millis(8);
    let sim = start(
        SimConfig::new()
            .ttft_base(Duration::from_millis(20))
            .per_prompt_token(Duration::ZERO)
            .itl(Itl::Constant(itl))
            .max_concurrency(streams),
    );
    let addr = sim.addr();
    let cpu_before = sim_thread_cpu();
    let wall = Instant::now();
    let calls: Vec<_> = (0..streams)
        .map(|_| {
            tokio::spawn(call(
                addr,
                "POST",
                "/v1/chat/completions",
                Some(chat("hi", Some(tokens), true, false)),
            ))
        })
        .collect();
    let mut replies = Vec::new();
    for c in calls {
        replies.push(c.await.expect("joined"));
    }
    let wall = wall.elapsed();
    let cpu = sim_thread_cpu()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    let truth = sim.truth();
    assert_eq!(truth.len(), streams);
    let mut lateness = Vec::new();
    let mut delay = Vec::new();
    for reply in &replies {
        assert!(reply.complete);
        let id = reply.event_values()[0]["id"]
            .as_str()
            .expect("id")
            .to_owned();
        let t = truth.iter().find(|t| t.id == id).expect("truth for id");
        assert_eq!(t.token_written_at.len(), tokens as usize);
        let start = t.started_at.expect("started");
        for (k, written) in t.token_written_at.iter().enumerate() {
            let planned = start + Duration::from_millis(20) + itl * k as u32;
            assert!(*written >= planned, "token {k} early");
            lateness.push(*written - planned);
            let seen = reply.events[1 + k].1;
            assert!(seen >= *written);
            delay.push(seen - *written);
        }
    }
    let pct = |v: &mut Vec<Duration>, p: f64| {
        v.sort();
        v[((v.len() - 1) as f64 * p) as usize]
    };
    println!(
        "{streams} streams x {tokens} tokens @ {itl:?} in {wall:?}, sim thread CPU {cpu:?}: \
         sim lateness p50 {:?} p99 {:?} max {:?}; write->read p50 {:?} p99 {:?} max {:?}",
        pct(&mut lateness, 0.5),
        pct(&mut lateness, 0.99),
        pct(&mut lateness, 1.0),
        pct(&mut delay, 0.5),
        pct(&mut delay, 0.99),
        pct(&mut delay, 1.0),
    );
}

/// CPU time used so far by the simulator's thread (Linux only): it is named
/// `llmbench-sim-PORT`, which `/proc` shortens to 15 bytes.
fn sim_thread_cpu() -> Option<Duration> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let mut ticks = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if !comm.starts_with("llmbench-sim") {
            continue;
        }
        let stat = std::fs::read_to_string(path.join("stat")).ok()?;
        // Fields after the `(comm)`: state is 3rd, utime 14th, stime 15th.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split(' ').collect();
        ticks += fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    }
    // USER_HZ is 100 on every Linux this runs on.
    Some(Duration::from_millis(ticks * 10))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_streams_all_complete() {
    many_streams(64, 50).await;
}

/// The capacity figure: `cargo test -p llmbench --release --test sim -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "load measurement; run by hand"]
async fn two_hundred_concurrent_streams() {
    many_streams(200, 200).await;
}

#[tokio::test]
async fn all_four_protocols_by_default_each_route_recorded() {
    let sim = start(fast());
    assert_eq!(sim.protocols(), Protocol::ALL);
    let calls = [
        ("/v1/chat/completions", chat("hi", Some(2), false, false)),
        ("/v1/completions", json!({"prompt": "hi", "max_tokens": 2})),
        (
            "/api/chat",
            json!({"messages": [{"role": "user", "content": "hi"}], "stream": false}),
        ),
        ("/api/generate", json!({"prompt": "hi", "stream": false})),
        ("/generate", json!({"inputs": "hi"})),
        ("/generate_stream", json!({"inputs": "hi"})),
        ("/completion", json!({"prompt": "hi"})),
    ];
    for (path, body) in &calls {
        let reply = post(sim.addr(), path, body.clone()).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
        assert!(reply.complete);
    }
    let truth = sim.truth();
    let seen: Vec<(Protocol, &str)> = truth.iter().map(|t| (t.protocol, t.route)).collect();
    assert_eq!(
        seen,
        [
            (Protocol::OpenAi, "/v1/chat/completions"),
            (Protocol::OpenAi, "/v1/completions"),
            (Protocol::Ollama, "/api/chat"),
            (Protocol::Ollama, "/api/generate"),
            (Protocol::Tgi, "/generate"),
            (Protocol::Tgi, "/generate_stream"),
            (Protocol::LlamaCpp, "/completion"),
        ]
    );
    let ids: Vec<&str> = truth.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids[..3], ["chatcmpl-sim-1", "cmpl-sim-2", "sim-3"]);
    // Shared routes answer as OpenAI while it is served.
    let health = get(sim.addr(), "/health").await;
    assert_eq!(health.json(), json!({"status": "ok"}));
    for probe in [
        "/v1/models",
        "/api/tags",
        "/api/ps",
        "/api/version",
        "/info",
        "/props",
        "/slots",
    ] {
        assert_eq!(get(sim.addr(), probe).await.status, 200, "{probe}");
    }
}

#[tokio::test]
async fn protocols_limit_the_routes_served() {
    let sim = start(fast().protocols(&[Protocol::Ollama]));
    assert_eq!(sim.protocols(), [Protocol::Ollama]);
    for path in ["/health", "/v1/models", "/info", "/props"] {
        let reply = get(sim.addr(), path).await;
        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(reply.text(), "404 page not found");
    }
    let reply = post(
        sim.addr(),
        "/v1/chat/completions",
        chat("hi", Some(1), false, false),
    )
    .await;
    assert_eq!(reply.status, 404);

    let sim = start(fast().protocols(&[Protocol::OpenAi]));
    let reply = post(sim.addr(), "/api/chat", json!({"messages": []})).await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json()["error"]["type"], "not_found_error");
    assert_eq!(get(sim.addr(), "/api/tags").await.status, 404);

    // TGI alone owns the shared routes: an empty /health.
    let sim = start(fast().protocols(&[Protocol::Tgi, Protocol::Ollama]));
    let health = get(sim.addr(), "/health").await;
    assert_eq!((health.status, health.body.len()), (200, 0));
    // An empty list means all four.
    let sim = start(fast().protocols(&[]));
    assert_eq!(sim.protocols(), Protocol::ALL);
}

#[tokio::test]
async fn without_truth_it_counts_but_keeps_nothing() {
    let sim = start(fast().record_truth(false));
    for _ in 0..3 {
        let reply = post(sim.addr(), "/api/generate", json!({"prompt": "hi"})).await;
        assert!(reply.complete);
        assert_eq!(reply.event_values().len(), 16 + 1);
    }
    let reply = post(
        sim.addr(),
        "/completion",
        json!({"prompt": "hi", "n_predict": 2}),
    )
    .await;
    assert_eq!(reply.json()["tokens_predicted"], 2);
    assert_eq!(reply.header("x-request-id"), Some("sim-4"));
    assert_eq!(sim.requests_seen(), 4);
    assert!(sim.truth().is_empty());
}
