//! The built-in simulated engine: a real OpenAI-compatible HTTP server on
//! loopback whose timing is known exactly, so a client can be checked against it.
//!
//! The harness starts one when no engine is configured, `llmbench sim --port
//! PORT` serves one from the command line, and the timing tests compare what a
//! client measured with the [`Truth`] the simulator recorded.
//!
//! ```
//! use std::time::Duration;
//! use llmbench::sim::{Itl, SimConfig, Simulator};
//!
//! let sim = Simulator::start(
//!     SimConfig::new()
//!         .ttft_base(Duration::from_millis(5))
//!         .itl(Itl::Constant(Duration::from_millis(2))),
//! )?;
//! println!("OpenAI-compatible server at {}", sim.url());
//! assert_eq!(sim.requests_seen(), 0);
//! sim.shutdown();
//! # Ok::<(), llmbench::Error>(())
//! ```
//!
//! # What it serves
//!
//! * `GET /health` → `{"status":"ok"}`; `GET /v1/models` → one model.
//! * `POST /v1/chat/completions` and `POST /v1/completions`, streamed
//!   (`"stream":true`, server-sent events ending in `data: [DONE]`) or not.
//!   The `model` field of a request is ignored, like llama.cpp does: answers
//!   always name [`SimConfig::model`].
//! * Anything else → 404; an invalid body → 400; both with an OpenAI-style
//!   `{"error":{"message","type","code"}}` body.
//!
//! # Timing model
//!
//! A request waits for one of [`SimConfig::max_concurrency`] slots (first come,
//! first served: this is how load turns into queueing). From the moment it gets
//! one, its first token is due after `ttft_base + per_prompt_token ×
//! prompt_tokens`, and each further token after a gap drawn from [`Itl`].
//! Deadlines are absolute (start plus the sum of the gaps), so a late wake-up
//! never shifts the rest of the schedule; what actually happened is recorded
//! in [`Truth`]. A stream sends its headers, and for chat its role-only first
//! chunk, as soon as the request is read (before queueing and prefill, like
//! vLLM sends its role chunk early), so a client that takes time-to-first-token
//! at the first chunk is visibly wrong. A non-streamed answer arrives in one
//! piece when its last token is due.
//!
//! # Tokenizer
//!
//! The simulator counts prompt tokens with its own deterministic rule: every
//! run of letters and digits is one token, every other non-space character
//! (punctuation, symbols, emoji) is one token on its own, and white space is
//! free. A chat request adds 8 tokens per message plus 3 for the reply
//! template. A completions `prompt` may be a string, an array of strings
//! (counted together) or an array of token ids (one token each).
//!
//! # Runtime
//!
//! The server runs on its own threads (`llmbench-sim-PORT` accepts,
//! `llmbench-sim-worker` serves) with its own tokio runtime, never on the
//! caller's executor, so its work cannot delay a client's timestamps. It
//! writes the wire format with its own code, never with the client's
//! decoders (see the design rules). Measured on a 2-core machine: 200
//! concurrent streams at 8 ms between tokens (25 000 chunks/s) cost it about
//! 30 % of one core.

mod generate;
mod model;
pub mod replay;
mod server;
mod wire;

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::{Error, ErrorKind, Result};

use server::Shared;

/// How a [`Simulator`] behaves: its timing model, output lengths, concurrency,
/// seed and injected faults.
///
/// ```
/// use std::time::Duration;
/// use llmbench::sim::{Fault, Itl, OutputLen, SimConfig};
///
/// let config = SimConfig::new()
///     .ttft_base(Duration::from_millis(50))
///     .per_prompt_token(Duration::from_micros(100))
///     .itl(Itl::Normal { mean: Duration::from_millis(10), std_dev: Duration::from_millis(2) })
///     .output_tokens(OutputLen::Uniform { min: 32, max: 128 })
///     .max_concurrency(8)
///     .seed(7)
///     .fault_every(10, Fault::Status(429));
/// ```
#[must_use]
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub(crate) ttft_base: Duration,
    pub(crate) per_prompt_token: Duration,
    pub(crate) itl: Itl,
    pub(crate) output: OutputLen,
    pub(crate) max_concurrency: usize,
    pub(crate) seed: u64,
    pub(crate) model: String,
    /// `(n, fault)`: the fault applies to requests n, 2n, ...; n = 0 never.
    pub(crate) fault: Option<(u64, Fault)>,
}

impl SimConfig {
    /// The defaults: 20 ms base time to first token, 50 µs per prompt token,
    /// a constant 8 ms between tokens, as many output tokens as the request's
    /// `max_tokens` (16 if it has none), 64 requests at a time (more queue),
    /// seed 0, model `llmbench-sim`, no fault.
    pub fn new() -> Self {
        SimConfig {
            ttft_base: Duration::from_millis(20),
            per_prompt_token: Duration::from_micros(50),
            itl: Itl::Constant(Duration::from_millis(8)),
            output: OutputLen::FromRequest,
            max_concurrency: 64,
            seed: 0,
            model: "llmbench-sim".to_owned(),
            fault: None,
        }
    }

    /// Time to first token of an empty prompt, counted from when the request
    /// gets a concurrency slot.
    pub fn ttft_base(mut self, ttft: Duration) -> Self {
        self.ttft_base = ttft;
        self
    }

    /// Prefill cost per prompt token, added to the time to first token: long
    /// prompts really take longer.
    pub fn per_prompt_token(mut self, per_token: Duration) -> Self {
        self.per_prompt_token = per_token;
        self
    }

    /// The gap between consecutive tokens.
    pub fn itl(mut self, itl: Itl) -> Self {
        self.itl = itl;
        self
    }

    /// How many tokens each answer has (always capped by the request's
    /// `max_tokens`, and at least 1).
    pub fn output_tokens(mut self, output: OutputLen) -> Self {
        self.output = output;
        self
    }

    /// How many requests are served at once; further requests wait in a
    /// first-in, first-out queue. 0 is taken as 1.
    pub fn max_concurrency(mut self, slots: usize) -> Self {
        self.max_concurrency = slots;
        self
    }

    /// The seed of every random choice (output lengths, gaps, words). Request
    /// `n` always draws the same values for the same seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The model name it lists and puts in every answer.
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = model.into();
        self
    }

    /// Inject `fault` into every generation request (replaces any earlier
    /// fault setting).
    pub fn fault(self, fault: Fault) -> Self {
        self.fault_every(1, fault)
    }

    /// Inject `fault` into every `n`-th generation request, counting from 1:
    /// requests n, 2n, 3n, ... (replaces any earlier fault setting; `n = 0`
    /// injects nothing).
    pub fn fault_every(mut self, n: u64, fault: Fault) -> Self {
        self.fault = Some((n, fault));
        self
    }

    /// The fault for the 1-based request `index`, if any.
    pub(crate) fn fault_for(&self, index: u64) -> Option<Fault> {
        match self.fault {
            Some((n, fault)) if n > 0 && index % n == 0 => Some(fault),
            _ => None,
        }
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// The distribution of the gap between consecutive tokens of one answer.
///
/// Draws come from a ChaCha generator seeded with ([`SimConfig::seed`],
/// request index), so they are the same on every run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Itl {
    /// Always the same gap.
    Constant(Duration),
    /// Uniform between `min` and `max`, both included (swapped if reversed).
    Uniform {
        /// The shortest gap.
        min: Duration,
        /// The longest gap.
        max: Duration,
    },
    /// Normal (Gaussian), drawn by Box-Muller; negative draws become zero.
    Normal {
        /// The mean gap.
        mean: Duration,
        /// The standard deviation.
        std_dev: Duration,
    },
}

/// How many tokens an answer has. Whatever is chosen is capped by the
/// request's `max_tokens` (or `max_completion_tokens`) and is at least 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputLen {
    /// Exactly the request's `max_tokens`, or 16 when it has none.
    FromRequest,
    /// This many tokens.
    Fixed(u32),
    /// Uniform between `min` and `max`, both included (swapped if reversed).
    Uniform {
        /// The fewest tokens.
        min: u32,
        /// The most tokens.
        max: u32,
    },
}

/// A failure the simulator injects, to prove a client reports it instead of
/// hanging, panicking or counting it as success.
///
/// "After n tokens" means right after the n-th content token was written; with
/// n = 0 the fault happens when the first token is due; when the answer has
/// fewer than n tokens, right after its last one. Non-streamed requests get
/// the nearest equivalent, described on each variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer at once, without queueing, with this HTTP status and an
    /// OpenAI-style error body (429 → `rate_limit_error`, 503 →
    /// `unavailable_error`, other 5xx → `server_error`, ...). A status
    /// outside 100..=999 is sent as 500.
    Status(u16),
    /// Streams: abort the connection after n content tokens (no finish chunk,
    /// no `[DONE]`, no final empty chunk of the chunked encoding), so the
    /// client sees a body error or early EOF. Non-streamed: when token n is
    /// due, send the headers and half a body, then abort.
    CutAfter(u32),
    /// Streams: after n content tokens write the event `data: {not json`,
    /// then go on normally. Non-streamed: the body is `{not json` (status 200).
    MalformedAfter(u32),
    /// Streams: after n tokens write the event
    /// `data: {"error":{"message":"simulated engine failure","type":"server_error","code":500}}`
    /// and end the stream (no `[DONE]`). Non-streamed: when token n is due,
    /// answer 500 with that body.
    ErrorEventAfter(u32),
    /// Accept the request, send the response headers and nothing more until
    /// the client drops the connection. Takes no concurrency slot.
    Stall,
}

/// What the simulator did for one generation request: the ground truth a
/// client's measurements are checked against.
///
/// All instants come from the same monotonic clock as [`Instant::now`] in the
/// calling process.
#[derive(Clone, Debug)]
pub struct Truth {
    /// The response `id` sent in every chunk or body: `chatcmpl-sim-<n>` for
    /// chat, `cmpl-sim-<n>` for completions, `n` the 1-based request index.
    pub id: String,
    /// When the request head and body had been read.
    pub received_at: Instant,
    /// When it left the queue (got a concurrency slot); `None` while queued,
    /// and for requests that never take a slot ([`Fault::Status`],
    /// [`Fault::Stall`]).
    pub started_at: Option<Instant>,
    /// Prompt tokens by the simulator's tokenizer (see the module docs).
    pub prompt_tokens: u32,
    /// The tokens it decided to generate (0 for [`Fault::Status`] and
    /// [`Fault::Stall`]); a fault may stop it earlier, see
    /// `token_written_at`.
    pub output_tokens: u32,
    /// Whether the request asked for a stream.
    pub stream: bool,
    /// Streams only: for each content token, the instant taken immediately
    /// before its chunk was handed to the connection, so never later than
    /// a client can see it.
    pub token_written_at: Vec<Instant>,
    /// The instant taken immediately before the last bytes of the response
    /// were handed to the connection (for an aborted response, when it was
    /// aborted); `None` while in flight, for a stall, or when the client left
    /// first.
    pub finished_at: Option<Instant>,
    /// The fault injected into this request, if any.
    pub fault: Option<Fault>,
}

/// A running simulated engine. Dropping it shuts it down.
pub struct Simulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Arc<Notify>,
    runtime: tokio::runtime::Handle,
    thread: Option<JoinHandle<()>>,
    ended: Arc<Ended>,
}

/// Set when the server thread has ended; [`Simulator::wait`] waits for it.
#[derive(Default)]
struct Ended {
    done: Mutex<bool>,
    cond: Condvar,
}

impl Ended {
    fn set(&self) {
        *self.done.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.cond.notify_all();
    }

    fn wait(&self) {
        let mut done = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        while !*done {
            done = self.cond.wait(done).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// The simulator's runtime until its thread takes it. Dropped anywhere else
/// (a failed start, possibly inside the caller's async code, where a blocking
/// drop would panic), it shuts down in the background.
struct OwnedRuntime(Option<tokio::runtime::Runtime>);

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Marks [`Ended`] even if the server thread unwinds.
struct EndGuard(Arc<Ended>);

impl Drop for EndGuard {
    fn drop(&mut self) {
        self.0.set();
    }
}

impl Simulator {
    /// Start a simulator on `127.0.0.1` with a free port chosen by the system.
    pub fn start(config: SimConfig) -> Result<Simulator> {
        Self::start_on(config, SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Start a simulator listening on `addr`.
    ///
    /// Fails, naming the address, when it cannot be bound (in use, no
    /// permission), or when its thread or runtime cannot be created.
    pub fn start_on(config: SimConfig, addr: SocketAddr) -> Result<Simulator> {
        // One worker thread, plus this thread for the accept loop. Measured
        // against a current-thread runtime at 200 streams x 8 ms: the same
        // CPU, but a woken connection task runs right after the token task
        // that woke it (the multi-thread scheduler's LIFO slot), so a chunk
        // reaches the socket ~20 µs after its truth instant instead of ~0.6 ms
        // behind a burst of other streams' tokens.
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(1).thread_name("llmbench-sim-worker");
        let runtime = builder.enable_all().build().map_err(|e| {
            Error::new(ErrorKind::Io, "simulator: cannot build its tokio runtime").with_source(e)
        })?;
        let handle = runtime.handle().clone();
        let runtime = OwnedRuntime(Some(runtime));
        let (listener, bound) = {
            // Registering the socket with the reactor needs the runtime's context.
            let _context = handle.enter();
            listen(addr).map_err(|e| {
                Error::new(ErrorKind::Io, format!("simulator: cannot listen on {addr}"))
                    .with_source(e)
            })?
        };
        let shared = Arc::new(Shared::new(config));
        let stop = Arc::new(Notify::new());
        let ended = Arc::new(Ended::default());

        let thread = {
            let shared = Arc::clone(&shared);
            let stop = Arc::clone(&stop);
            let guard = EndGuard(Arc::clone(&ended));
            std::thread::Builder::new()
                .name(format!("llmbench-sim-{}", bound.port()))
                .spawn(move || {
                    let _guard = guard;
                    let mut runtime = runtime;
                    if let Some(runtime) = runtime.0.take() {
                        runtime.block_on(server::serve(listener, shared, stop));
                        // Dropping the runtime drops every connection still
                        // open, and waits for its worker to end.
                        drop(runtime);
                    }
                })
                .map_err(|e| {
                    Error::new(ErrorKind::Io, "simulator: cannot start its thread").with_source(e)
                })?
        };
        Ok(Simulator {
            addr: bound,
            shared,
            stop,
            runtime: handle,
            thread: Some(thread),
            ended,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL of its API, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The model name it serves.
    pub fn model(&self) -> &str {
        &self.shared.config.model
    }

    /// A snapshot of the ground truth of every generation request seen so far,
    /// finished or not, in arrival order (request `n` at index `n - 1`).
    pub fn truth(&self) -> Vec<Truth> {
        self.shared.truth_snapshot()
    }

    /// How many generation requests it has received (well-formed chat and
    /// completions requests; not `/health`, `/v1/models` or rejected bodies).
    pub fn requests_seen(&self) -> u64 {
        self.shared.requests_seen()
    }

    /// Stop accepting, drop every open connection and end the server thread.
    /// Dropping the simulator does the same.
    pub fn shutdown(self) {
        drop(self);
    }

    /// Begin shutting down without giving up the handle: stop accepting,
    /// drop every open connection and end the server thread. [`Simulator::truth`]
    /// still answers afterwards. For a caller that handles Ctrl-C itself and
    /// shares the simulator with a thread blocked in [`Simulator::wait`].
    pub fn stop(&self) {
        self.stop.notify_one();
    }

    /// Block the calling thread until the server thread has ended, after
    /// [`Simulator::stop`] from another thread or the Ctrl-C of
    /// [`Simulator::run_until_ctrl_c`].
    pub fn wait(&self) {
        self.ended.wait();
    }

    /// Serve until the process receives Ctrl-C (SIGINT), then shut down. This
    /// is what `llmbench sim` runs. Fails if the Ctrl-C handler cannot be
    /// installed.
    pub fn run_until_ctrl_c(self) -> Result<()> {
        let (tx, rx) = std::sync::mpsc::channel();
        let stop = Arc::clone(&self.stop);
        self.runtime.spawn(async move {
            let result = tokio::signal::ctrl_c().await;
            let _ = tx.send(result);
            stop.notify_one();
        });
        self.wait();
        match rx.recv() {
            Ok(Err(e)) => {
                Err(Error::new(ErrorKind::Io, "simulator: cannot listen for Ctrl-C").with_source(e))
            }
            // Ctrl-C arrived, or the server ended for another reason.
            Ok(Ok(())) | Err(_) => Ok(()),
        }
    }
}

/// How many connections may wait to be accepted. The system default of 128
/// makes a burst of 200 clients wait a second for SYN retransmits.
const BACKLOG: u32 = 1024;

/// Bind and listen on `addr` with a backlog for bursts of clients.
fn listen(addr: SocketAddr) -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As std does on Unix: a restarted `llmbench sim` can take its port back
    // from connections in TIME_WAIT (a live listener still blocks it).
    if cfg!(unix) {
        socket.set_reuseaddr(true)?;
    }
    socket.bind(addr)?;
    let listener = socket.listen(BACKLOG)?;
    let bound = listener.local_addr()?;
    Ok((listener, bound))
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.stop.notify_one();
        if let Some(thread) = self.thread.take() {
            // The thread only ends by itself; a panic in it has already been
            // reported by the panic hook, so there is nothing more to do.
            let _ = thread.join();
        }
    }
}

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator")
            .field("addr", &self.addr)
            .field("config", &self.shared.config)
            .field("requests_seen", &self.requests_seen())
            .finish()
    }
}
