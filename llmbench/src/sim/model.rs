//! The simulator's pure core: its tokenizer, and the seeded draws of output
//! length, inter-token gaps, words and faults that make up one request's plan.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::config::FaultPlan;
use super::{Fault, Itl, OutputLen, SimConfig};

/// Output tokens when the request has no `max_tokens` and the config says
/// [`OutputLen::FromRequest`].
pub(crate) const DEFAULT_OUTPUT_TOKENS: u32 = 16;
/// Chat template overhead per message (role markers, separators).
pub(crate) const CHAT_TOKENS_PER_MESSAGE: u32 = 8;
/// Chat template overhead for the assistant turn that the answer opens.
pub(crate) const CHAT_TOKENS_PER_REPLY: u32 = 3;

/// What the simulated model writes, one word per token, each with its
/// leading space.
const VOCABULARY: [&str; 48] = [
    " the",
    " model",
    " token",
    " stream",
    " latency",
    " answer",
    " of",
    " and",
    " a",
    " to",
    " in",
    " is",
    " that",
    " it",
    " for",
    " on",
    " with",
    " as",
    " this",
    " server",
    " request",
    " time",
    " first",
    " each",
    " queue",
    " batch",
    " cache",
    " prompt",
    " output",
    " fast",
    " slow",
    " engine",
    " bench",
    " mark",
    " run",
    " load",
    " users",
    " rate",
    " tail",
    " p99",
    " steady",
    " warm",
    " cold",
    " simulated",
    " words",
    " here",
    " now",
    " done",
];

/// The tokens of `text` by the simulator's rule (see [`count_tokens`]), as
/// slices of it.
pub(crate) fn tokenize(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut word: Option<usize> = None;
    for (i, c) in text.char_indices() {
        if c.is_alphanumeric() {
            word.get_or_insert(i);
            continue;
        }
        if let Some(start) = word.take() {
            pieces.push(&text[start..i]);
        }
        if !c.is_whitespace() {
            pieces.push(&text[i..i + c.len_utf8()]);
        }
    }
    if let Some(start) = word {
        pieces.push(&text[start..]);
    }
    pieces
}

/// The made-up but stable id of a token: a hash of its text without
/// surrounding white space, so an output word and the same word tokenized
/// from a prompt share one id. Ids lie in 1000..50000.
pub(crate) fn token_id(piece: &str) -> u32 {
    // FNV-1a, 32 bits.
    let hash = piece.trim().bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    1000 + hash % 49_000
}

/// A stable log-probability for a token, in (-4, 0].
pub(crate) fn token_logprob(piece: &str) -> f64 {
    -f64::from(token_id(piece) % 4000) / 1000.0
}

/// Token count of `text` by the simulator's rule: each run of letters and
/// digits is one token, each other non-space character is one token, white
/// space is free.
pub(crate) fn count_tokens(text: &str) -> u32 {
    let mut tokens = 0u32;
    let mut in_word = false;
    for c in text.chars() {
        if c.is_whitespace() {
            in_word = false;
        } else if c.is_alphanumeric() {
            if !in_word {
                tokens = tokens.saturating_add(1);
                in_word = true;
            }
        } else {
            tokens = tokens.saturating_add(1);
            in_word = false;
        }
    }
    tokens
}

/// Prompt tokens of a chat request whose messages have these token counts.
pub(crate) fn chat_prompt_tokens(message_tokens: impl IntoIterator<Item = u32>) -> u32 {
    message_tokens
        .into_iter()
        .fold(CHAT_TOKENS_PER_REPLY, |sum, tokens| {
            sum.saturating_add(tokens)
                .saturating_add(CHAT_TOKENS_PER_MESSAGE)
        })
}

/// What a draw is for; each purpose has its own ChaCha stream, so changing
/// the output length never changes the gaps or the words.
#[derive(Clone, Copy)]
enum Purpose {
    Length = 0,
    Gaps = 1,
    Words = 2,
    Fault = 3,
}

/// The generator for one purpose of the 1-based request `index`.
fn rng(seed: u64, index: u64, purpose: Purpose) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index.wrapping_mul(4).wrapping_add(purpose as u64));
    rng
}

/// The fault for the 1-based request `index`, if any.
pub(crate) fn fault_for(config: &SimConfig, index: u64) -> Option<Fault> {
    let (plan, fault) = config.fault?;
    let strikes = match plan {
        FaultPlan::Every(n) => n > 0 && index % n == 0,
        FaultPlan::Rate(p) => rng(config.seed, index, Purpose::Fault).random::<f64>() < p,
    };
    strikes.then_some(fault)
}

/// Draw an output length: `spec` capped by the request's `max_tokens`, at
/// least 1.
pub(crate) fn sample_output_len(
    spec: OutputLen,
    max_tokens: Option<u32>,
    rng: &mut impl Rng,
) -> u32 {
    let wanted = match spec {
        OutputLen::FromRequest => max_tokens.unwrap_or(DEFAULT_OUTPUT_TOKENS),
        OutputLen::Fixed(n) => n,
        OutputLen::Uniform { min, max } => {
            let (lo, hi) = if min <= max { (min, max) } else { (max, min) };
            rng.random_range(lo..=hi)
        }
    };
    wanted.min(max_tokens.unwrap_or(u32::MAX)).max(1)
}

/// Draw one inter-token gap.
pub(crate) fn sample_gap(itl: Itl, rng: &mut impl Rng) -> Duration {
    match itl {
        Itl::Constant(gap) => gap,
        Itl::Uniform { min, max } => {
            let (lo, hi) = if min <= max { (min, max) } else { (max, min) };
            let lo = u64::try_from(lo.as_nanos()).unwrap_or(u64::MAX);
            let hi = u64::try_from(hi.as_nanos()).unwrap_or(u64::MAX);
            Duration::from_nanos(rng.random_range(lo..=hi))
        }
        Itl::Normal { mean, std_dev } => {
            // Box-Muller: u1 in (0, 1] keeps ln(u1) finite.
            let u1 = 1.0 - rng.random::<f64>();
            let u2 = rng.random::<f64>();
            let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            secs_to_duration(mean.as_secs_f64() + std_dev.as_secs_f64() * z)
        }
    }
}

/// Seconds to a duration, negative and NaN clamped to zero, overflow to MAX.
fn secs_to_duration(secs: f64) -> Duration {
    if secs.is_nan() || secs <= 0.0 {
        Duration::ZERO
    } else {
        Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
    }
}

/// Why an answer ended, as the `finish_reason` field says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Finish {
    /// It stopped by itself.
    Stop,
    /// It reached the request's `max_tokens`.
    Length,
}

impl Finish {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Finish::Stop => "stop",
            Finish::Length => "length",
        }
    }
}

/// Everything decided about one request before it runs: how long, how fast,
/// which words. Gaps and words are drawn as they are needed.
pub(crate) struct Plan {
    /// Tokens it generates.
    pub(crate) output_tokens: u32,
    /// From leaving the queue to the first token.
    pub(crate) ttft: Duration,
    /// The finish reason it reports.
    pub(crate) finish: Finish,
    itl: Itl,
    gaps: ChaCha8Rng,
    words: ChaCha8Rng,
    /// Tokens drawn so far.
    drawn: u32,
}

/// Every this many tokens, the simulator's answer ends a sentence: the
/// token is `.` (so the time to first sentence is known exactly: TTFT plus
/// eleven gaps).
pub const SENTENCE_TOKENS: u32 = 12;

impl Plan {
    /// The plan of the 1-based request `index`.
    pub(crate) fn new(
        config: &SimConfig,
        index: u64,
        prompt_tokens: u32,
        max_tokens: Option<u32>,
    ) -> Plan {
        let output_tokens = sample_output_len(
            config.output,
            max_tokens,
            &mut rng(config.seed, index, Purpose::Length),
        );
        let finish = if max_tokens == Some(output_tokens) {
            Finish::Length
        } else {
            Finish::Stop
        };
        let ttft = config
            .ttft_base
            .saturating_add(config.per_prompt_token.saturating_mul(prompt_tokens));
        Plan {
            output_tokens,
            ttft,
            finish,
            itl: config.itl,
            gaps: rng(config.seed, index, Purpose::Gaps),
            words: rng(config.seed, index, Purpose::Words),
            drawn: 0,
        }
    }

    /// The gap before the next token (after the first).
    pub(crate) fn next_gap(&mut self) -> Duration {
        sample_gap(self.itl, &mut self.gaps)
    }

    /// The text of the next token.
    pub(crate) fn next_word(&mut self) -> &'static str {
        self.drawn += 1;
        if self.drawn % SENTENCE_TOKENS == 0 {
            return ".";
        }
        VOCABULARY[self.words.random_range(0..VOCABULARY.len())]
    }

    /// The whole text of the answer (draws every word).
    pub(crate) fn text(&mut self) -> String {
        (0..self.output_tokens).map(|_| self.next_word()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gaps(config: &SimConfig, index: u64, n: usize) -> Vec<Duration> {
        let mut plan = Plan::new(config, index, 10, Some(1000));
        (0..n).map(|_| plan.next_gap()).collect()
    }

    #[test]
    fn tokenizer_counts_words_and_punctuation() {
        assert_eq!(count_tokens(""), 0);
        assert_eq!(count_tokens("   \n\t"), 0);
        assert_eq!(count_tokens("Hello world"), 2);
        assert_eq!(count_tokens("Hello world! How are you?"), 7);
        assert_eq!(count_tokens("don't"), 3);
        assert_eq!(count_tokens("2+2=4"), 5);
        assert_eq!(count_tokens("héllo 🦙"), 2);
    }

    #[test]
    fn chat_adds_template_overhead() {
        assert_eq!(chat_prompt_tokens([]), 3);
        assert_eq!(chat_prompt_tokens([4]), 4 + 8 + 3);
        assert_eq!(chat_prompt_tokens([4, 10]), 4 + 10 + 16 + 3);
    }

    #[test]
    fn output_len_is_capped_and_at_least_one() {
        let mut r = rng(0, 1, Purpose::Length);
        assert_eq!(
            sample_output_len(OutputLen::FromRequest, Some(40), &mut r),
            40
        );
        assert_eq!(
            sample_output_len(OutputLen::FromRequest, None, &mut r),
            DEFAULT_OUTPUT_TOKENS
        );
        assert_eq!(sample_output_len(OutputLen::Fixed(100), Some(7), &mut r), 7);
        assert_eq!(sample_output_len(OutputLen::Fixed(0), None, &mut r), 1);
        for _ in 0..1000 {
            let n = sample_output_len(OutputLen::Uniform { min: 20, max: 10 }, None, &mut r);
            assert!((10..=20).contains(&n), "{n}");
            let n = sample_output_len(OutputLen::Uniform { min: 5, max: 50 }, Some(8), &mut r);
            assert!((5..=8).contains(&n), "{n}");
        }
    }

    #[test]
    fn same_seed_same_draws() {
        let config = SimConfig::new()
            .seed(42)
            .itl(Itl::Normal {
                mean: Duration::from_millis(10),
                std_dev: Duration::from_millis(3),
            })
            .output_tokens(OutputLen::Uniform { min: 1, max: 500 });
        assert_eq!(gaps(&config, 3, 50), gaps(&config, 3, 50));
        assert_ne!(gaps(&config, 3, 50), gaps(&config, 4, 50));
        assert_ne!(gaps(&config, 3, 50), gaps(&config.clone().seed(43), 3, 50));

        let lens = |c: &SimConfig| -> Vec<u32> {
            (1..=20)
                .map(|i| Plan::new(c, i, 0, None).output_tokens)
                .collect()
        };
        assert_eq!(lens(&config), lens(&config));
        assert_ne!(lens(&config), lens(&config.clone().seed(1)));

        let words = |c: &SimConfig| -> Vec<&str> {
            let mut plan = Plan::new(c, 1, 0, None);
            (0..30).map(|_| plan.next_word()).collect()
        };
        assert_eq!(words(&config), words(&config));
        assert_ne!(words(&config), words(&config.clone().seed(1)));
    }

    #[test]
    fn gaps_do_not_depend_on_output_length() {
        let a = SimConfig::new().seed(9).itl(Itl::Uniform {
            min: Duration::from_millis(1),
            max: Duration::from_millis(9),
        });
        let b = a.clone().output_tokens(OutputLen::Fixed(3));
        assert_eq!(gaps(&a, 1, 20), gaps(&b, 1, 20));
    }

    #[test]
    fn uniform_gaps_stay_in_range() {
        let itl = Itl::Uniform {
            min: Duration::from_millis(9),
            max: Duration::from_millis(3),
        };
        let mut r = rng(1, 1, Purpose::Gaps);
        for _ in 0..1000 {
            let gap = sample_gap(itl, &mut r);
            assert!(gap >= Duration::from_millis(3) && gap <= Duration::from_millis(9));
        }
    }

    #[test]
    fn normal_gaps_have_the_asked_moments_and_are_never_negative() {
        let itl = Itl::Normal {
            mean: Duration::from_millis(10),
            std_dev: Duration::from_millis(2),
        };
        let mut r = rng(5, 1, Purpose::Gaps);
        let draws: Vec<f64> = (0..20_000)
            .map(|_| sample_gap(itl, &mut r).as_secs_f64() * 1e3)
            .collect();
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        let var = draws.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / draws.len() as f64;
        assert!((mean - 10.0).abs() < 0.1, "mean {mean}");
        assert!((var.sqrt() - 2.0).abs() < 0.1, "std dev {}", var.sqrt());

        let wide = Itl::Normal {
            mean: Duration::from_millis(1),
            std_dev: Duration::from_millis(10),
        };
        let zeros = (0..1000)
            .filter(|_| sample_gap(wide, &mut r) == Duration::ZERO)
            .count();
        assert!(zeros > 300, "negative draws clamp to zero ({zeros})");
    }

    #[test]
    fn plan_ttft_grows_with_prompt_and_finish_reason_follows_the_cap() {
        let config = SimConfig::new()
            .ttft_base(Duration::from_millis(20))
            .per_prompt_token(Duration::from_micros(50));
        let plan = Plan::new(&config, 1, 1000, Some(8));
        assert_eq!(plan.ttft, Duration::from_millis(70));
        assert_eq!(plan.output_tokens, 8);
        assert_eq!(plan.finish, Finish::Length);
        let plan = Plan::new(&config, 1, 0, None);
        assert_eq!(plan.output_tokens, DEFAULT_OUTPUT_TOKENS);
        assert_eq!(plan.finish, Finish::Stop);
        let mut plan = Plan::new(
            &config.clone().output_tokens(OutputLen::Fixed(5)),
            1,
            0,
            Some(9),
        );
        assert_eq!(plan.finish, Finish::Stop);
        let gaps: Duration = (1..5).map(|_| plan.next_gap()).sum();
        assert_eq!(plan.ttft + gaps, Duration::from_millis(20 + 4 * 8));
    }

    #[test]
    fn fault_every_counts_from_one() {
        let config = SimConfig::new().fault_every(3, Fault::Stall);
        let hits: Vec<u64> = (1..=10)
            .filter(|&i| fault_for(&config, i).is_some())
            .collect();
        assert_eq!(hits, [3, 6, 9]);
        let never = SimConfig::new().fault_every(0, Fault::Stall);
        assert!((1..=10).all(|i| fault_for(&never, i).is_none()));
        let always = SimConfig::new().fault(Fault::Status(500));
        assert!((1..=10).all(|i| fault_for(&always, i).is_some()));
    }

    #[test]
    fn fault_rate_is_seeded_per_request_and_near_its_rate() {
        let config = SimConfig::new().seed(3).fault_rate(0.2, Fault::Drop);
        let hits = |c: &SimConfig| -> Vec<u64> {
            (1..=5000).filter(|&i| fault_for(c, i).is_some()).collect()
        };
        let a = hits(&config);
        assert_eq!(a, hits(&config), "same seed, same requests");
        assert_ne!(a, hits(&config.clone().seed(4)));
        assert!((900..1100).contains(&a.len()), "{} of 5000", a.len());
        assert!(hits(&SimConfig::new().fault_rate(0.0, Fault::Drop)).is_empty());
        assert_eq!(
            hits(&SimConfig::new().fault_rate(7.0, Fault::Drop)).len(),
            5000
        );
        assert!(hits(&SimConfig::new().fault_rate(f64::NAN, Fault::Drop)).is_empty());
    }

    #[test]
    fn tokenize_agrees_with_count_and_ids_are_stable() {
        for text in [
            "",
            "Hello world! How are you?",
            "don't 2+2=4",
            "héllo 🦙 x",
            " a  b\n",
        ] {
            assert_eq!(tokenize(text).len() as u32, count_tokens(text), "{text:?}");
        }
        assert_eq!(tokenize("Hello, world!"), ["Hello", ",", "world", "!"]);
        assert_eq!(token_id(" the"), token_id("the"));
        assert_ne!(token_id("the"), token_id("model"));
        assert!(VOCABULARY
            .iter()
            .all(|w| (1000..50_000).contains(&token_id(w))));
        assert!((-4.0..=0.0).contains(&token_logprob("the")));
    }
}
