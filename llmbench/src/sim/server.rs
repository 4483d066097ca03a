//! The simulator's HTTP side: shared state (truth, slots), the accept loop,
//! the hyper service, and routing each path to the protocol that serves it.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::header::{HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};

use super::request::{parse, Endpoint, Parsed, Route};
use super::wire::llamacpp::{self, SlotView, N_CTX};
use super::wire::openai::{self, Flavor};
use super::wire::{self, ollama, tgi, unix_now, Reply, JSON_UTF8, TEXT};
use super::{generate, Protocol, SimConfig, Truth};

/// The largest request body it reads.
const MAX_BODY_BYTES: usize = 64 << 20;

/// The content type of `/metrics`, as Prometheus clients serve it.
const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The most concurrency slots it has.
const MAX_SLOTS: usize = 65_536;

/// One concurrency slot as `/slots` shows it.
#[derive(Clone, Copy)]
struct SlotEntry {
    busy: bool,
    task: i64,
    prompt_tokens: u32,
}

/// State shared by the server thread and the [`super::Simulator`] handle.
pub(crate) struct Shared {
    pub(crate) config: SimConfig,
    /// The concurrency slots; tokio's semaphore is fair, so waiters are FIFO.
    pub(crate) slots: Arc<Semaphore>,
    /// Which slot serves which request.
    table: Mutex<Vec<SlotEntry>>,
    /// Unix seconds at start, the `created` of the listed model.
    created: u64,
    started: Instant,
    started_wall: SystemTime,
    /// Generation requests seen.
    seen: AtomicU64,
    /// Requests waiting for a concurrency slot (`/metrics`).
    pub(crate) waiting: AtomicU64,
    /// Request `n` is at index `n - 1` (when recording).
    truth: Mutex<Vec<Truth>>,
}

/// A concurrency slot held by one request; freed when dropped.
pub(crate) struct Slot {
    shared: Arc<Shared>,
    pub(crate) id: usize,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut table = self
            .shared
            .table
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = table.get_mut(self.id) {
            entry.busy = false;
        }
    }
}

impl Shared {
    pub(crate) fn new(config: SimConfig) -> Shared {
        let slots = config.max_concurrency.clamp(1, MAX_SLOTS);
        let idle = SlotEntry {
            busy: false,
            task: -1,
            prompt_tokens: 0,
        };
        Shared {
            config,
            slots: Arc::new(Semaphore::new(slots)),
            table: Mutex::new(vec![idle; slots]),
            created: unix_now(),
            started: Instant::now(),
            started_wall: SystemTime::now(),
            seen: AtomicU64::new(0),
            waiting: AtomicU64::new(0),
            truth: Mutex::new(Vec::new()),
        }
    }

    /// Whether it is still pretending to load its model.
    pub(crate) fn loading(&self) -> bool {
        self.started.elapsed() < self.config.loading
    }

    /// Record a new generation request; `make` gets its 1-based index.
    pub(crate) fn register(&self, make: impl FnOnce(u64) -> Truth) -> u64 {
        if !self.config.record_truth {
            let index = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
            let _ = make(index);
            return index;
        }
        let mut truth = self.truth.lock().unwrap_or_else(PoisonError::into_inner);
        let index = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
        truth.push(make(index));
        index
    }

    /// Change the truth of request `index`.
    pub(crate) fn update(&self, index: u64, change: impl FnOnce(&mut Truth)) {
        if !self.config.record_truth {
            return;
        }
        let mut truth = self.truth.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = index
            .checked_sub(1)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| truth.get_mut(i));
        if let Some(t) = slot {
            change(t);
        }
    }

    pub(crate) fn truth_snapshot(&self) -> Vec<Truth> {
        self.truth
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn requests_seen(&self) -> u64 {
        self.seen.load(Ordering::Relaxed)
    }

    /// Take the lowest free slot for request `task`, holding `permit`.
    pub(crate) fn occupy(
        self: &Arc<Self>,
        permit: Option<OwnedSemaphorePermit>,
        task: u64,
        prompt_tokens: u32,
    ) -> Slot {
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        // There are as many entries as permits, so one is free.
        let id = table.iter().position(|e| !e.busy).unwrap_or(0);
        if let Some(entry) = table.get_mut(id) {
            *entry = SlotEntry {
                busy: true,
                task: i64::try_from(task).unwrap_or(i64::MAX),
                prompt_tokens,
            };
        }
        Slot {
            shared: Arc::clone(self),
            id,
            _permit: permit,
        }
    }

    /// The simulator's own `/metrics` (Prometheus text, written here, not
    /// with the parser's types: DESIGN rule 8): requests in a slot, waiting
    /// for one, and seen in all.
    fn metrics_body(&self) -> String {
        let running = self
            .table
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|e| e.busy)
            .count();
        let waiting = self.waiting.load(Ordering::Relaxed);
        let seen = self.requests_seen();
        format!(
            "# HELP llmbench_sim_requests_running Requests holding a concurrency slot.\n\
             # TYPE llmbench_sim_requests_running gauge\n\
             llmbench_sim_requests_running {running}\n\
             # HELP llmbench_sim_requests_waiting Requests waiting for a concurrency slot.\n\
             # TYPE llmbench_sim_requests_waiting gauge\n\
             llmbench_sim_requests_waiting {waiting}\n\
             # HELP llmbench_sim_requests_total Generation requests received.\n\
             # TYPE llmbench_sim_requests_total counter\n\
             llmbench_sim_requests_total {seen}\n"
        )
    }

    fn slot_views(&self) -> Vec<SlotView> {
        let table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        table
            .iter()
            .enumerate()
            .map(|(id, e)| SlotView {
                id,
                busy: e.busy,
                task: e.task,
                prompt_tokens: e.prompt_tokens,
            })
            .collect()
    }
}

/// The error a response body yields to make hyper abort the connection.
#[derive(Debug)]
pub(crate) struct Cut;

impl std::fmt::Display for Cut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("simulated connection cut")
    }
}

impl std::error::Error for Cut {}

/// The error the service returns to make hyper close the connection without
/// answering ([`super::Fault::Drop`]).
#[derive(Debug)]
pub(crate) struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("simulated connection drop")
    }
}

impl std::error::Error for Dropped {}

/// What a body channel carries: one write each, or the order to abort.
pub(crate) type Piece = Result<Bytes, Cut>;

/// A response body: all at once, or piece by piece from a channel, each piece
/// becoming its own frame (and write) as soon as it is sent.
pub(crate) enum SimBody {
    Full(Option<Bytes>),
    Channel {
        rx: mpsc::Receiver<Piece>,
        /// A cut was received and answered with `Pending` once.
        cutting: bool,
    },
}

impl hyper::body::Body for SimBody {
    type Data = Bytes;
    type Error = Cut;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Cut>>> {
        match self.get_mut() {
            SimBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            SimBody::Channel { cutting: true, .. } => Poll::Ready(Some(Err(Cut))),
            SimBody::Channel { rx, cutting } => match rx.poll_recv(cx) {
                Poll::Ready(Some(Err(Cut))) => {
                    // hyper drops what it buffered but has not written when a
                    // body fails. Pausing once makes it flush the pieces before
                    // the cut, so the client gets them and then loses the
                    // connection.
                    *cutting = true;
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
                other => other.map(|piece| piece.map(|p| p.map(Frame::data))),
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, SimBody::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            SimBody::Full(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            SimBody::Full(None) => SizeHint::with_exact(0),
            SimBody::Channel { .. } => SizeHint::default(),
        }
    }
}

/// Set the headers of `response`: its content type (none when empty) and
/// `extra`. A header hyper refuses is left out.
fn set_headers<B>(
    response: &mut Response<B>,
    content_type: &str,
    extra: &[(&'static str, String)],
) {
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(content_type) {
        if !content_type.is_empty() {
            headers.insert(CONTENT_TYPE, value);
        }
    }
    for (name, value) in extra {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(name, value);
        }
    }
}

/// A complete response. A status hyper cannot send becomes 500.
pub(crate) fn reply_response(reply: Reply) -> Response<SimBody> {
    let mut response = Response::new(SimBody::Full(Some(reply.body)));
    *response.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    set_headers(&mut response, reply.content_type, &reply.headers);
    response
}

/// A 200 response whose body comes piece by piece from `rx`.
pub(crate) fn channel_response(
    content_type: &str,
    headers: &[(&'static str, String)],
    rx: mpsc::Receiver<Piece>,
) -> Response<SimBody> {
    let mut response = Response::new(SimBody::Channel { rx, cutting: false });
    set_headers(&mut response, content_type, headers);
    if content_type == wire::SSE {
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    response
}

/// Accept connections until `stop` is notified. Open connections are tasks
/// on this runtime and are dropped with it.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>, stop: Arc<Notify>) {
    let mut http = http1::Builder::new();
    http.keep_alive(true).header_read_timeout(None);
    loop {
        let accepted = tokio::select! {
            () = stop.notified() => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(_) => {
                // Out of file descriptors or a connection reset before
                // accept: wait a moment instead of spinning.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        // Each chunk must leave at once, not wait for the next one.
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        let service = service_fn(move |request| route(Arc::clone(&shared), request));
        let connection = http.serve_connection(TokioIo::new(stream), service);
        tokio::spawn(async move {
            // A failed connection (client gone, cut or dropped by a fault) is
            // nothing to report: the client sees it.
            let _ = connection.await;
        });
    }
}

/// What a POST path leads to.
enum Target {
    Generate(Route),
    Tokenize,
}

/// The protocol whose route `POST path` is, under this config.
fn post_target(config: &SimConfig, path: &str) -> Option<Target> {
    let route = |protocol, endpoint, path| {
        Target::Generate(Route {
            protocol,
            endpoint,
            path,
        })
    };
    let (needs, endpoint, path) = match path {
        "/v1/chat/completions" => {
            return Some(route(
                config.shared_owner()?,
                Endpoint::V1Chat,
                "/v1/chat/completions",
            ))
        }
        "/v1/completions" => {
            return Some(route(
                config.shared_owner()?,
                Endpoint::V1Completions,
                "/v1/completions",
            ))
        }
        "/api/chat" => (Protocol::Ollama, Endpoint::OllamaChat, "/api/chat"),
        "/api/generate" => (Protocol::Ollama, Endpoint::OllamaGenerate, "/api/generate"),
        "/generate" => (Protocol::Tgi, Endpoint::TgiGenerate, "/generate"),
        "/generate_stream" => (
            Protocol::Tgi,
            Endpoint::TgiGenerateStream,
            "/generate_stream",
        ),
        "/completion" => (Protocol::LlamaCpp, Endpoint::LlamaCompletion, "/completion"),
        "/completions" => (
            Protocol::LlamaCpp,
            Endpoint::LlamaCompletion,
            "/completions",
        ),
        "/tokenize" if config.serves(Protocol::LlamaCpp) => return Some(Target::Tokenize),
        _ => return None,
    };
    config.serves(needs).then(|| route(needs, endpoint, path))
}

/// The answer to `GET path`, if some served protocol has that route.
fn probe(shared: &Shared, path: &str) -> Option<Reply> {
    let config = &shared.config;
    let model = config.model.as_str();
    let loading = shared.loading();
    let owner = config.shared_owner();
    let llama = config.serves(Protocol::LlamaCpp);
    let ollama = config.serves(Protocol::Ollama);
    let reply = match path {
        "/health" => match owner? {
            owner if loading => wire::loading(owner, true),
            Protocol::Tgi => Reply::new(200, "", Bytes::new()),
            Protocol::LlamaCpp => Reply::new(200, JSON_UTF8, openai::health_body()),
            _ => Reply::json(200, openai::health_body()),
        },
        "/v1/models" => match owner? {
            Protocol::LlamaCpp if loading => wire::loading(Protocol::LlamaCpp, false),
            owner => {
                let flavor = match owner {
                    Protocol::LlamaCpp => Flavor::LlamaCpp,
                    _ => Flavor::OpenAi,
                };
                Reply::json(
                    200,
                    openai::models_body(model, shared.created, flavor, N_CTX),
                )
            }
        },
        "/props" | "/slots" if llama && loading => wire::loading(Protocol::LlamaCpp, false),
        "/props" if llama => Reply::new(
            200,
            JSON_UTF8,
            llamacpp::props_body(model, shared.slot_views().len()),
        ),
        "/slots" if llama => Reply::new(200, JSON_UTF8, llamacpp::slots_body(&shared.slot_views())),
        "/info" if config.serves(Protocol::Tgi) => {
            Reply::json(200, tgi::info_body(model, config.max_concurrency))
        }
        "/" if ollama => Reply::new(200, TEXT, "Ollama is running"),
        "/api/version" if ollama => Reply::new(200, JSON_UTF8, ollama::version_body()),
        "/api/tags" if ollama => Reply::new(
            200,
            JSON_UTF8,
            ollama::tags_body(model, shared.started_wall),
        ),
        // Ollama serves no /metrics: an Ollama-only simulator neither.
        "/metrics" if owner.is_some() => Reply::new(200, PROMETHEUS, shared.metrics_body()),
        "/api/ps" if ollama => Reply::new(200, JSON_UTF8, ollama::ps_body(model, !loading)),
        _ => return None,
    };
    Some(reply)
}

async fn route(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<SimBody>, Dropped> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let target = match method {
        Method::GET => {
            if let Some(reply) = probe(&shared, &path) {
                return Ok(reply_response(reply));
            }
            None
        }
        Method::POST => post_target(&shared.config, &path),
        _ => None,
    };
    let Some(target) = target else {
        let reply = wire::not_found(shared.config.primary(), method.as_str(), &path);
        return Ok(reply_response(reply));
    };
    let protocol = match &target {
        Target::Generate(route) => route.protocol,
        Target::Tokenize => Protocol::LlamaCpp,
    };
    let body = match Limited::new(request.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            let message = format!("request body is larger than {MAX_BODY_BYTES} bytes");
            return Ok(reply_response(wire::error_reply(protocol, 413, &message)));
        }
        Err(e) => {
            let message = format!("cannot read the request body: {e}");
            return Ok(reply_response(wire::error_reply(protocol, 400, &message)));
        }
    };
    let received_at = Instant::now();
    let route = match target {
        Target::Tokenize if shared.loading() => {
            return Ok(reply_response(wire::loading(protocol, false)))
        }
        Target::Tokenize => return Ok(reply_response(llamacpp::tokenize_reply(&body))),
        Target::Generate(route) => route,
    };
    match parse(route, &body) {
        Ok(Parsed::Generate(request)) => {
            let body = shared
                .config
                .record_bodies
                .then(|| serde_json::from_slice(&body).ok())
                .flatten();
            generate::respond(shared, request, received_at, body).await
        }
        Ok(Parsed::Load { model }) => {
            let model = model.as_deref().unwrap_or(&shared.config.model);
            let chat = route.endpoint == Endpoint::OllamaChat;
            let reply = if shared.loading() {
                wire::loading(protocol, false)
            } else {
                Reply::new(200, JSON_UTF8, ollama::load_body(model, chat))
            };
            Ok(reply_response(reply))
        }
        Err(reject) => Ok(reply_response(wire::rejected(protocol, &reject))),
    }
}
