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
}
