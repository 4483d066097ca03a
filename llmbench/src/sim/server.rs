//! The simulator's HTTP side: the accept loop, the hyper service, routing,
//! and reading and validating request bodies.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify, Semaphore};

use super::model::{chat_prompt_tokens, count_tokens};
use super::wire::{self, Api};
use super::{generate, SimConfig, Truth};

/// The largest request body it reads.
const MAX_BODY_BYTES: usize = 64 << 20;

/// State shared by the server thread and the [`super::Simulator`] handle.
pub(crate) struct Shared {
    pub(crate) config: SimConfig,
    /// The concurrency slots; tokio's semaphore is fair, so waiters are FIFO.
    pub(crate) slots: Arc<Semaphore>,
    /// Unix seconds at start, the `created` of the listed model.
    created: u64,
    /// Request `n` is at index `n - 1`.
    truth: Mutex<Vec<Truth>>,
}

impl Shared {
    pub(crate) fn new(config: SimConfig) -> Shared {
        let slots = config.max_concurrency.clamp(1, Semaphore::MAX_PERMITS);
        Shared {
            config,
            slots: Arc::new(Semaphore::new(slots)),
            created: unix_now(),
            truth: Mutex::new(Vec::new()),
        }
    }

    /// Record a new generation request; `make` gets its 1-based index.
    pub(crate) fn register(&self, make: impl FnOnce(u64) -> Truth) -> u64 {
        let mut truth = self.truth.lock().unwrap_or_else(PoisonError::into_inner);
        let index = truth.len() as u64 + 1;
        truth.push(make(index));
        index
    }

    /// Change the truth of request `index`.
    pub(crate) fn update(&self, index: u64, change: impl FnOnce(&mut Truth)) {
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
        self.truth
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len() as u64
    }
}

/// Seconds since the Unix epoch, for `created` fields.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
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

impl SimBody {
    pub(crate) fn channel(rx: mpsc::Receiver<Piece>) -> SimBody {
        SimBody::Channel { rx, cutting: false }
    }
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

/// A response with a complete JSON body.
pub(crate) fn json_response(status: StatusCode, body: Bytes) -> Response<SimBody> {
    let mut response = Response::new(SimBody::Full(Some(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// An OpenAI-style error response. A status hyper cannot send becomes 500.
pub(crate) fn error_response(status: u16, message: &str) -> Response<SimBody> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(status, wire::error_body(status.as_u16(), message))
}

/// A 200 response whose body comes piece by piece from `rx`.
pub(crate) fn channel_response(sse: bool, rx: mpsc::Receiver<Piece>) -> Response<SimBody> {
    let mut response = Response::new(SimBody::channel(rx));
    let headers = response.headers_mut();
    if sse {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    } else {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
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
        let service = service_fn(move |request| {
            let shared = Arc::clone(&shared);
            async move { Ok::<_, Infallible>(route(shared, request).await) }
        });
        let connection = http.serve_connection(TokioIo::new(stream), service);
        tokio::spawn(async move {
            // A failed connection (client gone, cut by a fault) is nothing
            // to report: the client sees it.
            let _ = connection.await;
        });
    }
}

async fn route(shared: Arc<Shared>, request: Request<Incoming>) -> Response<SimBody> {
    let api = match (request.method(), request.uri().path()) {
        (&Method::GET, "/health") => {
            return json_response(StatusCode::OK, wire::health_body());
        }
        (&Method::GET, "/v1/models") => {
            return json_response(
                StatusCode::OK,
                wire::models_body(&shared.config.model, shared.created),
            );
        }
        (&Method::POST, "/v1/chat/completions") => Api::Chat,
        (&Method::POST, "/v1/completions") => Api::Completions,
        (method, path) => {
            return error_response(404, &format!("no route for {method} {path}"));
        }
    };
    let body = match Limited::new(request.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return error_response(
                413,
                &format!("request body is larger than {MAX_BODY_BYTES} bytes"),
            );
        }
        Err(e) => return error_response(400, &format!("cannot read the request body: {e}")),
    };
    let received_at = Instant::now();
    match parse(api, &body) {
        Ok(request) => generate::respond(shared, request, received_at).await,
        Err(message) => error_response(400, &message),
    }
}

/// A valid generation request, reduced to what the simulator needs.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct GenRequest {
    pub(crate) api: Api,
    pub(crate) stream: bool,
    pub(crate) include_usage: bool,
    pub(crate) prompt_tokens: u32,
    pub(crate) max_tokens: Option<u32>,
}

/// Read and check a request body; the error says what is wrong.
pub(crate) fn parse(api: Api, body: &[u8]) -> Result<GenRequest, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("request body is not valid JSON: {e}"))?;
    let Value::Object(fields) = value else {
        return Err("request body must be a JSON object".to_owned());
    };
    let stream = optional_bool(fields.get("stream"), "stream")?;
    let include_usage = match fields.get("stream_options") {
        None | Some(Value::Null) => false,
        Some(Value::Object(options)) => {
            optional_bool(options.get("include_usage"), "stream_options.include_usage")?
        }
        Some(_) => return Err("'stream_options' must be an object".to_owned()),
    };
    let max_tokens = match max_tokens(fields.get("max_completion_tokens"), "max_completion_tokens")?
    {
        Some(n) => Some(n),
        None => max_tokens(fields.get("max_tokens"), "max_tokens")?,
    };
    let prompt_tokens = match api {
        Api::Chat => chat_tokens(fields.get("messages"))?,
        Api::Completions => prompt_tokens(fields.get("prompt"))?,
    };
    Ok(GenRequest {
        api,
        stream,
        include_usage,
        prompt_tokens,
        max_tokens,
    })
}

fn optional_bool(value: Option<&Value>, name: &str) -> Result<bool, String> {
    match value {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(format!("'{name}' must be a boolean")),
    }
}

fn max_tokens(value: Option<&Value>, name: &str) -> Result<Option<u32>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(0) => Err(format!("'{name}' must be at least 1")),
            Some(n) => Ok(Some(u32::try_from(n).unwrap_or(u32::MAX))),
            None => Err(format!("'{name}' must be a positive integer")),
        },
    }
}

fn chat_tokens(messages: Option<&Value>) -> Result<u32, String> {
    let messages = match messages {
        None | Some(Value::Null) => return Err("'messages' is required".to_owned()),
        Some(Value::Array(messages)) if messages.is_empty() => {
            return Err("'messages' must not be empty".to_owned());
        }
        Some(Value::Array(messages)) => messages,
        Some(_) => return Err("'messages' must be an array".to_owned()),
    };
    let mut counts = Vec::with_capacity(messages.len());
    for (i, message) in messages.iter().enumerate() {
        let Value::Object(message) = message else {
            return Err(format!("'messages[{i}]' must be an object"));
        };
        let tokens = match message.get("content") {
            None | Some(Value::Null) => 0,
            Some(Value::String(text)) => count_tokens(text),
            Some(Value::Array(parts)) => parts
                .iter()
                .filter_map(|part| part.get("text").and_then(Value::as_str))
                .map(count_tokens)
                .fold(0u32, u32::saturating_add),
            Some(_) => {
                return Err(format!(
                    "'messages[{i}].content' must be a string or an array of parts"
                ));
            }
        };
        counts.push(tokens);
    }
    Ok(chat_prompt_tokens(counts))
}

fn prompt_tokens(prompt: Option<&Value>) -> Result<u32, String> {
    const SHAPE: &str = "'prompt' must be a string, an array of strings or an array of token ids";
    let to_u32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    match prompt {
        None | Some(Value::Null) => Err("'prompt' is required".to_owned()),
        Some(Value::String(text)) => Ok(count_tokens(text)),
        Some(Value::Array(items)) => {
            if items.iter().all(Value::is_string) {
                Ok(items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(count_tokens)
                    .fold(0, u32::saturating_add))
            } else if items.iter().all(Value::is_u64) {
                Ok(to_u32(items.len()))
            } else if items.iter().all(|i| {
                i.as_array()
                    .is_some_and(|ids| ids.iter().all(Value::is_u64))
            }) {
                Ok(items
                    .iter()
                    .filter_map(Value::as_array)
                    .map(|ids| to_u32(ids.len()))
                    .fold(0, u32::saturating_add))
            } else {
                Err(SHAPE.to_owned())
            }
        }
        Some(_) => Err(SHAPE.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(api: Api, body: &str) -> GenRequest {
        parse(api, body.as_bytes()).expect("valid request")
    }

    fn err(api: Api, body: &str) -> String {
        parse(api, body.as_bytes()).expect_err("invalid request")
    }

    #[test]
    fn parses_chat_requests() {
        let r = ok(
            Api::Chat,
            r#"{"model":"x","messages":[{"role":"user","content":"Hello world"}],"max_tokens":5,"stream":true,"stream_options":{"include_usage":true}}"#,
        );
        assert_eq!(
            r,
            GenRequest {
                api: Api::Chat,
                stream: true,
                include_usage: true,
                prompt_tokens: 2 + 8 + 3,
                max_tokens: Some(5),
            }
        );
        let r = ok(
            Api::Chat,
            r#"{"messages":[{"role":"user","content":[{"type":"text","text":"a b c"}]},{"role":"assistant","content":null}],"max_tokens":9,"max_completion_tokens":4}"#,
        );
        assert_eq!(r.prompt_tokens, 3 + 16 + 3);
        assert_eq!(r.max_tokens, Some(4));
        assert!(!r.stream);
    }

    #[test]
    fn parses_completion_prompts() {
        assert_eq!(
            ok(Api::Completions, r#"{"prompt":"Once upon a time"}"#).prompt_tokens,
            4
        );
        assert_eq!(
            ok(Api::Completions, r#"{"prompt":["a b","c"]}"#).prompt_tokens,
            3
        );
        assert_eq!(
            ok(Api::Completions, r#"{"prompt":[1,2,3,4,5]}"#).prompt_tokens,
            5
        );
        assert_eq!(
            ok(Api::Completions, r#"{"prompt":[[1,2],[3]]}"#).prompt_tokens,
            3
        );
        assert_eq!(ok(Api::Completions, r#"{"prompt":"x"}"#).max_tokens, None);
    }

    #[test]
    fn says_what_is_wrong() {
        assert!(err(Api::Chat, "{not json").starts_with("request body is not valid JSON"));
        assert_eq!(err(Api::Chat, "[1]"), "request body must be a JSON object");
        assert_eq!(
            err(Api::Chat, r#"{"model":"x","max_tokens":5}"#),
            "'messages' is required"
        );
        assert_eq!(
            err(Api::Chat, r#"{"messages":[]}"#),
            "'messages' must not be empty"
        );
        assert_eq!(
            err(Api::Chat, r#"{"messages":"hi"}"#),
            "'messages' must be an array"
        );
        assert_eq!(
            err(Api::Chat, r#"{"messages":[1]}"#),
            "'messages[0]' must be an object"
        );
        assert_eq!(
            err(Api::Completions, r#"{"model":"x"}"#),
            "'prompt' is required"
        );
        assert!(err(Api::Completions, r#"{"prompt":{"a":1}}"#).starts_with("'prompt' must be"));
        assert_eq!(
            err(Api::Completions, r#"{"prompt":"x","max_tokens":0}"#),
            "'max_tokens' must be at least 1"
        );
        assert_eq!(
            err(Api::Completions, r#"{"prompt":"x","max_tokens":-3}"#),
            "'max_tokens' must be a positive integer"
        );
        assert_eq!(
            err(Api::Completions, r#"{"prompt":"x","stream":"yes"}"#),
            "'stream' must be a boolean"
        );
        assert_eq!(
            err(
                Api::Completions,
                r#"{"prompt":"x","stream_options":{"include_usage":1}}"#
            ),
            "'stream_options.include_usage' must be a boolean"
        );
    }
}
