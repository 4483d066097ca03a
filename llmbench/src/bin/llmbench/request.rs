//! `llmbench request`: one streaming request, the answer printed as it
//! arrives, then the figures; or, with `--json`, the request's record.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Instant;

use llmbench::engine::{connect, GenRequest};
use llmbench::measure::{Exchange, LiveText, RecordContext, RequestRecord};
use llmbench::{Engine, Mode};

use crate::engines::EngineArgs;

#[derive(clap::Args, Debug)]
pub(crate) struct RequestArgs {
    /// The prompt (asked for on a terminal when missing).
    prompt: Option<String>,
    #[command(flatten)]
    engines: EngineArgs,
    /// Which configured engine (by label) when several are configured.
    #[arg(long)]
    name: Option<String>,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 256)]
    max_tokens: u32,
    /// Send the prompt raw to the completion route instead of as a chat message.
    #[arg(long)]
    completion: bool,
    /// Ask for the answer in one piece instead of streamed.
    #[arg(long)]
    no_stream: bool,
    /// Print the request's full record as one JSON object (text included).
    #[arg(long)]
    json: bool,
}

fn pick(engines: Vec<Engine>, name: Option<&str>) -> Result<Engine, String> {
    match name {
        Some(n) => engines
            .into_iter()
            .find(|e| e.label() == n)
            .ok_or_else(|| format!("no configured engine is labelled `{n}`")),
        None => engines
            .into_iter()
            .next()
            .ok_or_else(|| "no engine configured".to_string()),
    }
}

fn prompt(args: &RequestArgs) -> Result<String, String> {
    if let Some(p) = &args.prompt {
        return Ok(p.clone());
    }
    if std::io::stdin().is_terminal() {
        eprint!("prompt: ");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| format!("reading the prompt: {e}"))?;
        return Ok(line.trim().to_string());
    }
    Err("give the prompt as an argument: llmbench request \"Why is the sky blue?\"".into())
}

/// The live tokens/s counter: on a terminal, in its title bar (so it never
/// mixes with the answer streaming below), redrawn at most 5 times a second
/// and cleared at the end. It counts content chunks as they arrive; the
/// engine's own token count follows in the figures line.
struct LiveCounter {
    on: bool,
    chunks: u64,
    first: Option<Instant>,
    drawn: Option<Instant>,
}

impl LiveCounter {
    fn new(echo: bool) -> Self {
        use std::io::IsTerminal;
        LiveCounter {
            on: echo && std::io::stderr().is_terminal(),
            chunks: 0,
            first: None,
            drawn: None,
        }
    }

    fn chunk(&mut self) {
        self.chunks += 1;
        let now = Instant::now();
        let first = *self.first.get_or_insert(now);
        if !self.on
            || self
                .drawn
                .is_some_and(|d| now - d < std::time::Duration::from_millis(200))
        {
            return;
        }
        self.drawn = Some(now);
        let secs = (now - first).as_secs_f64();
        let rate = if secs > 0.0 {
            (self.chunks - 1) as f64 / secs
        } else {
            0.0
        };
        eprint!(
            "\x1b]0;llmbench: {} tokens, {rate:.1} tok/s\x07",
            self.chunks
        );
    }

    fn done(&self) {
        if self.on && self.drawn.is_some() {
            eprint!("\x1b]0;llmbench\x07");
        }
    }
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.1} ms"))
}

/// The figures line printed after the answer.
fn figures(r: &RequestRecord) -> String {
    let tokens = match (r.output_tokens, r.output_tokens_estimated) {
        (Some(1), false) => "1 token (engine)".into(),
        (Some(n), false) => format!("{n} tokens (engine)"),
        (Some(n), true) => format!("{n} chunks (the engine reported no count)"),
        (None, _) => "no tokens".into(),
    };
    let mut parts = vec![
        format!("ttft {}", ms(r.ttft_ms)),
        format!("{tokens} in {:.1} ms", r.e2e_latency_ms),
    ];
    if let Some(tps) = r.output_tps {
        parts.push(format!("{tps:.1} tok/s"));
    }
    if let Some(p) = r.prompt_tokens {
        parts.push(format!("prompt {p} tokens"));
    }
    let s = &r.server;
    if !s.is_empty() {
        let mut server = Vec::new();
        if let Some(v) = s.load_duration_ms {
            server.push(format!("load {v:.1} ms"));
        }
        if let Some(v) = s.queue_duration_ms {
            server.push(format!("queue {v:.1} ms"));
        }
        if let Some(v) = s.prompt_eval_duration_ms {
            server.push(format!("prompt {v:.1} ms"));
        }
        if let Some(v) = s.eval_duration_ms {
            let rate = s
                .eval_tps
                .map(|t| format!(" ({t:.1} tok/s)"))
                .unwrap_or_default();
            server.push(format!("eval {v:.1} ms{rate}"));
        }
        if let Some(v) = s.cached_prompt_tokens {
            server.push(format!("{v} cached prompt tokens"));
        }
        parts.push(format!("server: {}", server.join(", ")));
    }
    parts.join(" | ")
}

pub(crate) fn run(args: RequestArgs) -> Result<ExitCode, String> {
    let engine = pick(args.engines.resolve()?, args.name.as_deref())?;
    let prompt = prompt(&args)?;
    let req = GenRequest {
        prompt: prompt.into(),
        history: std::sync::Arc::new([]),
        mode: if args.completion {
            Mode::Completion
        } else {
            Mode::Chat
        },
        max_tokens: args.max_tokens,
        stream: !args.no_stream,
        exact_output: false,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("starting a runtime: {e}"))?;
    let echo = !args.json;
    let (record, ex) = rt.block_on(async {
        // Stopped when the request is done, as the bench harness would.
        let _launched = crate::engines::start_if_launched(&engine).await?;
        let (client, model) = connect(&engine).await.map_err(|e| e.chain())?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let printer = tokio::spawn(async move {
            let mut out = std::io::stdout();
            let mut counter = LiveCounter::new(echo);
            while let Some(piece) = rx.recv().await {
                if !echo {
                    continue;
                }
                let _ = match piece {
                    LiveText::Answer(t) => write!(out, "{t}"),
                    LiveText::Reasoning(t) => write!(out, "\x1b[2m{t}\x1b[0m"),
                };
                let _ = out.flush();
                counter.chunk();
            }
            counter.done();
        });
        let t0 = Instant::now();
        let mut ex = Exchange::started(t0);
        ex.live = Some(tx);
        client.send(&req, &mut ex).await;
        ex.live = None;
        let _ = printer.await;
        let ctx = RecordContext {
            scenario: "request",
            engine: engine.label(),
            model: &model,
            request_id: 0,
            user: 0,
            t0,
            scheduled_at: t0,
            latency_from_schedule: false,
        };
        let record = RequestRecord::from_exchange(&ctx, ex.clone());
        Ok::<_, String>((record, ex))
    })?;
    if args.json {
        let mut value = serde_json::to_value(&record).map_err(|e| e.to_string())?;
        if let Some(obj) = value.as_object_mut() {
            obj.insert("text".into(), ex.text.clone().into());
            obj.insert("reasoning".into(), ex.reasoning.clone().into());
        }
        println!("{value}");
    } else {
        println!();
        println!("-- {}", figures(&record));
    }
    match &record.error {
        None => Ok(ExitCode::SUCCESS),
        Some(e) => {
            eprintln!("request failed ({}): {}", e.kind.as_str(), e.message);
            Ok(ExitCode::FAILURE)
        }
    }
}
