//! The live view while a trial runs: on a terminal, a progress bar and the
//! figures so far (requests/s, output tokens/s, TTFT p50, errors), redrawn
//! in place after the trial's name a few times a second and erased before
//! its final figures; elsewhere (CI logs, pipes) a plain line every 10 s on
//! stderr. `--quiet` turns it off. The writer thread feeds [`LiveFigures`];
//! a ticker thread draws them, so drawing never touches the request path.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::measure::RequestRecord;

/// How often the terminal view is redrawn.
const TTY_EVERY: Duration = Duration::from_millis(250);
/// How often a plain progress line is printed elsewhere.
const PLAIN_EVERY: Duration = Duration::from_secs(10);
/// Width of the terminal progress bar, in characters.
const BAR: usize = 20;

/// The figures so far of the trial running now.
#[derive(Debug)]
pub(crate) struct LiveFigures {
    done: u64,
    errors: u64,
    output_tokens: u64,
    /// TTFT in microseconds.
    ttft_us: Histogram<u64>,
}

impl Default for LiveFigures {
    fn default() -> Self {
        LiveFigures {
            done: 0,
            errors: 0,
            output_tokens: 0,
            ttft_us: Histogram::new(3).unwrap_or_else(|_| unreachable!("3 digits is valid")),
        }
    }
}

/// Shared between the writer thread (which adds) and the ticker (which reads).
pub(crate) type Live = Arc<Mutex<LiveFigures>>;

/// Count `r` in the live figures.
pub(crate) fn add(live: &Live, r: &RequestRecord) {
    let mut f = live.lock().unwrap_or_else(PoisonError::into_inner);
    f.done += 1;
    if r.success {
        f.output_tokens += u64::from(r.output_tokens.unwrap_or(0));
        if let Some(ttft) = r.ttft_ms {
            let _ = f.ttft_us.record((ttft * 1e3).round().max(1.0) as u64);
        }
    } else {
        f.errors += 1;
    }
}

/// How far along a trial is: by requests, or by time.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Goal {
    Requests(u64),
    Time(Duration),
    Unknown,
}

/// The text of the live view: the bar (terminal only) and the figures.
pub(crate) fn render(f: &LiveFigures, goal: Goal, elapsed: Duration, bar: bool) -> String {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let share = match goal {
        Goal::Requests(n) if n > 0 => Some(f.done as f64 / n as f64),
        Goal::Time(d) if !d.is_zero() => Some(secs / d.as_secs_f64()),
        _ => None,
    }
    .map(|s| s.clamp(0.0, 1.0));
    let mut text = String::new();
    if let (true, Some(share)) = (bar, share) {
        let full = (share * BAR as f64).round() as usize;
        text.push_str(&format!(
            "[{}{}] ",
            "#".repeat(full),
            "-".repeat(BAR - full)
        ));
    }
    let progress = match goal {
        Goal::Requests(n) => format!("{}/{n} requests", f.done),
        Goal::Time(d) => format!("{:.0}/{:.0} s, {} requests", secs, d.as_secs_f64(), f.done),
        Goal::Unknown => format!("{} requests", f.done),
    };
    text.push_str(&progress);
    text.push_str(&format!(
        ", {:.1} req/s, {:.0} tok/s",
        f.done as f64 / secs,
        f.output_tokens as f64 / secs
    ));
    if !f.ttft_us.is_empty() {
        let p50 = f.ttft_us.value_at_quantile(0.5) as f64 / 1e3;
        text.push_str(&format!(", ttft p50 {p50:.1} ms"));
    }
    text.push_str(&format!(", {} errors", f.errors));
    text
}

/// The ticker of one trial; dropping it (or [`Ticker::stop`]) erases the
/// terminal view.
pub(crate) struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    /// Start drawing `live` for trial `name` towards `goal`.
    pub(crate) fn start(name: String, live: Live, goal: Goal) -> Option<Ticker> {
        let stop = Arc::new(AtomicBool::new(false));
        let tty = std::io::stderr().is_terminal() && std::io::stdout().is_terminal();
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("llmbench-live".into())
            .spawn(move || tick(&name, &live, goal, tty, &flag))
            .ok()?;
        Some(Ticker {
            stop,
            thread: Some(thread),
        })
    }

    /// Stop and erase the view.
    pub(crate) fn stop(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.finish();
    }
}

fn tick(name: &str, live: &Live, goal: Goal, tty: bool, stop: &AtomicBool) {
    let start = Instant::now();
    let every = if tty { TTY_EVERY } else { PLAIN_EVERY };
    let mut next = start + every;
    let mut drawn = false;
    let mut err = std::io::stderr();
    if tty {
        // Save the cursor: the end of the trial's line, where the view goes.
        let _ = write!(err, "\x1b7");
    }
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        if Instant::now() < next {
            continue;
        }
        next += every;
        let text = {
            let f = live.lock().unwrap_or_else(PoisonError::into_inner);
            render(&f, goal, start.elapsed(), tty)
        };
        if tty {
            // Back to the saved spot, clear to the end of the line, draw.
            let _ = write!(err, "\x1b8\x1b[K{text}");
            drawn = true;
        } else {
            let _ = writeln!(err, "llmbench: {name}: {text}");
        }
        let _ = err.flush();
    }
    if tty && drawn {
        let _ = write!(err, "\x1b8\x1b[K");
        let _ = err.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::test_support::record;

    #[test]
    fn the_view_shows_progress_and_the_figures_so_far() {
        let live: Live = Arc::default();
        for i in 0..10 {
            let mut r = record(f64::from(i), 20.0 + f64::from(i), 100.0, &[1.0], 5);
            if i == 9 {
                r.success = false;
            }
            add(&live, &r);
        }
        let f = live.lock().unwrap();
        let text = render(&f, Goal::Requests(40), Duration::from_secs(2), true);
        assert_eq!(
            text,
            "[#####---------------] 10/40 requests, 5.0 req/s, 22 tok/s, ttft p50 24.0 ms, 1 errors"
        );
        let plain = render(
            &f,
            Goal::Time(Duration::from_secs(8)),
            Duration::from_secs(2),
            false,
        );
        assert!(
            plain.starts_with("2/8 s, 10 requests, 5.0 req/s"),
            "{plain}"
        );
    }
}
