//! The open loop: requests are sent at the times of a pure, seeded schedule
//! (`schedule::arrival_times`), whatever the engine does. A pacing thread
//! sleeps until just before each arrival and spins the rest of the way
//! (tokio's timer only has millisecond resolution), so sends land on their
//! scheduled instants; latency counts from those instants, so a send the
//! client made late shows up in the figures instead of hiding (no
//! coordinated omission). An arrival over the in-flight cap is recorded as
//! `dropped`, never silently skipped.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::executor::{one_request, record, Due, Plan, RecordTx};
use super::schedule::{arrival_times, ArrivalTimes};
use crate::engine::EngineClient;
use crate::measure::{Exchange, RequestError, RequestErrorKind};

/// Below this much time to go, the pacer spins instead of sleeping: thread
/// sleeps overshoot by tens of microseconds.
const SPIN: Duration = Duration::from_micros(200);

/// Sleep, then spin, until `at`; false when stopped first.
fn wait_until(at: Instant, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        if now >= at {
            return true;
        }
        let left = at - now;
        if left > SPIN {
            // Wake at least every 50 ms to notice a stop.
            std::thread::sleep((left - SPIN).min(Duration::from_millis(50)));
        } else {
            std::hint::spin_loop();
        }
    }
}

/// The pacing thread: hands each arrival (id, scheduled instant) over at its
/// instant.
fn pace(
    arrivals: ArrivalTimes,
    t0: Instant,
    tx: mpsc::UnboundedSender<(u64, Instant)>,
    stop: Arc<AtomicBool>,
) {
    for (id, offset) in (0u64..).zip(arrivals) {
        let at = t0 + offset;
        if !wait_until(at, &stop) || tx.send((id, at)).is_err() {
            return;
        }
    }
}

/// Run the open-loop `plan` from `t0`.
pub(crate) async fn run(
    plan: Arc<Plan>,
    client: Arc<dyn EngineClient>,
    t0: Instant,
    tx: RecordTx,
    mut stop: watch::Receiver<bool>,
) {
    let arrivals = match arrival_times(&plan.load, plan.seed) {
        Ok(a) => a,
        // The load was validated before the trial started; an error here
        // means nothing can be scheduled, so nothing is sent.
        Err(_) => return,
    };
    let (arrival_tx, mut arrival_rx) = mpsc::unbounded_channel();
    let stop_pacer = Arc::new(AtomicBool::new(false));
    let pacer = {
        let stop_pacer = stop_pacer.clone();
        std::thread::Builder::new()
            .name("llmbench-pacer".into())
            .spawn(move || pace(arrivals, t0, arrival_tx, stop_pacer))
    };
    if pacer.is_err() {
        return; // no thread, no schedule: nothing was sent, nothing is lost
    }
    let in_flight = Arc::new(AtomicU32::new(0));
    let cap = plan.load.in_flight_cap();
    let mut tasks = JoinSet::new();
    loop {
        let next = tokio::select! {
            next = arrival_rx.recv() => next,
            _ = stop.wait_for(|s| *s) => None,
        };
        let Some((id, scheduled_at)) = next else {
            break;
        };
        let due = Due {
            id,
            user: 0,
            t0,
            scheduled_at,
            from_schedule: true,
        };
        if cap.is_some_and(|cap| in_flight.load(Ordering::Relaxed) >= cap) {
            if tx.send(dropped(&plan, &due, cap.unwrap_or(0))).is_err() {
                break;
            }
            continue;
        }
        in_flight.fetch_add(1, Ordering::Relaxed);
        let (plan, client, tx, stop, in_flight) = (
            plan.clone(),
            client.clone(),
            tx.clone(),
            stop.clone(),
            in_flight.clone(),
        );
        tasks.spawn(async move {
            let record = one_request(&plan, &*client, &due, stop).await;
            in_flight.fetch_sub(1, Ordering::Relaxed);
            let _ = tx.send(record);
        });
    }
    stop_pacer.store(true, Ordering::Relaxed);
    // Requests in flight at the end of the schedule finish (or time out, or
    // see the stop) and are recorded; none is dropped.
    while tasks.join_next().await.is_some() {}
}

/// The record of an arrival skipped because `cap` requests were in flight.
fn dropped(plan: &Plan, due: &Due, cap: u32) -> crate::measure::RequestRecord {
    let now = Instant::now();
    let mut ex = Exchange::started(now);
    ex.ended_at = now;
    ex.error = Some(RequestError {
        kind: RequestErrorKind::Dropped,
        status: None,
        message: format!("not sent: {cap} requests were already in flight (load.max_in_flight)"),
    });
    record(plan, due, ex)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{GenRequest, ModelInfo};
    use crate::measure::{Aggregate, Exchange};
    use futures_util::future::BoxFuture;

    #[test]
    fn the_pacer_never_hands_over_early() {
        let load = crate::Load::rate(2_000.0).requests(200);
        let arrivals = arrival_times(&load, 1).unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let t0 = Instant::now();
        pace(arrivals, t0, tx, Arc::new(AtomicBool::new(false)));
        let mut n = 0;
        while let Ok((id, at)) = rx.try_recv() {
            assert_eq!(at, t0 + Duration::from_micros(500 * id));
            n += 1;
        }
        assert_eq!(n, 200);
        assert!(
            t0.elapsed() >= Duration::from_micros(500 * 199),
            "the last arrival waited for its time"
        );
    }

    #[test]
    fn a_stopped_pacer_hands_over_nothing_more() {
        let load = crate::Load::rate(1.0).requests(10);
        let arrivals = arrival_times(&load, 1).unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let stop = Arc::new(AtomicBool::new(true));
        pace(arrivals, Instant::now() + Duration::from_secs(1), tx, stop);
        assert!(rx.try_recv().is_err());
    }

    /// A client that does heavy synchronous work for each request (as a
    /// slow tokenizer or a blocking log write would) on its runtime worker
    /// thread, which runs nothing else meanwhile, then answers at once.
    struct BlockingClient {
        work: Duration,
    }

    impl EngineClient for BlockingClient {
        fn send<'a>(&'a self, _req: &'a GenRequest, ex: &'a mut Exchange) -> BoxFuture<'a, ()> {
            Box::pin(async move {
                std::thread::sleep(self.work);
                let now = Instant::now();
                ex.first_byte_at = Some(now);
                ex.content_at.push(now);
                ex.output_tokens = Some(1);
                ex.ended_at = now;
            })
        }

        fn models(&self) -> BoxFuture<'_, crate::Result<Vec<ModelInfo>>> {
            Box::pin(async { Ok(Vec::new()) })
        }

        fn health(&self) -> BoxFuture<'_, crate::Result<()>> {
            Box::pin(async { Ok(()) })
        }

        fn version(&self) -> BoxFuture<'_, crate::Result<Option<String>>> {
            Box::pin(async { Ok(None) })
        }
    }

    /// The client made to lag on purpose: 400 arrivals/s for 60 requests,
    /// on 2 runtime workers that each block 20 ms per request, so at most
    /// 100 sends/s start. Whatever the machine, the k-th send to start
    /// (from 0) starts at least 20 ms x floor(k / 2) after t0, while every
    /// arrival is scheduled by 147.5 ms: the 30 sends started last start
    /// at 300 ms or later, at least 152.5 ms late. (Lower bounds only, from
    /// `thread::sleep` never waking early: no timing tolerance.)
    #[test]
    fn a_client_that_cannot_keep_up_says_so_and_its_lag_is_in_the_latency() {
        let work = Duration::from_millis(20);
        let plan = Arc::new(Plan {
            scenario: "lagging".into(),
            step: None,
            engine: "blocking".into(),
            model: "m".into(),
            workload: crate::Workload::prompts(["hi"]).max_tokens(1),
            prompts: Arc::new(crate::workload::prepare::Prepared::plain(
                &crate::Workload::prompts(["hi"]).max_tokens(1),
            )),
            load: crate::Load::rate(400.0).requests(60),
            seed: 1,
            request_timeout: Duration::from_secs(60),
            retries: 0,
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let (_stop_tx, stop) = watch::channel(false);
        let t0 = Instant::now();
        runtime.block_on(run(plan, Arc::new(BlockingClient { work }), t0, tx, stop));
        let records: Vec<_> = rx.try_iter().collect();
        assert_eq!(records.len(), 60, "every arrival was sent and recorded");
        let mut late = 0;
        for r in &records {
            assert!(r.success, "{:?}", r.error);
            assert!(r.latency_from_schedule);
            assert_eq!(r.scheduled_ms, r.request_id as f64 * 2.5);
            // Latency counts from the scheduled send: the client's own
            // delay is in it (no coordinated omission), then the work.
            let work_ms = work.as_secs_f64() * 1e3;
            assert!(
                r.e2e_latency_ms >= r.schedule_lag_ms + work_ms - 1e-3,
                "request {}: e2e {} ms, lag {} ms",
                r.request_id,
                r.e2e_latency_ms,
                r.schedule_lag_ms
            );
            if r.schedule_lag_ms >= 152.5 - 1e-3 {
                late += 1;
                assert!(r.e2e_latency_ms >= 172.5 - 1e-3, "{}", r.e2e_latency_ms);
            }
        }
        assert!(late >= 30, "{late} of 60 sends at least 152.5 ms late");
        let mut aggregate = Aggregate::default();
        records.iter().for_each(|r| aggregate.add(r));
        let summary = aggregate.summary();
        let lag = summary.schedule_lag.as_ref().unwrap();
        assert!(lag.p99 >= 152.5 - 1e-3, "{lag:?}");
        assert!(summary.e2e_latency.as_ref().unwrap().max >= 172.5 - 1e-3);
        assert_eq!(summary.warnings.len(), 1, "{:?}", summary.warnings);
        assert!(
            summary.warnings[0].starts_with("the client fell behind its schedule: send lag"),
            "{:?}",
            summary.warnings
        );
        assert!(
            summary.warnings[0].contains("the client, not the engine, may be the limit"),
            "{:?}",
            summary.warnings
        );
    }
}
