//! Turning a workload into the prompts a trial sends, before its clock
//! starts: a seeded pool of prompts fitted to their token lengths with the
//! engine's tokenizer (or a calibration, or an estimate, labelled as such),
//! their shared prefix, and their answer budgets.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::synth::{fit, Counter};
use super::{Turn, Workload};
use crate::engine::{EngineClient, GenRequest};
use crate::error::{Error, ErrorKind, Result};
use crate::measure::Exchange;

/// The most prompts prepared for one trial; requests beyond it reuse them
/// in order.
pub(crate) const POOL_LIMIT: usize = 256;

/// Seed streams, so prompt and answer lengths are independent draws.
const OUTPUT_STREAM: u64 = 0x5EED_0007;
/// The shared prefix's, so it is no prompt's own context.
const PREFIX_STREAM: u64 = 0x5EED_00F1;

/// Where the requested prompt lengths were measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LengthSource {
    /// The engine's tokenize endpoint, with the tokens its chat template or
    /// BOS adds measured by a probe request: exact.
    Tokenizer,
    /// A local `tokenizer.json` the workload names (the engine has no
    /// tokenize endpoint), with the tokens the chat template or BOS adds
    /// measured by a probe request: exact when the file is the engine's
    /// tokenizer, which the reported lengths show.
    TokenizerFile,
    /// No tokenizer; words per token and the template's tokens measured
    /// from the prompt tokens the engine reported for two probe requests:
    /// an estimate.
    Calibrated,
    /// Neither: 1.3 tokens per word, no template: an estimate.
    Estimate,
}

/// One prompt as a request sends it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PreparedPrompt {
    /// The prompt; in a conversation, its last user message.
    pub text: Arc<str>,
    /// The turns of a conversation before `text`.
    pub history: Arc<[Turn]>,
    pub max_tokens: u32,
    /// The prompt tokens asked for, where the prompt was fitted to a length.
    pub requested_prompt_tokens: Option<u32>,
}

/// The prompts of one trial.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Prepared {
    pub prompts: Arc<[PreparedPrompt]>,
    /// Request `id` sends prompt `id % len` (a prepared, seeded order);
    /// otherwise a seeded draw per request (a plain list of prompts).
    pub sequential: bool,
    /// How prompt lengths were measured, where they were fitted.
    pub lengths: Option<LengthSource>,
}

impl Prepared {
    /// The workload's own prompts, sent as they are (no fitting, no engine
    /// needed).
    pub(crate) fn plain(w: &Workload) -> Prepared {
        Prepared {
            prompts: w
                .prompts
                .iter()
                .map(|p| PreparedPrompt {
                    text: p.text.as_str().into(),
                    history: p.history.clone(),
                    max_tokens: p.max_tokens.unwrap_or(w.max_tokens),
                    requested_prompt_tokens: None,
                })
                .collect(),
            sequential: false,
            lengths: None,
        }
    }
}

/// How many prompts a trial with at most `requests` requests needs.
pub(crate) fn pool_size(requests: Option<u64>) -> usize {
    requests.map_or(POOL_LIMIT, |n| {
        usize::try_from(n)
            .unwrap_or(POOL_LIMIT)
            .clamp(1, POOL_LIMIT)
    })
}

/// The prompts `w` sends under `seed`: `pool` of them, fitted to their
/// lengths with `client`'s tokenizer where the workload sets lengths.
pub(crate) async fn prepare(
    w: &Workload,
    seed: u64,
    pool: usize,
    client: &dyn EngineClient,
) -> Result<Prepared> {
    if w.prompt_tokens.is_none()
        && w.output_tokens.is_none()
        && w.sample.is_none()
        && w.shared_prefix_tokens.is_none()
    {
        return Ok(Prepared::plain(w));
    }
    let (counter, source): (Option<Box<dyn Counter + '_>>, _) =
        if w.prompt_tokens.is_some() || w.shared_prefix_tokens.is_some() {
            let (c, source) = counter_for(w, client).await?;
            (Some(c), Some(source))
        } else {
            (None, None)
        };
    // Lengths are checked against the engine's count where they were set.
    let lengths = source.filter(|_| w.prompt_tokens.is_some());
    prepare_with(w, seed, pool, counter.as_deref())
        .await
        .map(|prompts| Prepared {
            prompts,
            sequential: true,
            lengths,
        })
}

/// [`prepare`]'s pure core, given the token counter.
pub(crate) async fn prepare_with(
    w: &Workload,
    seed: u64,
    pool: usize,
    counter: Option<&dyn Counter>,
) -> Result<Arc<[PreparedPrompt]>> {
    let mut order: Vec<usize> = (0..w.prompts.len()).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    // Fitting costs tokenize calls: at most `pool` prompts are fitted.
    // Prompts sent as written are all used (a dataset), or a sample.
    let pool = match (&w.prompt_tokens, w.sample) {
        (Some(_), Some(n)) => pool.min(n).min(order.len()),
        (Some(_), None) => pool,
        (None, Some(n)) => n.min(order.len()),
        (None, None) => order.len(),
    }
    .max(1);
    let estimate = WordCounter {
        per_word: 1.3,
        added: 0,
    };
    // The prefix and the blank line after it, the same for every prompt.
    let lead = match w.shared_prefix_tokens {
        Some(n) => format!(
            "{}\n\n",
            shared_prefix(counter.unwrap_or(&estimate), n, seed).await?
        ),
        None => String::new(),
    };
    let mut ratio = 1.3;
    let mut out = Vec::with_capacity(pool);
    for i in 0..pool {
        let base = &w.prompts[order[i % order.len()]];
        let index = i as u64;
        let mut history = base.history.clone();
        let (text, requested) = match (&w.prompt_tokens, counter) {
            (Some(lengths), Some(counter)) => {
                let target = lengths.draw(seed, index);
                if let Some(n) = w.shared_prefix_tokens {
                    room_for_request(counter, target, n, &lead, &base.text).await?;
                }
                let f = fit(counter, target, &lead, &base.text, seed, index, &mut ratio).await?;
                (f.text, Some(target))
            }
            // The prefix goes first: before the first turn of a
            // conversation, else before the prompt as written.
            _ => match history.first() {
                Some(first) if !lead.is_empty() => {
                    let mut turns = history.to_vec();
                    turns[0] = Turn::new(first.role, format!("{lead}{}", first.content));
                    history = turns.into();
                    (base.text.clone(), None)
                }
                _ => (format!("{lead}{}", base.text), None),
            },
        };
        let max_tokens = match &w.output_tokens {
            Some(lengths) => lengths.draw(seed ^ OUTPUT_STREAM, index),
            None => base.max_tokens.unwrap_or(w.max_tokens),
        };
        out.push(PreparedPrompt {
            text: text.into(),
            history,
            max_tokens,
            requested_prompt_tokens: requested,
        });
    }
    Ok(out.into())
}

/// Corpus text of `tokens` tokens by `counter` (the engine's additions not
/// counted), read in an order drawn from `seed`: the shared prefix.
async fn shared_prefix(counter: &dyn Counter, tokens: u32, seed: u64) -> Result<String> {
    let mut ratio = 1.3;
    let target = tokens.saturating_add(counter.overhead());
    let f = fit(counter, target, "", "", seed ^ PREFIX_STREAM, 0, &mut ratio).await?;
    Ok(f.text)
}

/// An error unless a prompt of `target` tokens holds the shared prefix of
/// `prefix` tokens (`lead`, with its blank line) and the whole `request`.
async fn room_for_request(
    counter: &dyn Counter,
    target: u32,
    prefix: u32,
    lead: &str,
    request: &str,
) -> Result<()> {
    let whole = counter.count(&format!("{lead}{request}")).await?;
    if whole <= target {
        return Ok(());
    }
    let shown: String = request.chars().take(60).collect();
    let more = if shown.len() < request.len() {
        "..."
    } else {
        ""
    };
    Err(Error::scenario(format!(
        "workload.prompt_tokens: a prompt of {target} tokens cannot hold the shared prefix of \
         {prefix} tokens and the {} tokens of its request (\"{shown}{more}\", with what the \
         engine adds); give longer prompt_tokens or a shorter shared_prefix_tokens",
        whole.saturating_sub(prefix)
    )))
}

/// Counts with the engine's tokenizer, plus the tokens the engine adds.
struct EngineCounter<'a> {
    client: &'a dyn EngineClient,
    added: u32,
}

impl Counter for EngineCounter<'_> {
    fn count<'a>(&'a self, text: &'a str) -> BoxFuture<'a, Result<u32>> {
        Box::pin(async move {
            let ids = self.client.tokenize(text).await?.ok_or_else(|| {
                Error::new(
                    ErrorKind::Engine,
                    "the engine's tokenize endpoint went away",
                )
            })?;
            Ok(u32::try_from(ids.len()).unwrap_or(u32::MAX) + self.added)
        })
    }

    fn overhead(&self) -> u32 {
        self.added
    }
}

/// Counts words: `per_word` tokens each, plus the tokens the engine adds.
struct WordCounter {
    per_word: f64,
    added: u32,
}

impl Counter for WordCounter {
    fn count<'a>(&'a self, text: &'a str) -> BoxFuture<'a, Result<u32>> {
        let words = text.split_whitespace().count() as f64;
        let n = (words * self.per_word).round() as u32 + self.added;
        Box::pin(async move { Ok(n) })
    }

    fn overhead(&self) -> u32 {
        self.added
    }
}

const PROBE_SHORT: &str = "Say hello.";
const PROBE_LONG: &str = "The market square fills before dawn on Saturdays, when farmers \
    unload crates of leeks, apples and potatoes, and the baker from the next village arrives \
    with trays of rye loaves still warm from the oven.";

/// The best counter `client` allows, and how good it is.
async fn counter_for<'a>(
    w: &Workload,
    client: &'a dyn EngineClient,
) -> Result<(Box<dyn Counter + 'a>, LengthSource)> {
    let tokenized = client
        .tokenize(PROBE_LONG)
        .await
        .map_err(|e| e.context("measuring prompt lengths with the engine's tokenizer"))?;
    if let Some(ids) = tokenized.filter(|ids| !ids.is_empty()) {
        let own = u32::try_from(ids.len()).unwrap_or(u32::MAX);
        // What the engine counts beyond the text: BOS, the chat template.
        let added = probe(w, client, PROBE_LONG)
            .await
            .map_or(0, |reported| reported.saturating_sub(own));
        let counter = EngineCounter { client, added };
        return Ok((Box::new(counter), LengthSource::Tokenizer));
    }
    if let Some(path) = &w.tokenizer_file {
        let mut counter = super::tokenizer_file::FileCounter::load(path)?;
        let own = counter.own_count(PROBE_LONG)?;
        counter.added = probe(w, client, PROBE_LONG)
            .await
            .map_or(0, |reported| reported.saturating_sub(own));
        return Ok((Box::new(counter), LengthSource::TokenizerFile));
    }
    let short = probe(w, client, PROBE_SHORT).await;
    let long = probe(w, client, PROBE_LONG).await;
    if let (Some(p1), Some(p2)) = (short, long) {
        let (w1, w2) = (words(PROBE_SHORT), words(PROBE_LONG));
        let per_word = (f64::from(p2) - f64::from(p1)) / (w2 - w1);
        if per_word > 0.1 {
            let added = (f64::from(p1) - per_word * w1).round().max(0.0) as u32;
            let counter = WordCounter { per_word, added };
            return Ok((Box::new(counter), LengthSource::Calibrated));
        }
    }
    let counter = WordCounter {
        per_word: 1.3,
        added: 0,
    };
    Ok((Box::new(counter), LengthSource::Estimate))
}

fn words(text: &str) -> f64 {
    text.split_whitespace().count() as f64
}

/// The prompt tokens the engine reports for `text` sent as `w` sends
/// prompts, with a one-token answer; `None` if it does not say.
async fn probe(w: &Workload, client: &dyn EngineClient, text: &str) -> Option<u32> {
    let req = GenRequest {
        prompt: text.into(),
        history: Arc::new([]),
        mode: w.mode,
        max_tokens: 1,
        stream: w.stream,
        exact_output: false,
    };
    let mut ex = Exchange::started(Instant::now());
    tokio::time::timeout(Duration::from_secs(120), client.send(&req, &mut ex))
        .await
        .ok()?;
    if ex.error.is_some() {
        return None;
    }
    ex.prompt_tokens
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::model::count_tokens;
    use crate::workload::Lengths;

    struct SimCount;

    impl Counter for SimCount {
        fn count<'a>(&'a self, text: &'a str) -> BoxFuture<'a, Result<u32>> {
            Box::pin(async move { Ok(count_tokens(text)) })
        }
    }

    fn prepared(w: &Workload, seed: u64) -> Vec<PreparedPrompt> {
        let f = prepare_with(w, seed, 12, Some(&SimCount));
        futures_util::FutureExt::now_or_never(f)
            .expect("the counter never waits")
            .unwrap()
            .to_vec()
    }

    #[test]
    fn the_same_scenario_and_seed_give_the_same_prompts_in_the_same_order() {
        let w = Workload::rag().prompt_tokens(100..=400);
        let a = prepared(&w, 7);
        assert_eq!(a, prepared(&w, 7));
        let b = prepared(&w, 8);
        assert_ne!(a, b);
        let texts: std::collections::HashSet<_> = a.iter().map(|p| p.text.clone()).collect();
        assert_eq!(texts.len(), a.len(), "no two prompts alike");
        for p in &a {
            let want = p.requested_prompt_tokens.unwrap();
            assert!((100..=400).contains(&want));
            assert_eq!(count_tokens(&p.text), want, "{}", p.text);
            assert!((10..=100).contains(&p.max_tokens), "{}", p.max_tokens);
        }
    }

    #[test]
    fn plain_prompts_are_sent_as_written() {
        let w = Workload::prompts(["a", "b"]).max_tokens(9);
        let p = Prepared::plain(&w);
        assert!(!p.sequential);
        assert_eq!(&*p.prompts[1].text, "b");
        assert_eq!(p.prompts[0].max_tokens, 9);
        let fixed = Workload::chat().output_tokens(Lengths::fixed(33));
        assert!(prepared(&fixed, 1).iter().all(|p| p.max_tokens == 33));
    }

    fn prepare_err(w: &Workload, seed: u64) -> String {
        let f = prepare_with(w, seed, 12, Some(&SimCount));
        futures_util::FutureExt::now_or_never(f)
            .expect("the counter never waits")
            .unwrap_err()
            .to_string()
    }

    /// The shared prefix of `tokens` under `seed`, after checking that
    /// every text of `prompts` begins with it and a blank line.
    fn prefix_of(
        prompts: &[PreparedPrompt],
        tokens: u32,
        seed: u64,
        text: impl Fn(&PreparedPrompt) -> &str,
    ) -> String {
        let f = shared_prefix(&SimCount, tokens, seed);
        let prefix = futures_util::FutureExt::now_or_never(f).unwrap().unwrap();
        for p in prompts {
            assert!(text(p).starts_with(&format!("{prefix}\n\n")), "{}", text(p));
        }
        prefix
    }

    #[test]
    fn a_shared_prefix_begins_every_fitted_prompt_and_counts_in_its_length() {
        let w = Workload::rag()
            .prompt_tokens(300..=600)
            .shared_prefix_tokens(200);
        let a = prepared(&w, 7);
        let prefix = prefix_of(&a, 200, 7, |p| &p.text);
        assert_eq!(count_tokens(&prefix), 200, "{prefix}");
        for p in &a {
            assert_eq!(count_tokens(&p.text), p.requested_prompt_tokens.unwrap());
        }
        let rests: std::collections::HashSet<_> = a
            .iter()
            .map(|p| p.text[prefix.len()..].to_string())
            .collect();
        assert_eq!(
            rests.len(),
            a.len(),
            "the rest differs from prompt to prompt"
        );
        assert_eq!(prefix, prefix_of(&prepared(&w, 7), 200, 7, |p| &p.text));
        assert_ne!(prefix, prefix_of(&prepared(&w, 8), 200, 8, |p| &p.text));
    }

    #[test]
    fn without_lengths_the_prefix_goes_before_the_prompts_as_written() {
        let w = Workload::prompts(["Say hi.", "Name a colour."]).shared_prefix_tokens(50);
        let a = prepared(&w, 3);
        let prefix = prefix_of(&a, 50, 3, |p| &p.text);
        assert_eq!(count_tokens(&prefix), 50);
        assert!(a.iter().all(|p| p.requested_prompt_tokens.is_none()));
        let mut asked: Vec<&str> = a.iter().map(|p| &p.text[prefix.len() + 2..]).collect();
        asked.sort_unstable();
        asked.dedup();
        assert_eq!(asked, ["Name a colour.", "Say hi."]);
        // A conversation gets it before its first turn.
        let mut conversation = Workload::prompts(["Second?"]).shared_prefix_tokens(50);
        conversation.prompts = vec![crate::workload::Prompt {
            text: "Second?".into(),
            max_tokens: None,
            history: vec![Turn::new(crate::workload::Role::System, "Be brief.")].into(),
        }]
        .into();
        let c = prepared(&conversation, 3);
        assert_eq!(&*c[0].text, "Second?");
        assert_eq!(c[0].history[0].content, format!("{prefix}\n\nBe brief."));
    }

    #[test]
    fn a_length_too_short_for_prefix_and_request_is_an_error_naming_both() {
        let w = Workload::prompts(["Why is the sky blue?"])
            .prompt_tokens(104)
            .shared_prefix_tokens(100);
        let e = prepare_err(&w, 1);
        assert!(
            e.contains("a prompt of 104 tokens cannot hold the shared prefix of 100 tokens"),
            "{e}"
        );
        assert!(e.contains("the 6 tokens of its request"), "{e}");
        let err = w.prompt_tokens(99).validate().unwrap_err().to_string();
        assert!(
            err.contains(
                "a prefix of 100 tokens leaves no room for the request in prompts of 99 tokens"
            ),
            "{err}"
        );
    }

    #[test]
    fn template_cases_go_in_a_seeded_order_each_once() {
        let cases: Vec<[(&str, String); 1]> = (0..8).map(|i| [("n", i.to_string())]).collect();
        let w = Workload::template("Count to {n}.", cases);
        let order = |seed| -> Vec<String> {
            prepared(&w, seed)[..8]
                .iter()
                .map(|p| p.text.to_string())
                .collect()
        };
        let a = order(5);
        assert_eq!(a, order(5), "the same seed, the same order");
        assert_ne!(a, order(6));
        let mut all = a.clone();
        all.sort();
        let want: Vec<String> = (0..8).map(|i| format!("Count to {i}.")).collect();
        assert_eq!(all, want, "each case once");
        // Fitted like any prompt.
        let fitted = prepared(&w.clone().prompt_tokens(64), 5);
        assert!(fitted.iter().all(|p| count_tokens(&p.text) == 64));
        assert!(fitted[0].text.ends_with(&*a[0]), "{}", fitted[0].text);
    }

    #[test]
    fn pools_cover_the_requests_up_to_a_limit() {
        assert_eq!(pool_size(Some(3)), 3);
        assert_eq!(pool_size(Some(0)), 1);
        assert_eq!(pool_size(Some(100_000)), POOL_LIMIT);
        assert_eq!(pool_size(None), POOL_LIMIT);
    }
}
