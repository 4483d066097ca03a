//! Serving one generation request, whatever its protocol: register its truth,
//! queue for a slot, keep the planned schedule, write the answer (streamed or
//! whole) through the protocol's writer, and inject its fault.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::header::HeaderValue;
use hyper::Response;
use tokio::sync::{mpsc, AcquireError, OwnedSemaphorePermit};

use super::model::{fault_for, Plan};
use super::request::GenRequest;
use super::server::{channel_response, reply_response, Cut, Dropped, Piece, Shared, SimBody, Slot};
use super::wire::{self, unix_now, Meta, Reply, Stats, Wire, JSON};
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
    prompt_tokens: u32,
    plan: Plan,
    fault: Option<Fault>,
    wire: Box<dyn Wire>,
    received_at: Instant,
    queued_at: Instant,
}

impl Job {
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

    /// Mark the request started in `slot`.
    fn start(&self, permit: Option<OwnedSemaphorePermit>) -> (Slot, Instant) {
        let slot = self.shared.occupy(permit, self.index, self.prompt_tokens);
        let start = Instant::now();
        self.update(|t| t.started_at = Some(start));
        (slot, start)
    }

    fn stats(
        &self,
        slot: &Slot,
        start: Instant,
        tokens: (Instant, Instant),
        end: Instant,
    ) -> Stats {
        Stats {
            output_tokens: self.plan.output_tokens,
            finish: self.plan.finish,
            received_at: self.received_at,
            queued_at: self.queued_at,
            started_at: start,
            first_token_at: tokens.0,
            last_token_at: tokens.1,
            end,
            slot: slot.id,
        }
    }
}

/// Answer a valid generation request read at `received_at`; `Err` closes the
/// connection without an answer.
pub(crate) async fn respond(
    shared: Arc<Shared>,
    request: GenRequest,
    received_at: Instant,
    body: Option<serde_json::Value>,
) -> Result<Response<SimBody>, Dropped> {
    let loading = shared.loading();
    let route = request.route;
    let mut fault = None;
    let mut plan = None;
    let index = shared.register(|index| {
        fault = (!loading)
            .then(|| fault_for(&shared.config, index))
            .flatten();
        let p = Plan::new(
            &shared.config,
            index,
            request.prompt_tokens,
            request.max_tokens,
        );
        let generates = !loading && !fault.is_some_and(Fault::skips_generation);
        let output_tokens = if generates { p.output_tokens } else { 0 };
        plan = Some(p);
        Truth {
            id: route.id(index),
            protocol: route.protocol,
            route: route.path,
            received_at,
            started_at: None,
            prompt_tokens: request.prompt_tokens,
            output_tokens,
            stream: request.stream,
            token_written_at: Vec::new(),
            first_token_at: None,
            last_token_at: None,
            finished_at: None,
            status: None,
            fault,
            body,
        }
    });
    let id = route.id(index);
    let Some(plan) = plan else {
        let reply = wire::error_reply(route.protocol, 500, "simulator: request was not registered");
        return Ok(reply_response(reply));
    };
    let mut response = if loading {
        finish_now(
            &shared,
            index,
            reply_response(wire::loading(route.protocol, false)),
        )
    } else {
        let meta = Meta {
            route,
            id: id.clone(),
            created: unix_now(),
            model: request.model.unwrap_or_else(|| shared.config.model.clone()),
            prompt_tokens: request.prompt_tokens,
            max_tokens: request.max_tokens,
            finish: plan.finish,
            include_usage: request.include_usage,
            details: request.details,
            seed: request.seed,
            prompt: request.prompt,
        };
        let job = Job {
            shared: Arc::clone(&shared),
            index,
            prompt_tokens: request.prompt_tokens,
            plan,
            fault,
            wire: wire::writer(meta),
            received_at,
            queued_at: received_at,
        };
        match fault {
            Some(Fault::Status(status)) => {
                let reply = wire::status_fault(route.protocol, status);
                finish_now(&shared, index, reply_response(reply))
            }
            Some(Fault::Drop) => {
                let now = Instant::now();
                shared.update(index, |t| t.finished_at = Some(now));
                return Err(Dropped);
            }
            Some(Fault::Stall) => {
                let (tx, rx) = mpsc::channel(1);
                // Hold the body open, writing nothing, until the client leaves
                // (or the simulator shuts down and drops this task).
                tokio::spawn(async move { tx.closed().await });
                let content_type = if request.stream {
                    job.wire.stream_type()
                } else {
                    JSON
                };
                shared.update(index, |t| t.status = Some(200));
                channel_response(content_type, &job.wire.stream_headers(), rx)
            }
            _ => {
                let queued = Queued::join(&shared).await;
                let job = Job {
                    queued_at: Instant::now(),
                    ..job
                };
                if request.stream {
                    let (tx, rx) = mpsc::channel(STREAM_BUFFER);
                    let response =
                        channel_response(job.wire.stream_type(), &job.wire.stream_headers(), rx);
                    shared.update(index, |t| t.status = Some(200));
                    tokio::spawn(stream(job, queued, Out(tx)));
                    response
                } else {
                    answer(job, queued).await
                }
            }
        }
    };
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    Ok(response)
}

/// Record an answer given at once, without generating.
fn finish_now(shared: &Shared, index: u64, response: Response<SimBody>) -> Response<SimBody> {
    let now = Instant::now();
    let status = response.status().as_u16();
    shared.update(index, |t| {
        t.finished_at = Some(now);
        t.status = Some(status);
    });
    response
}

/// The future that waits for a concurrency slot.
type Acquire = Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>;

/// A place in the queue for a concurrency slot.
enum Queued {
    Ready(Option<OwnedSemaphorePermit>),
    Waiting(Acquire, InQueue),
}

/// Counts a request in the simulator's `/metrics` queue while it waits for
/// a slot, and stops counting it when it has one or has left.
struct InQueue(Arc<Shared>);

impl InQueue {
    fn new(shared: &Arc<Shared>) -> InQueue {
        shared.waiting.fetch_add(1, Ordering::Relaxed);
        InQueue(Arc::clone(shared))
    }
}

impl Drop for InQueue {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Queued {
    /// Join the queue now, right after the request was registered, so slots
    /// go out in arrival order even when the tasks that wait for them run in
    /// another order.
    async fn join(shared: &Arc<Shared>) -> Queued {
        let mut acquire: Acquire = Box::pin(Arc::clone(&shared.slots).acquire_owned());
        // Poll once: tokio's fair semaphore enqueues a waiter on first poll.
        let first = std::future::poll_fn(|cx| Poll::Ready(acquire.as_mut().poll(cx))).await;
        match first {
            Poll::Ready(permit) => Queued::Ready(permit.ok()),
            Poll::Pending => Queued::Waiting(acquire, InQueue::new(shared)),
        }
    }

    /// Wait for the slot. The semaphore is never closed; if it were, serving
    /// without a slot beats failing the request.
    async fn slot(self) -> Option<OwnedSemaphorePermit> {
        match self {
            Queued::Ready(permit) => permit,
            Queued::Waiting(acquire, _in_queue) => acquire.await.ok(),
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
    async fn send(&self, bytes: Bytes) -> bool {
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
async fn stream(mut job: Job, queued: Queued, out: Out) {
    if let Some(event) = job.wire.opening() {
        if !out.send(event).await {
            return;
        }
    }
    let permit = tokio::select! {
        permit = queued.slot() => permit,
        () = out.0.closed() => return,
    };
    let (slot, start) = job.start(permit);

    let fault_after = job.fault_after();
    let mut due = deadline(start, job.plan.ttft);
    if !out.sleep_until(due).await {
        return;
    }
    if fault_after == Some(0) && inject(&job, &out).await == Next::Stop {
        return;
    }
    let n = job.plan.output_tokens;
    let mut written: Option<(Instant, Instant)> = None;
    for k in 1..=n {
        if k > 1 {
            due = deadline(due, job.plan.next_gap());
            if !out.sleep_until(due).await {
                return;
            }
        }
        let word = job.plan.next_word();
        let event = job.wire.token(word, k == n);
        let now = Instant::now();
        let first = written.map_or(now, |(first, _)| first);
        written = Some((first, now));
        job.update(|t| {
            t.token_written_at.push(now);
            t.first_token_at = Some(first);
            t.last_token_at = Some(now);
        });
        if !out.send(event).await {
            return;
        }
        if fault_after == Some(k) && inject(&job, &out).await == Next::Stop {
            return;
        }
    }

    let end = Instant::now();
    let tokens = written.unwrap_or((end, end));
    let stats = job.stats(&slot, start, tokens, end);
    let closing = job.wire.closing(&stats);
    // Where the last token's event ends the answer (TGI), that was the end.
    let finished = if closing.is_empty() { tokens.1 } else { end };
    job.update(|t| t.finished_at = Some(finished));
    for event in closing {
        if !out.send(event).await {
            return;
        }
    }
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
            if out.send(job.wire.malformed_event()).await {
                Next::Continue
            } else {
                Next::Stop
            }
        }
        Some(Fault::ErrorEventAfter(_)) => {
            let event = job.wire.error_event();
            let now = Instant::now();
            job.update(|t| t.finished_at = Some(now));
            let _ = out.send(event).await;
            Next::Stop
        }
        _ => Next::Continue,
    }
}

/// A non-streamed answer: wait for a slot, for the first token and for the
/// last, then answer in one piece (or with the fault's equivalent).
async fn answer(mut job: Job, queued: Queued) -> Response<SimBody> {
    let permit = queued.slot().await;
    let (slot, start) = job.start(permit);

    let first_due = deadline(start, job.plan.ttft);
    tokio::time::sleep_until(first_due.into()).await;
    let first = Instant::now();
    let upto = match (job.fault, job.fault_after()) {
        (Some(Fault::CutAfter(_) | Fault::ErrorEventAfter(_)), Some(n)) => n.max(1),
        _ => job.plan.output_tokens,
    };
    let rest = (1..upto).fold(Duration::ZERO, |sum, _| {
        sum.saturating_add(job.plan.next_gap())
    });
    tokio::time::sleep_until(deadline(first_due, rest).into()).await;
    let last = Instant::now();
    job.update(|t| {
        t.first_token_at = Some(first);
        t.last_token_at = Some(last);
    });

    let text = job.plan.text();
    let end = Instant::now();
    let stats = job.stats(&slot, start, (first, last), end);
    let response = match job.fault {
        Some(Fault::CutAfter(_)) => {
            let whole = job.wire.whole(&text, &stats);
            let (tx, rx) = mpsc::channel(2);
            let half = whole.body.slice(..whole.body.len() / 2);
            // The channel has room for both, so neither send can fail.
            let _ = tx.try_send(Ok(half));
            let _ = tx.try_send(Err(Cut));
            channel_response(whole.content_type, &whole.headers, rx)
        }
        Some(Fault::MalformedAfter(_)) => reply_response(Reply::json(200, "{not json")),
        Some(Fault::ErrorEventAfter(_)) => reply_response(job.wire.failure()),
        _ => reply_response(job.wire.whole(&text, &stats)),
    };
    let status = response.status().as_u16();
    job.update(|t| {
        t.finished_at = Some(end);
        t.status = Some(status);
    });
    response
}
