//! Serving one generation request: register its truth, queue for a slot,
//! keep the planned schedule, write the answer (streamed or whole) and inject
//! its fault.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use hyper::{Response, StatusCode};
use tokio::sync::{mpsc, AcquireError, OwnedSemaphorePermit, Semaphore};

use super::model::Plan;
use super::server::{
    channel_response, error_response, json_response, unix_now, Cut, GenRequest, Piece, Shared,
    SimBody,
};
use super::wire::{self, Api, Meta, Usage};
use super::{Fault, Truth};

/// How many events may wait in a stream's channel. Each event is sent when
/// it is due, so this only matters when the client reads slower than the sim
/// writes; then the sim waits (backpressure) and its truth shows it.
const STREAM_BUFFER: usize = 32;

/// A deadline far enough away to mean "never" without overflowing `Instant`.
const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `at + after`, saturating instead of panicking on absurd durations.
fn deadline(at: Instant, after: Duration) -> Instant {
    at.checked_add(after)
        .or_else(|| at.checked_add(FAR))
        .unwrap_or(at)
}

/// Everything one request's task needs.
struct Job {
    shared: Arc<Shared>,
    index: u64,
    id: String,
    created: u64,
    api: Api,
    include_usage: bool,
    prompt_tokens: u32,
    plan: Plan,
    fault: Option<Fault>,
}

impl Job {
    fn meta(&self) -> Meta<'_> {
        Meta {
            api: self.api,
            id: &self.id,
            created: self.created,
            model: &self.shared.config.model,
        }
    }

    fn update(&self, change: impl FnOnce(&mut Truth)) {
        self.shared.update(self.index, change);
    }

    /// After how many content tokens the fault strikes, for the faults that
    /// strike mid-answer.
    fn fault_after(&self) -> Option<u32> {
        match self.fault {
            Some(Fault::CutAfter(n) | Fault::MalformedAfter(n) | Fault::ErrorEventAfter(n)) => {
                Some(n.min(self.plan.output_tokens))
            }
            _ => None,
        }
    }
}

/// Answer a valid generation request read at `received_at`.
pub(crate) async fn respond(
    shared: Arc<Shared>,
    request: GenRequest,
    received_at: Instant,
) -> Response<SimBody> {
    let created = unix_now();
    let mut fault = None;
    let mut plan = None;
    let index = shared.register(|index| {
        fault = shared.config.fault_for(index);
        let p = Plan::new(
            &shared.config,
            index,
            request.prompt_tokens,
            request.max_tokens,
        );
        let output_tokens = match fault {
            Some(Fault::Status(_) | Fault::Stall) => 0,
            _ => p.output_tokens,
        };
        plan = Some(p);
        Truth {
            id: request.api.id(index),
            received_at,
            started_at: None,
            prompt_tokens: request.prompt_tokens,
            output_tokens,
            stream: request.stream,
            token_written_at: Vec::new(),
            finished_at: None,
            fault,
        }
    });
    let Some(plan) = plan else {
        return error_response(500, "simulator: request was not registered");
    };
    let job = Job {
        id: request.api.id(index),
        shared,
        index,
        created,
        api: request.api,
        include_usage: request.include_usage,
        prompt_tokens: request.prompt_tokens,
        plan,
        fault,
    };

    match job.fault {
        Some(Fault::Status(status)) => {
            let message = match status {
                429 => "simulated rate limit: too many requests".to_owned(),
                503 => "simulated engine unavailable".to_owned(),
                _ => format!("simulated HTTP {status} error"),
            };
            let response = error_response(status, &message);
            let now = Instant::now();
            job.update(|t| t.finished_at = Some(now));
            response
        }
        Some(Fault::Stall) => {
            let (tx, rx) = mpsc::channel(1);
            // Hold the body open, writing nothing, until the client leaves
            // (or the simulator shuts down and drops this task).
            tokio::spawn(async move { tx.closed().await });
            channel_response(request.stream, rx)
        }
        _ => {
            let queued = Queued::join(&job.shared.slots).await;
            if request.stream {
                let (tx, rx) = mpsc::channel(STREAM_BUFFER);
                tokio::spawn(stream(job, queued, tx));
                channel_response(true, rx)
            } else {
                answer(job, queued).await
            }
        }
    }
}

/// The future that waits for a concurrency slot.
type Acquire = Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>;

/// A place in the queue for a concurrency slot.
enum Queued {
    Ready(Option<OwnedSemaphorePermit>),
    Waiting(Acquire),
}

impl Queued {
    /// Join the queue now, right after the request was registered, so slots
    /// go out in arrival order even when the tasks that wait for them run in
    /// another order.
    async fn join(slots: &Arc<Semaphore>) -> Queued {
        let mut acquire: Acquire = Box::pin(Arc::clone(slots).acquire_owned());
        // Poll once: tokio's fair semaphore enqueues a waiter on first poll.
        let first = std::future::poll_fn(|cx| Poll::Ready(acquire.as_mut().poll(cx))).await;
        match first {
            Poll::Ready(permit) => Queued::Ready(permit.ok()),
            Poll::Pending => Queued::Waiting(acquire),
        }
    }

    /// Wait for the slot. The semaphore is never closed; if it were, serving
    /// without a slot beats failing the request.
    async fn slot(self) -> Option<OwnedSemaphorePermit> {
        match self {
            Queued::Ready(permit) => permit,
            Queued::Waiting(acquire) => acquire.await.ok(),
        }
    }
}

/// Whether to go on after a fault was written.
#[derive(PartialEq, Eq)]
enum Next {
    Continue,
    Stop,
}

/// The sending half of a stream's body.
struct Out(mpsc::Sender<Piece>);

impl Out {
    /// Hand one event to the connection; false when the client has left.
    async fn send(&self, bytes: bytes::Bytes) -> bool {
        self.0.send(Ok(bytes)).await.is_ok()
    }

    /// Sleep until `at`; false when the client left in the meantime.
    async fn sleep_until(&self, at: Instant) -> bool {
        tokio::select! {
            () = tokio::time::sleep_until(at.into()) => true,
            () = self.0.closed() => false,
        }
    }
}

/// Write a streamed answer, event by event, each when it is due.
async fn stream(mut job: Job, queued: Queued, tx: mpsc::Sender<Piece>) {
    let out = Out(tx);
    if job.api == Api::Chat && !out.send(wire::role_event(&job.meta())).await {
        return;
    }
    let _permit = tokio::select! {
        permit = queued.slot() => permit,
        () = out.0.closed() => return,
    };
    let start = Instant::now();
    job.update(|t| t.started_at = Some(start));

    let fault_after = job.fault_after();
    let mut due = deadline(start, job.plan.ttft);
    if !out.sleep_until(due).await {
        return;
    }
    if fault_after == Some(0) && inject(&job, &out).await == Next::Stop {
        return;
    }
    for k in 1..=job.plan.output_tokens {
        if k > 1 {
            due = deadline(due, job.plan.next_gap());
            if !out.sleep_until(due).await {
                return;
            }
        }
        let word = job.plan.next_word();
        let event = wire::token_event(&job.meta(), word);
        let now = Instant::now();
        job.update(|t| t.token_written_at.push(now));
        if !out.send(event).await {
            return;
        }
        if fault_after == Some(k) && inject(&job, &out).await == Next::Stop {
            return;
        }
    }

    if !out
        .send(wire::finish_event(&job.meta(), job.plan.finish.as_str()))
        .await
    {
        return;
    }
    if job.include_usage {
        let usage = Usage::new(job.prompt_tokens, job.plan.output_tokens);
        if !out.send(wire::usage_event(&job.meta(), usage)).await {
            return;
        }
    }
    let now = Instant::now();
    job.update(|t| t.finished_at = Some(now));
    let _ = out.send(wire::done_event()).await;
}

/// Write the mid-stream fault of `job`.
async fn inject(job: &Job, out: &Out) -> Next {
    match job.fault {
        Some(Fault::CutAfter(_)) => {
            let now = Instant::now();
            job.update(|t| t.finished_at = Some(now));
            let _ = out.0.send(Err(Cut)).await;
            Next::Stop
        }
        Some(Fault::MalformedAfter(_)) => {
            if out.send(wire::malformed_event()).await {
                Next::Continue
            } else {
                Next::Stop
            }
        }
        Some(Fault::ErrorEventAfter(_)) => {
            let now = Instant::now();
            job.update(|t| t.finished_at = Some(now));
            let _ = out.send(wire::engine_failure_event()).await;
            Next::Stop
        }
        _ => Next::Continue,
    }
}

/// A non-streamed answer: wait for a slot and for the last token, then
/// answer in one piece (or with the fault's equivalent).
async fn answer(mut job: Job, queued: Queued) -> Response<SimBody> {
    let _permit = queued.slot().await;
    let start = Instant::now();
    job.update(|t| t.started_at = Some(start));

    let strike_at = job.fault_after();
    let until = match (job.fault, strike_at) {
        (Some(Fault::CutAfter(_) | Fault::ErrorEventAfter(_)), Some(n)) => {
            job.plan.time_to_token(n)
        }
        _ => job.plan.total_time(),
    };
    tokio::time::sleep_until(deadline(start, until).into()).await;

    let usage = Usage::new(job.prompt_tokens, job.plan.output_tokens);
    let text = job.plan.text();
    let body = wire::answer_body(&job.meta(), &text, job.plan.finish.as_str(), usage);
    let response = match job.fault {
        Some(Fault::CutAfter(_)) => {
            let (tx, rx) = mpsc::channel(2);
            let half = body.slice(..body.len() / 2);
            // The channel has room for both, so neither send can fail.
            let _ = tx.try_send(Ok(half));
            let _ = tx.try_send(Err(Cut));
            channel_response(false, rx)
        }
        Some(Fault::MalformedAfter(_)) => json_response(StatusCode::OK, wire::malformed_body()),
        Some(Fault::ErrorEventAfter(_)) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            wire::engine_failure_body(),
        ),
        _ => json_response(StatusCode::OK, body),
    };
    let now = Instant::now();
    job.update(|t| t.finished_at = Some(now));
    response
}
