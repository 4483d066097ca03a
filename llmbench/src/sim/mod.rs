//! The built-in simulated engine: a real HTTP server on loopback that speaks
//! the OpenAI-compatible, Ollama, TGI and llama.cpp protocols, whose timing is
//! known exactly, so a client can be checked against it.
//!
//! The harness starts one when no engine is configured, `llmbench sim --port
//! PORT` serves one from the command line, and the timing tests compare what a
//! client measured with the [`Truth`] the simulator recorded.
//!
//! ```
//! use std::time::Duration;
//! use llmbench::sim::{Itl, Protocol, SimConfig, Simulator};
//!
//! let sim = Simulator::start(
//!     SimConfig::new()
//!         .protocols(&[Protocol::Ollama])
//!         .ttft_base(Duration::from_millis(5))
//!         .itl(Itl::Constant(Duration::from_millis(2))),
//! )?;
//! println!("Ollama-compatible server at {}", sim.url());
//! assert_eq!(sim.requests_seen(), 0);
//! sim.shutdown();
//! # Ok::<(), llmbench::Error>(())
//! ```
//!
//! # What it serves
//!
//! By default all four protocols at once, so any `--engine KIND=URL` can
//! point at one simulator; [`SimConfig::protocols`] narrows it.
//!
//! * **OpenAI** (as vLLM): `POST /v1/chat/completions`, `POST /v1/completions`,
//!   streamed (`data: ` events ending in `data: [DONE]`, usage on request) or
//!   whole; `GET /v1/models`; `GET /health` → `{"status":"ok"}`.
//! * **Ollama**: `POST /api/chat`, `POST /api/generate`, NDJSON unless
//!   `"stream":false`, the last line `done:true` with `done_reason`, counts
//!   and durations in nanoseconds; `options.num_predict` is the budget;
//!   `GET /api/tags`, `/api/ps`, `/api/version`, `/`.
//! * **TGI**: `POST /generate_stream` (`data: ` events with `token`, the last
//!   one with `generated_text` and, when `parameters.details`, `details`; no
//!   `[DONE]`), `POST /generate` (with TGI's `x-*-time` headers),
//!   `POST /v1/chat/completions`; `GET /info`; `GET /health` (empty 200).
//! * **llama.cpp**: `POST /completion` (`content` per token, a last event with
//!   `stop:true`, `timings`, `stop_type`; no `[DONE]`), `/v1/*` with
//!   `timings`, `GET /health`, `/props`, `/slots`, `POST /tokenize`.
//!
//! Routes two protocols share answer in the shape of the first served of
//! OpenAI, llama.cpp, TGI. The `model` of a request is ignored (Ollama echoes
//! it back, like Ollama). Anything else → 404, an invalid body → 400 (TGI:
//! 422), each in the owning protocol's error shape.
//!
//! # Timing model
//!
//! A request waits for one of [`SimConfig::max_concurrency`] slots (first come,
//! first served: this is how load turns into queueing). From the moment it gets
//! one, its first token is due after `ttft_base + per_prompt_token ×
//! prompt_tokens`, and each further token after a gap drawn from [`Itl`].
//! Deadlines are absolute (start plus the sum of the gaps), so a late wake-up
//! never shifts the rest of the schedule; what actually happened is recorded
//! in [`Truth`]. A stream sends its headers, and for OpenAI chat its role-only
//! first chunk, as soon as the request is read (before queueing and prefill,
//! like vLLM), so a client that takes time-to-first-token at the first chunk
//! is visibly wrong. A non-streamed answer arrives in one piece when its last
//! token is due.
//!
//! Durations the server reports are measured from the same instants as the
//! truth: prompt time (Ollama `prompt_eval_duration`, llama.cpp `prompt_ms`)
//! from [`Truth::started_at`] to [`Truth::first_token_at`], generation time
//! (`eval_duration`, `predicted_ms`) from there to [`Truth::last_token_at`],
//! totals from [`Truth::received_at`] to [`Truth::finished_at`], TGI's
//! `x-queue-time` the wait for a slot.
//!
//! # Faults, loading, memory
//!
//! A [`Fault`] strikes every request ([`SimConfig::fault`]), every n-th
//! ([`SimConfig::fault_every`]) or a seeded share of them
//! ([`SimConfig::fault_rate`]); each error takes the shape of the protocol
//! the request came in on, and [`Truth::fault`] says which requests were
//! struck. [`SimConfig::loading_for`] makes it answer 503 for a while after
//! start, as an engine loading its model does. Truth grows by one entry per
//! request; [`SimConfig::record_truth`] turns it off for long runs.
//!
//! # Tokenizer
//!
//! The simulator counts prompt tokens with its own deterministic rule: every
//! run of letters and digits is one token, every other non-space character
//! (punctuation, symbols, emoji) is one token on its own, and white space is
//! free. A chat request adds 8 tokens per message plus 3 for the reply
//! template. A completions `prompt` may be a string, an array of strings
//! (counted together) or an array of token ids (one token each). Token ids
//! (llama.cpp `/tokenize`, TGI `token.id`) are a stable hash of the text.
//!
//! # Runtime
//!
//! The server runs on its own threads (`llmbench-sim-PORT` accepts,
//! `llmbench-sim-worker` serves) with its own tokio runtime, never on the
//! caller's executor, so its work cannot delay a client's timestamps. It
//! writes each wire format with its own code, never with the client's
//! decoders (see the design rules). Measured on a 2-core machine: 200
//! concurrent streams at 8 ms between tokens (25 000 chunks/s) cost it about
//! 30 % of one core.

mod config;
mod generate;
pub(crate) mod model;
pub mod replay;
mod request;
mod server;
mod wire;

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::Notify;

pub use config::{Fault, Itl, OutputLen, Protocol, SimConfig};
pub use model::SENTENCE_TOKENS;

use crate::{Error, ErrorKind, Result};

use server::Shared;

/// What the simulator did for one generation request: the ground truth a
/// client's measurements are checked against.
///
/// All instants come from the same monotonic clock as [`Instant::now`] in the
/// calling process.
#[derive(Clone, Debug)]
pub struct Truth {
    /// The request's id: the `id` of every OpenAI chunk or body
    /// (`chatcmpl-sim-<n>` for chat, `cmpl-sim-<n>` for completions), and
    /// `sim-<n>` on the routes whose answers carry no id (Ollama, TGI
    /// `/generate*`, llama.cpp `/completion`); `n` is the 1-based request
    /// index. Every generation response also carries it in an
    /// `x-request-id` header.
    pub id: String,
    /// The protocol whose shape the answer took.
    pub protocol: Protocol,
    /// The path it came in on, e.g. `/api/chat`.
    pub route: &'static str,
    /// When the request head and body had been read.
    pub received_at: Instant,
    /// When it left the queue (got a concurrency slot); `None` while queued,
    /// and for requests that never take a slot ([`Fault::Status`],
    /// [`Fault::Drop`], [`Fault::Stall`], the loading period).
    pub started_at: Option<Instant>,
    /// Prompt tokens by the simulator's tokenizer (see the module docs).
    pub prompt_tokens: u32,
    /// The tokens it decided to generate (0 when it generates none); a fault
    /// may stop it earlier, see `token_written_at`.
    pub output_tokens: u32,
    /// Whether the request asked for a stream.
    pub stream: bool,
    /// Streams only: for each content token, the instant taken immediately
    /// before its chunk was handed to the connection, so never later than
    /// a client can see it.
    pub token_written_at: Vec<Instant>,
    /// When the first token was produced: written (streams) or due (whole
    /// answers). Server-reported prompt times end here.
    pub first_token_at: Option<Instant>,
    /// When the last token produced so far was written or due.
    /// Server-reported generation times end here.
    pub last_token_at: Option<Instant>,
    /// The instant taken immediately before the last bytes of the response
    /// were built and handed to the connection (for an aborted or dropped
    /// response, when it was aborted); server-reported totals end here.
    /// `None` while in flight, for a stall, or when the client left first.
    pub finished_at: Option<Instant>,
    /// The HTTP status it answered with; `None` before the head is sent, and
    /// for [`Fault::Drop`].
    pub status: Option<u16>,
    /// The fault injected into this request, if any.
    pub fault: Option<Fault>,
    /// The request's body as it arrived, where [`SimConfig::record_bodies`]
    /// asked for it.
    pub body: Option<serde_json::Value>,
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

    /// The protocols it serves.
    pub fn protocols(&self) -> &[Protocol] {
        &self.shared.config.protocols
    }

    /// A snapshot of the ground truth of every generation request seen so far,
    /// finished or not, in arrival order (request `n` at index `n - 1`).
    /// Empty when [`SimConfig::record_truth`] is off.
    pub fn truth(&self) -> Vec<Truth> {
        self.shared.truth_snapshot()
    }

    /// How many generation requests it has received (well-formed generation
    /// requests of any protocol, also those refused while loading; not
    /// probes, model lists or rejected bodies).
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
