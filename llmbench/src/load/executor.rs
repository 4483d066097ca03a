//! Runs a load against an engine client: closed-loop users, each sending its
//! next request when the previous one finished (after any think time), or an
//! open-loop schedule of arrivals (`open_loop.rs`), until the duration or the
//! request count is reached or the run is stopped.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::watch;

use crate::engine::{EngineClient, GenRequest};
use crate::measure::{Exchange, RecordContext, RequestError, RequestErrorKind, RequestRecord};
use crate::workload::prepare::Prepared;
use crate::workload::Workload;

use super::schedule::user_curve;
use super::{open_loop, Load};

/// Everything one trial's load needs besides the client.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub scenario: String,
    /// The step of a sequence this run is, if it is one.
    pub step: Option<String>,
    pub engine: String,
    pub model: String,
    pub workload: Workload,
    /// The prompts requests send, prepared before the clock started.
    pub prompts: Arc<Prepared>,
    pub load: Load,
    pub seed: u64,
    pub request_timeout: Duration,
    /// How many times a request that failed before any content arrived
    /// (refused, dropped connection, 429/5xx status) is sent again; 0 by
    /// default, since retries change what latency means.
    pub retries: u32,
}

/// Where finished records go (the writer thread).
pub(crate) type RecordTx = std::sync::mpsc::Sender<RequestRecord>;

/// The prompt index for request `id`: a pure function of the seed and the id,
/// so a run repeats whatever the order in which users pick up requests.
pub(crate) fn prompt_index(seed: u64, id: u64, prompts: usize) -> usize {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(id);
    rng.random_range(0..prompts.max(1))
}

/// Run `plan` from `t0`, closed or open loop as its load says; every request
/// sent produces exactly one record on `tx`, including those cut short by
/// `stop` (kind `interrupted`) and open-loop arrivals skipped at the in-flight
/// cap (kind `dropped`).
pub(crate) async fn run(
    plan: Arc<Plan>,
    client: Arc<dyn EngineClient>,
    t0: Instant,
    tx: RecordTx,
    stop: watch::Receiver<bool>,
) {
    if plan.load.is_open_loop() {
        open_loop::run(plan, client, t0, tx, stop).await;
    } else {
        run_closed_loop(plan, client, t0, tx, stop).await;
    }
}

async fn run_closed_loop(
    plan: Arc<Plan>,
    client: Arc<dyn EngineClient>,
    t0: Instant,
    tx: RecordTx,
    stop: watch::Receiver<bool>,
) {
    let next = Arc::new(AtomicU64::new(0));
    let deadline = plan.load.duration.map(|d| t0 + d);
    // How many users there are over time: constant, or a ramp or spike.
    let changes: Vec<(Duration, u32)> = match user_curve(&plan.load) {
        Ok(curve) => curve.changes().collect(),
        Err(_) => vec![(Duration::ZERO, plan.load.users)],
    };
    let mut users: Vec<(Arc<AtomicBool>, tokio::task::JoinHandle<()>)> = Vec::new();
    let mut active = 0usize;
    let mut stop_watch = stop.clone();
    for (at, wanted) in changes {
        if !at.is_zero() {
            tokio::select! {
                () = tokio::time::sleep_until((t0 + at).into()) => {}
                _ = stop_watch.wait_for(|s| *s) => break,
            }
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let wanted = wanted as usize;
        while active < wanted {
            let user = u32::try_from(users.len()).unwrap_or(u32::MAX);
            let retire = Arc::new(AtomicBool::new(false));
            let (plan, client, next, tx, stop, flag) = (
                plan.clone(),
                client.clone(),
                next.clone(),
                tx.clone(),
                stop.clone(),
                retire.clone(),
            );
            users.push((
                retire,
                tokio::spawn(async move {
                    let ctx = UserCtx {
                        user,
                        t0,
                        deadline,
                        retire: flag,
                    };
                    run_user(ctx, &plan, &*client, &next, &tx, stop).await;
                }),
            ));
            active += 1;
        }
        // Fewer users: the newest retire once their request in flight ends.
        while active > wanted {
            active -= 1;
            if let Some((flag, _)) = users.iter().rev().find(|(f, _)| !f.load(Ordering::Relaxed)) {
                flag.store(true, Ordering::Relaxed);
            }
        }
    }
    for (_, u) in users {
        // A user task only ends by returning; a join error means it panicked,
        // which the records already sent survive.
        let _ = u.await;
    }
}

struct UserCtx {
    user: u32,
    t0: Instant,
    deadline: Option<Instant>,
    /// Set when a ramp down or the end of a spike retires this user.
    retire: Arc<AtomicBool>,
}

async fn run_user(
    UserCtx {
        user,
        t0,
        deadline,
        retire,
    }: UserCtx,
    plan: &Plan,
    client: &dyn EngineClient,
    next: &AtomicU64,
    tx: &RecordTx,
    mut stop: watch::Receiver<bool>,
) {
    let think = plan.load.think_duration();
    loop {
        if *stop.borrow()
            || retire.load(Ordering::Relaxed)
            || deadline.is_some_and(|d| Instant::now() >= d)
        {
            return;
        }
        let id = next.fetch_add(1, Ordering::Relaxed);
        if plan.load.requests.is_some_and(|limit| id >= limit) {
            return;
        }
        // Closed loop: a request is due the moment its user is free.
        let due = Due {
            id,
            user,
            t0,
            scheduled_at: Instant::now(),
            from_schedule: false,
        };
        let record = one_request(plan, client, &due, stop.clone()).await;
        if tx.send(record).is_err() {
            return; // the writer stopped (disk error); the run is ending
        }
        if let Some(pause) = think {
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }
}

/// One request that is due: who sends it and when it was scheduled.
pub(crate) struct Due {
    pub id: u64,
    pub user: u32,
    pub t0: Instant,
    pub scheduled_at: Instant,
    /// Open loop: latencies count from `scheduled_at`, so a late send shows
    /// in them (no coordinated omission).
    pub from_schedule: bool,
}

/// Send one request and make its record; timeouts and a stop become the
/// record's error, never a lost request.
pub(crate) async fn one_request(
    plan: &Plan,
    client: &dyn EngineClient,
    due: &Due,
    mut stop: watch::Receiver<bool>,
) -> RequestRecord {
    let prompts = &plan.prompts.prompts;
    let index = if plan.prompts.sequential {
        // A prepared pool in its seeded order: every prompt once before any
        // repeats (a repeat would hit the engine's prompt cache).
        usize::try_from(due.id).unwrap_or(0) % prompts.len().max(1)
    } else {
        prompt_index(plan.seed, due.id, prompts.len())
    };
    let Some(prompt) = prompts.get(index) else {
        let mut ex = Exchange::started(Instant::now());
        ex.ended_at = ex.sent_at;
        ex.error = Some(RequestError {
            kind: RequestErrorKind::Interrupted,
            status: None,
            message: "the workload has no prompts".into(),
        });
        return record(plan, due, ex);
    };
    let req = GenRequest {
        prompt: prompt.text.clone(),
        history: prompt.history.clone(),
        mode: plan.workload.mode,
        max_tokens: prompt.max_tokens,
        stream: plan.workload.stream,
        exact_output: plan.workload.exact_output,
    };
    let mut attempts = 0;
    let mut first_sent = None;
    let (mut ex, outcome) = loop {
        let mut ex = Exchange::started(Instant::now());
        let outcome = {
            let send = client.send(&req, &mut ex);
            tokio::select! {
                () = send => None,
                () = tokio::time::sleep(plan.request_timeout) => Some(RequestErrorKind::Timeout),
                _ = stop.wait_for(|s| *s) => Some(RequestErrorKind::Interrupted),
            }
        };
        let first = *first_sent.get_or_insert(ex.sent_at);
        if outcome.is_none() && attempts < plan.retries && retryable(&ex) && !*stop.borrow() {
            attempts += 1;
            continue;
        }
        // A retried request's latencies count from its first send.
        ex.sent_at = first;
        break (ex, outcome);
    };
    if let Some(kind) = outcome {
        ex.ended_at = Instant::now();
        let at = ex
            .endpoint
            .as_deref()
            .map_or_else(String::new, |url| format!("POST {url}: "));
        let message = match kind {
            RequestErrorKind::Timeout => format!(
                "{at}no complete response within the request timeout of {:?} ({} content chunks arrived)",
                plan.request_timeout,
                ex.content_at.len()
            ),
            _ => format!(
                "{at}run stopped while the request was in flight ({} content chunks arrived)",
                ex.content_at.len()
            ),
        };
        ex.error = Some(RequestError {
            kind,
            status: None,
            message,
        });
    }
    let mut r = record(plan, due, ex);
    r.retries = attempts;
    r.requested_prompt_tokens = prompt.requested_prompt_tokens;
    r
}

/// Whether a failure may be retried: nothing was generated yet, and the
/// engine refused or was unreachable rather than failing mid-answer.
fn retryable(ex: &Exchange) -> bool {
    let Some(err) = &ex.error else {
        return false;
    };
    ex.content_at.is_empty()
        && match err.kind {
            RequestErrorKind::Connect | RequestErrorKind::Transport => true,
            RequestErrorKind::HttpStatus => err.status.is_some_and(|s| s == 429 || s >= 500),
            _ => false,
        }
}

/// The record of `ex`, marked as warm-up when it was scheduled inside the
/// warm-up window.
pub(crate) fn record(plan: &Plan, due: &Due, ex: Exchange) -> RequestRecord {
    let ctx = RecordContext {
        scenario: &plan.scenario,
        engine: &plan.engine,
        model: &plan.model,
        request_id: due.id,
        user: due.user,
        t0: due.t0,
        scheduled_at: due.scheduled_at,
        latency_from_schedule: due.from_schedule,
    };
    let mut record = RequestRecord::from_exchange(&ctx, ex);
    record.step.clone_from(&plan.step);
    record.warmup = plan
        .load
        .warmup()
        .is_some_and(|w| due.scheduled_at.saturating_duration_since(due.t0) < w);
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_choice_is_a_pure_function_of_seed_and_id() {
        let a: Vec<usize> = (0..50).map(|id| prompt_index(7, id, 5)).collect();
        let b: Vec<usize> = (0..50).map(|id| prompt_index(7, id, 5)).collect();
        let c: Vec<usize> = (0..50).map(|id| prompt_index(8, id, 5)).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.iter().all(|&i| i < 5));
        for want in 0..5 {
            assert!(a.contains(&want), "every prompt is used over 50 draws");
        }
    }
}
