//! Tests of engine launch: fake engines (python3 one-liners) that load,
//! time out, exit early, ignore SIGTERM or hold an address already.
// Compiled only under #[cfg(test)], from the module that includes this file.

use super::*;

/// A fake engine: prints to both streams, answers /health with 503 for
/// `ready_after` seconds (never, if negative) and 200 afterwards, and
/// ignores SIGTERM when asked to.
const FAKE: &str = r#"
import http.server, signal, sys, time
port, ready_after, ignore_term = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3] == "1"
if ignore_term:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
start = time.monotonic()
print("fake engine on stdout", flush=True)
print("fake engine loading model", file=sys.stderr, flush=True)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ready = ready_after >= 0 and time.monotonic() - start >= ready_after
        body = b'{"status":"ok"}' if ready else b'{"error":{"message":"Loading model"}}'
        self.send_response(200 if ready else 503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
"#;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn log_dir(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("llmbench-launch-{tag}-{}", std::process::id()))
}

fn fake(tag: &str, ready_after: f64, ignore_term: bool) -> (LaunchSpec, u16) {
    let port = free_port();
    let spec = LaunchSpec::new("python3", format!("http://127.0.0.1:{port}/health"))
        .args(["-c", FAKE])
        .arg(port.to_string())
        .arg(ready_after.to_string())
        .arg(if ignore_term { "1" } else { "0" })
        .name("fake")
        .log_dir(log_dir(tag));
    (spec, port)
}

fn alive(pid: u32) -> bool {
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[tokio::test]
async fn waits_through_503_until_healthy_then_stops() {
    let (spec, _) = fake("ready", 0.5, false);
    let started = Instant::now();
    let engine = Launched::start(&spec).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "ready only after its 503s: {:?}",
        started.elapsed()
    );
    let pid = engine.pid();
    assert!(alive(pid));
    let stdout = std::fs::read_to_string(engine.stdout_log()).unwrap();
    assert!(stdout.contains("fake engine on stdout"), "{stdout}");
    assert_eq!(engine.stderr_log(), spec.log_dir.join("fake.stderr.log"));
    let status = engine.stop().unwrap();
    // SIGTERM ended it: not a success, and not SIGKILL's doing.
    assert!(!status.success());
    assert!(!alive(pid), "pid {pid} still runs after stop()");
}

#[tokio::test]
async fn timeout_names_command_url_wait_and_log_and_kills_the_engine() {
    let (spec, port) = fake("timeout", -1.0, false);
    let spec = spec.startup_timeout(Duration::from_millis(800));
    let started = Instant::now();
    let err = Launched::start(&spec).await.unwrap_err();
    let message = err.to_string();
    assert!(err.is_engine(), "{message}");
    assert!(started.elapsed() < Duration::from_secs(5), "{message}");
    for part in [
        "engine `fake` (`python3 -c '",
        &format!("not healthy at {} after ", spec.health_url),
        "startup timeout 0.8 s",
        "last answer: HTTP 503 Service Unavailable {\"error\":{\"message\":\"Loading model\"}}",
        "fake.stderr.log:\n  fake engine loading model",
    ] {
        assert!(message.contains(part), "missing `{part}` in:\n{message}");
    }
    // The engine was stopped: its port no longer answers.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[tokio::test]
async fn early_exit_is_an_error_with_the_status_and_log() {
    let spec = LaunchSpec::new(
        "python3",
        format!("http://127.0.0.1:{}/health", free_port()),
    )
    .args([
        "-c",
        "import sys; print('cannot load model.gguf', file=sys.stderr); sys.exit(3)",
    ])
    .log_dir(log_dir("exit"));
    let message = Launched::start(&spec).await.unwrap_err().to_string();
    for part in [
        "engine `python3`",
        "exited (exit status: 3)",
        "before http://127.0.0.1:",
        "last answer: ",
        "python3.stderr.log:\n  cannot load model.gguf",
    ] {
        assert!(message.contains(part), "missing `{part}` in:\n{message}");
    }
}

#[tokio::test]
async fn a_missing_command_is_an_error_naming_it() {
    let spec = LaunchSpec::new("/nonexistent/llama-server", "http://127.0.0.1:1/health")
        .arg("--api-key")
        .arg("sk-secret")
        .log_dir(log_dir("missing"));
    let err = Launched::start(&spec).await.unwrap_err();
    let chain = err.chain();
    assert!(
        chain.contains("cannot run `/nonexistent/llama-server --api-key <redacted>`"),
        "{chain}"
    );
    assert!(!chain.contains("sk-secret"), "{chain}");
    assert!(chain.contains("No such file"), "{chain}");
}

#[tokio::test]
async fn drop_stops_it_and_sigkill_follows_an_ignored_sigterm() {
    let (spec, _) = fake("drop", 0.0, true);
    let spec = spec.stop_timeout(Duration::from_millis(300));
    let engine = Launched::start(&spec).await.unwrap();
    let pid = engine.pid();
    let started = Instant::now();
    drop(engine);
    assert!(!alive(pid), "pid {pid} still runs after drop");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "it waited the grace period before SIGKILL"
    );
}

#[tokio::test]
async fn an_address_already_served_is_refused_before_starting() {
    let (spec, port) = fake("occupied", 0.0, false);
    let first = Launched::start(&spec).await.unwrap();
    let second = spec.clone().name("second").log_dir(log_dir("occupied-2"));
    let message = Launched::start(&second).await.unwrap_err().to_string();
    for part in [
        &format!("engine `second`: http://127.0.0.1:{port}/health already answers (HTTP 200 OK)"),
        "before `python3 -c '",
        "stop it or choose another port",
    ] {
        assert!(message.contains(part), "missing `{part}` in:\n{message}");
    }
    assert!(
        !second.log_dir.join("second.stderr.log").exists(),
        "nothing was started"
    );
    first.stop().unwrap();
}

#[test]
fn secrets_in_arguments_are_redacted() {
    let spec = LaunchSpec::new("srv", "http://h/health").args([
        "--api-key",
        "k1",
        "--token=k2",
        "-m",
        "model.gguf",
        "-p",
        "it's a\n  test",
    ]);
    assert_eq!(
        spec.command_line(),
        "srv --api-key <redacted> --token=<redacted> -m model.gguf -p 'it'\\''s a test'"
    );
}
