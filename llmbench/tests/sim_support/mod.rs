//! What the simulator's wire tests share: a raw HTTP/1.1 client written here
//! (not llmbench's client, not reqwest), which de-chunks bodies and splits
//! server-sent events and NDJSON lines with the instant each arrived.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use llmbench::sim::{Itl, SimConfig, Simulator};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Nothing here should take this long; a hang fails instead of blocking CI.
pub const LIMIT: Duration = Duration::from_secs(20);

/// One response as read off the socket.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Server-sent events (the text after `data:` or `data: `) or NDJSON
    /// lines, each with the instant right after the read that completed it.
    pub events: Vec<(String, Instant)>,
    /// The body ended properly (final empty chunk, or all of Content-Length).
    pub complete: bool,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A header parsed as a number.
    pub fn header_num(&self, name: &str) -> f64 {
        self.header(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("header {name}: {:?}", self.header(name)))
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The events parsed as JSON; `[DONE]` and malformed ones as strings.
    pub fn event_values(&self) -> Vec<Value> {
        self.events
            .iter()
            .map(|(data, _)| {
                serde_json::from_str(data).unwrap_or_else(|_| Value::String(data.clone()))
            })
            .collect()
    }
}

/// A raw HTTP/1.1 connection.
pub struct Conn {
    pub stream: TcpStream,
    pub buf: Vec<u8>,
    pub eof: bool,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Conn {
            stream,
            buf: Vec::new(),
            eof: false,
        }
    }

    pub async fn send(&mut self, method: &str, path: &str, body: Option<&Value>) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        self.send_raw(method, path, &body).await;
    }

    pub async fn send_raw(&mut self, method: &str, path: &str, body: &str) {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: sim\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        self.stream
            .write_all(format!("{head}{body}").as_bytes())
            .await
            .expect("write request");
    }

    /// Read more bytes; the instant is taken right after the read returns.
    /// A reset counts as end of stream.
    pub async fn fill(&mut self) -> Instant {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk).await.unwrap_or(0);
        let at = Instant::now();
        if n == 0 {
            self.eof = true;
        }
        self.buf.extend_from_slice(&chunk[..n]);
        at
    }

    /// Status and headers, or `None` when the connection closes first.
    pub async fn try_head(&mut self) -> Option<(u16, Vec<(String, String)>)> {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = String::from_utf8(self.buf[..end].to_vec()).expect("ascii head");
                self.buf.drain(..end + 4);
                let mut lines = head.split("\r\n");
                let status_line = lines.next().expect("status line");
                let status = status_line
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .expect("status code");
                let headers = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
                    .collect();
                return Some((status, headers));
            }
            if self.eof {
                return None;
            }
            self.fill().await;
        }
    }

    /// Status and headers.
    pub async fn read_head(&mut self) -> (u16, Vec<(String, String)>) {
        self.try_head()
            .await
            .expect("connection closed before the response head")
    }

    /// The body, de-chunked, with SSE events or NDJSON lines split out as
    /// they complete.
    pub async fn read_body(&mut self, status: u16, headers: Vec<(String, String)>) -> Reply {
        let mut reply = Reply {
            status,
            headers,
            body: Vec::new(),
            events: Vec::new(),
            complete: false,
        };
        let ndjson = reply
            .header("content-type")
            .is_some_and(|t| t.contains("ndjson"));
        let mut at = Instant::now();
        if let Some(len) = reply.header("content-length") {
            let len: usize = len.parse().expect("content-length");
            while self.buf.len() < len && !self.eof {
                self.fill().await;
            }
            let n = len.min(self.buf.len());
            reply.body = self.buf.drain(..n).collect();
            reply.complete = n == len;
            return reply;
        }
        assert_eq!(reply.header("transfer-encoding"), Some("chunked"));
        let mut pending = Vec::new();
        loop {
            // One chunk: size line, data, CRLF.
            let parsed = find(&self.buf, b"\r\n").and_then(|line_end| {
                let size_text = std::str::from_utf8(&self.buf[..line_end]).ok()?;
                let size = usize::from_str_radix(size_text.trim(), 16).ok()?;
                let end = line_end + 2 + size + 2;
                (self.buf.len() >= end).then_some((line_end + 2, size, end))
            });
            match parsed {
                Some((_, 0, end)) => {
                    self.buf.drain(..end);
                    reply.complete = true;
                    return reply;
                }
                Some((start, size, end)) => {
                    let data: Vec<u8> = self.buf[start..start + size].to_vec();
                    self.buf.drain(..end);
                    reply.body.extend_from_slice(&data);
                    pending.extend_from_slice(&data);
                    let separator: &[u8] = if ndjson { b"\n" } else { b"\n\n" };
                    while let Some(pos) = find(&pending, separator) {
                        let event =
                            String::from_utf8(pending[..pos].to_vec()).expect("utf-8 event");
                        pending.drain(..pos + separator.len());
                        let data = event
                            .strip_prefix("data: ")
                            .or_else(|| event.strip_prefix("data:"))
                            .unwrap_or(&event)
                            .to_owned();
                        reply.events.push((data, at));
                    }
                }
                None if self.eof => return reply,
                None => at = self.fill().await,
            }
        }
    }

    pub async fn request(&mut self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        self.send(method, path, body).await;
        let (status, headers) = self.read_head().await;
        self.read_body(status, headers).await
    }
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One request on a fresh connection.
pub async fn call(addr: SocketAddr, method: &str, path: &str, body: Option<Value>) -> Reply {
    tokio::time::timeout(LIMIT, async {
        Conn::open(addr)
            .await
            .request(method, path, body.as_ref())
            .await
    })
    .await
    .expect("request finished in time")
}

/// `POST path` with a JSON body on a fresh connection.
pub async fn post(addr: SocketAddr, path: &str, body: Value) -> Reply {
    call(addr, "POST", path, Some(body)).await
}

/// `GET path` on a fresh connection.
pub async fn get(addr: SocketAddr, path: &str) -> Reply {
    call(addr, "GET", path, None).await
}

pub fn chat(content: &str, max_tokens: Option<u32>, stream: bool, usage: bool) -> Value {
    let mut body = json!({
        "model": "anything",
        "messages": [{"role": "user", "content": content}],
        "stream": stream,
    });
    if let Some(n) = max_tokens {
        body["max_tokens"] = json!(n);
    }
    if usage {
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

pub fn fast() -> SimConfig {
    SimConfig::new()
        .ttft_base(Duration::from_millis(5))
        .per_prompt_token(Duration::from_micros(10))
        .itl(Itl::Constant(Duration::from_millis(2)))
}

pub fn start(config: SimConfig) -> Simulator {
    Simulator::start(config).expect("simulator starts")
}

/// Content texts of an OpenAI chat or completions stream, in order.
pub fn contents(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| {
            let choice = e.get("choices")?.get(0)?;
            if !choice["finish_reason"].is_null() {
                return None;
            }
            choice["delta"]["content"]
                .as_str()
                .or_else(|| choice["text"].as_str())
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
        })
        .collect()
}

/// Nanoseconds of a duration, as Ollama counts.
pub fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).expect("fits")
}

/// Milliseconds of a duration as llama.cpp writes them.
pub fn ms(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1e6
}
