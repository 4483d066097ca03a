//! A transcript replayer: an HTTP server on loopback that answers each route
//! with recorded bytes (a fixture), split into chunks at chosen byte
//! boundaries and sent with delays between them. Adapters are tested against
//! real engine transcripts through it, over a real socket.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::{Error, Result};

/// How a recorded body is cut into writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Chunking {
    /// All at once.
    Whole,
    /// A write after every `n` bytes.
    Every(usize),
    /// A write after each line (`\n`): one NDJSON object or SSE line per write.
    Lines,
    /// Writes ending at these byte offsets (and one with the rest).
    At(Vec<usize>),
}

/// One recorded answer.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type` header.
    pub content_type: String,
    /// More headers.
    pub headers: Vec<(String, String)>,
    /// The body, as recorded.
    pub body: Vec<u8>,
    /// How to cut it.
    pub chunking: Chunking,
    /// Pause before each write after the first.
    pub delay: Duration,
}

impl Recorded {
    /// `body` with `status` and `content_type`, sent whole.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Recorded {
            status,
            content_type: content_type.to_string(),
            headers: Vec::new(),
            body: body.into(),
            chunking: Chunking::Whole,
            delay: Duration::ZERO,
        }
    }

    /// Cut the body as `chunking` says, pausing `delay` between writes.
    #[must_use]
    pub fn chunked(mut self, chunking: Chunking, delay: Duration) -> Self {
        self.chunking = chunking;
        self.delay = delay;
        self
    }

    /// Add a response header.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    fn pieces(&self) -> Vec<&[u8]> {
        let body = &self.body[..];
        let mut cuts: Vec<usize> = match &self.chunking {
            Chunking::Whole => Vec::new(),
            Chunking::Every(n) => (1..)
                .map(|i| i * (*n).max(1))
                .take_while(|&c| c < body.len())
                .collect(),
            Chunking::Lines => body
                .iter()
                .enumerate()
                .filter(|&(_, &b)| b == b'\n')
                .map(|(i, _)| i + 1)
                .collect(),
            Chunking::At(at) => at.clone(),
        };
        cuts.retain(|&c| c > 0 && c < body.len());
        cuts.sort_unstable();
        cuts.dedup();
        let mut out = Vec::new();
        let mut start = 0;
        for c in cuts.into_iter().chain(std::iter::once(body.len())) {
            out.push(&body[start..c]);
            start = c;
        }
        out
    }
}

/// A request the replayer received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, query included.
    pub path: String,
    /// Request headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
}

type Routes = Vec<(String, String, Recorded)>;

/// A running replayer; stops when dropped.
#[derive(Debug)]
pub struct Replay {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Replay {
    /// Serve `routes` (method, path without query, answer) on 127.0.0.1.
    /// Unknown routes get a 404 with a plain-text body.
    pub fn serve<I, M, P>(routes: I) -> Result<Replay>
    where
        I: IntoIterator<Item = (M, P, Recorded)>,
        M: Into<String>,
        P: Into<String>,
    {
        let routes: Arc<Routes> = Arc::new(
            routes
                .into_iter()
                .map(|(m, p, r)| (m.into(), p.into(), r))
                .collect(),
        );
        let listener = TcpListener::bind("127.0.0.1:0")
            .map_err(|e| Error::io("replay: binding 127.0.0.1:0", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io("replay: local address", e))?;
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let (received, stop) = (received.clone(), stop.clone());
            std::thread::Builder::new()
                .name(format!("llmbench-replay-{}", addr.port()))
                .spawn(move || {
                    for conn in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            return;
                        }
                        let Ok(conn) = conn else { continue };
                        let (routes, received) = (routes.clone(), received.clone());
                        std::thread::spawn(move || {
                            let _ = handle(conn, &routes, &received);
                        });
                    }
                })
                .map_err(|e| Error::io("replay: starting the accept thread", e))?
        };
        Ok(Replay {
            addr,
            received,
            stop,
            accept: Some(accept),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Replay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

fn handle(
    conn: TcpStream,
    routes: &Routes,
    received: &Mutex<Vec<Received>>,
) -> std::io::Result<()> {
    conn.set_nodelay(true)?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    let mut length = 0usize;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
            break;
        }
        if let Some((name, value)) = line.trim_end().split_once(':') {
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_string());
            if name == "content-length" {
                length = value.parse().unwrap_or(0);
            }
            headers.push((name, value));
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    received
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Received {
            method: method.clone(),
            path: path.clone(),
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
    let bare = path.split('?').next().unwrap_or_default();
    let mut out = conn;
    let Some((_, _, rec)) = routes.iter().find(|(m, p, _)| *m == method && p == bare) else {
        let msg = format!("replay: no route for {method} {bare}");
        write!(
            out,
            "HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{msg}",
            msg.len()
        )?;
        return out.flush();
    };
    let mut head = format!(
        "HTTP/1.1 {} Replayed\r\ncontent-type: {}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n",
        rec.status, rec.content_type
    );
    for (name, value) in &rec.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    out.flush()?;
    for (i, piece) in rec.pieces().into_iter().enumerate() {
        if i > 0 && !rec.delay.is_zero() {
            std::thread::sleep(rec.delay);
        }
        if piece.is_empty() {
            continue;
        }
        write!(out, "{:x}\r\n", piece.len())?;
        out.write_all(piece)?;
        out.write_all(b"\r\n")?;
        out.flush()?;
    }
    out.write_all(b"0\r\n\r\n")?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_the_body_exactly() {
        let r = Recorded::new(200, "text/plain", "ab\ncd\nef");
        let join = |r: &Recorded| r.pieces().concat();
        for chunking in [
            Chunking::Whole,
            Chunking::Every(3),
            Chunking::Lines,
            Chunking::At(vec![0, 1, 1, 7, 99]),
        ] {
            let r = r.clone().chunked(chunking.clone(), Duration::ZERO);
            assert_eq!(join(&r), b"ab\ncd\nef", "{chunking:?}");
        }
        let lines = r.chunked(Chunking::Lines, Duration::ZERO);
        assert_eq!(lines.pieces(), vec![&b"ab\n"[..], b"cd\n", b"ef"]);
    }
}
