//! Prompt synthesis to a token count: the user's request, preceded by as
//! much corpus text as the length needs (and by a fixed lead, a shared
//! prefix, when there is one), fitted by searching on the number of words
//! against a token counter (the engine's tokenizer, or an estimate), then
//! padded a token at a time.

use futures_util::future::BoxFuture;

use super::corpus::{self, Word};
use crate::error::Result;

/// Counts the tokens of a text: the engine's tokenize endpoint, or an
/// estimate where it has none.
pub(crate) trait Counter: Send + Sync {
    /// The token count of `text`.
    fn count<'a>(&'a self, text: &'a str) -> BoxFuture<'a, Result<u32>>;

    /// The tokens `count` adds to any text: those the engine adds to a
    /// prompt (BOS, its chat template), which are no part of the text.
    fn overhead(&self) -> u32 {
        0
    }
}

/// Words that pad a prompt by about one token each once whole corpus words
/// overshoot.
const FILLERS: [&str; 6] = ["and", "so", "then", "also", "here", "now"];

/// The text of a prompt made of `units` words and `pad` fillers: up to the
/// request's own word count, the first words of the request; beyond it,
/// that many corpus words, a blank line, and the whole request. Fillers go
/// at the end of the corpus text (or of a cut request).
pub(crate) fn compose(request: &str, corpus: &[Word], units: usize, pad: usize) -> String {
    let asked: Vec<&str> = request.split_whitespace().collect();
    let fillers = (0..pad).map(|i| FILLERS[i % FILLERS.len()]);
    if units <= asked.len() {
        let mut words: Vec<&str> = asked[..units].to_vec();
        words.extend(fillers);
        return words.join(" ");
    }
    let context = &corpus[..(units - asked.len()).min(corpus.len())];
    let mut text = corpus::join(context);
    for f in fillers {
        text.push(' ');
        text.push_str(f);
    }
    if !request.is_empty() {
        text.push_str("\n\n");
        text.push_str(request);
    }
    text
}

/// A prompt fitted to a length, and the count the counter gave it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Fitted {
    pub text: String,
    pub tokens: u32,
}

/// The prompt closest to `target` tokens (exactly `target` whenever the
/// counter allows it) made from `lead` as it is, then `request` and corpus
/// text read in the order of prompt `index` under `seed`; the whole text
/// is counted. `ratio`: tokens per word, a first guess that each fit
/// refines for the next.
pub(crate) async fn fit(
    counter: &dyn Counter,
    target: u32,
    lead: &str,
    request: &str,
    seed: u64,
    index: u64,
    ratio: &mut f64,
) -> Result<Fitted> {
    let asked = request.split_whitespace().count();
    // The lead's tokens, which the words need not make.
    let base = if lead.is_empty() {
        0
    } else {
        counter.count(lead).await?
    };
    let words_target = target.saturating_sub(base).max(1);
    // Enough corpus for the longest guess; the search never reads past it.
    let needed = (f64::from(words_target) / ratio.max(0.2) * 2.0) as usize + asked + 64;
    let corpus: Vec<Word> = corpus::words(seed, index).take(needed).collect();
    let most = corpus.len() + asked;
    let count = |units: usize, pad: usize| {
        let text = format!("{lead}{}", compose(request, &corpus, units, pad));
        async move {
            let tokens = counter.count(&text).await?;
            Ok::<_, crate::Error>(Fitted { text, tokens })
        }
    };
    // Largest word count known to fit, smallest known to overshoot.
    let mut under: Option<(usize, Fitted)> = None;
    let mut over: Option<usize> = None;
    let mut units = ((f64::from(words_target) / *ratio).round() as usize).clamp(1, most);
    for _ in 0..24 {
        let f = count(units, 0).await?;
        if f.tokens == target {
            learn(ratio, units, f.tokens.saturating_sub(base));
            return Ok(f);
        }
        if f.tokens < target {
            if under.as_ref().is_none_or(|(u, _)| units > *u) {
                learn(ratio, units, f.tokens.saturating_sub(base));
                under = Some((units, f));
            }
        } else {
            over = Some(over.map_or(units, |o| o.min(units)));
        }
        let lo = under.as_ref().map_or(0, |(u, _)| *u);
        let hi = over.unwrap_or(most + 1);
        if hi <= lo + 1 {
            break;
        }
        // The next guess from the words per token seen so far, kept
        // strictly inside the bracket (halving it when the guess is not).
        let current = under.as_ref().map_or(units, |(u, f)| {
            let missing = f64::from(target - f.tokens);
            u + (missing / ratio.max(0.2)).round().max(1.0) as usize
        });
        units = if current > lo && current < hi {
            current
        } else {
            lo + (hi - lo) / 2
        };
        if units == 0 {
            break;
        }
    }
    let Some((units, best)) = under else {
        // Even one word is too long (a target below what the template
        // alone takes): the shortest prompt there is.
        return count(1, 0).await;
    };
    // Whole words overshoot: pad a token at a time.
    let mut best = best;
    for pad in 1..=(target - best.tokens) as usize + 2 {
        let f = count(units, pad).await?;
        if f.tokens == target {
            return Ok(f);
        }
        if f.tokens > target {
            break;
        }
        best = f;
    }
    Ok(best)
}

/// Refine the tokens-per-word guess from a measured fit.
fn learn(ratio: &mut f64, units: usize, tokens: u32) {
    if units > 20 {
        *ratio = f64::from(tokens) / units as f64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::model::count_tokens;

    /// The simulator's tokenizer, plus a fixed template's tokens.
    pub(crate) struct SimCount(pub u32);

    impl Counter for SimCount {
        fn count<'a>(&'a self, text: &'a str) -> BoxFuture<'a, Result<u32>> {
            Box::pin(async move { Ok(count_tokens(text) + self.0) })
        }

        fn overhead(&self) -> u32 {
            self.0
        }
    }

    fn block<T>(f: impl std::future::Future<Output = T>) -> T {
        futures_util::FutureExt::now_or_never(f).expect("the counter never waits")
    }

    #[test]
    fn prompts_hit_the_requested_token_count_exactly() {
        let mut ratio = 1.3;
        for (i, target) in [1u32, 3, 9, 17, 50, 300, 1024, 4096, 8000]
            .into_iter()
            .enumerate()
        {
            let f = block(fit(
                &SimCount(0),
                target,
                "",
                "Why is the sky blue?",
                1,
                i as u64,
                &mut ratio,
            ))
            .unwrap();
            assert_eq!(f.tokens, target, "{target}: {}", f.text);
            assert_eq!(count_tokens(&f.text), target);
            if target > 50 {
                assert!(f.text.ends_with("\n\nWhy is the sky blue?"), "{}", f.text);
            }
        }
    }

    #[test]
    fn a_target_below_the_template_gets_the_shortest_prompt() {
        let mut ratio = 1.3;
        let f = block(fit(&SimCount(11), 5, "", "Hello there", 1, 0, &mut ratio)).unwrap();
        assert_eq!(f.text, "Hello");
        assert_eq!(f.tokens, 12);
    }

    #[test]
    fn a_lead_is_kept_as_it_is_and_counted_in_the_length() {
        let lead = "The same words begin every prompt, whatever follows them.\n\n";
        let mut ratio = 1.3;
        for (i, target) in [30u32, 64, 500, 2000].into_iter().enumerate() {
            let f = block(fit(
                &SimCount(11),
                target,
                lead,
                "Why?",
                1,
                i as u64,
                &mut ratio,
            ))
            .unwrap();
            assert!(f.text.starts_with(lead), "{}", f.text);
            assert!(f.text.ends_with("Why?"), "{}", f.text);
            assert_eq!((f.tokens, count_tokens(&f.text) + 11), (target, target));
        }
    }

    #[test]
    fn text_without_a_request_is_corpus_text_alone() {
        let mut ratio = 1.3;
        let f = block(fit(&SimCount(0), 300, "", "", 5, 0, &mut ratio)).unwrap();
        assert_eq!(count_tokens(&f.text), 300);
        assert!(!f.text.ends_with('\n'), "{:?}", f.text);
    }

    #[test]
    fn compose_puts_context_before_the_request() {
        let corpus: Vec<Word> = corpus::words(3, 0).take(10).collect();
        assert_eq!(compose("a b c", &corpus, 2, 0), "a b");
        assert_eq!(compose("a b c", &corpus, 2, 1), "a b and");
        let long = compose("a b c", &corpus, 5, 0);
        assert!(long.ends_with("\n\na b c"), "{long}");
        assert_eq!(long.split_whitespace().count(), 5);
    }
}
