//! The four use cases users recognise (chat, creative writing, RAG,
//! document work): their lengths, their built-in prompts and the metric
//! each is judged by.

use super::Lengths;
use crate::measure::Summary;

/// A use case with its own prompt and answer lengths and primary metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// Short prompt, short answer (5-50 and 10-100 tokens); judged by TTFT.
    Chat,
    /// Short prompt, long answer (5-20 and 500-2,000 tokens); judged by
    /// output tokens per second.
    Creative,
    /// Long prompt, short answer (1,000-4,000 and 10-100 tokens); judged by
    /// prompt processing time.
    Rag,
    /// Long prompt, long answer (2,000-8,000 and 500-2,000 tokens); judged
    /// by end-to-end latency.
    Document,
}

impl Preset {
    /// The preset's name in outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            Preset::Chat => "chat",
            Preset::Creative => "creative",
            Preset::Rag => "rag",
            Preset::Document => "document",
        }
    }

    /// Prompt lengths, in the engine's tokens.
    pub fn prompt_tokens(self) -> Lengths {
        match self {
            Preset::Chat => Lengths::uniform(5, 50),
            Preset::Creative => Lengths::uniform(5, 20),
            Preset::Rag => Lengths::uniform(1_000, 4_000),
            Preset::Document => Lengths::uniform(2_000, 8_000),
        }
    }

    /// Answer lengths, in the engine's tokens.
    pub fn output_tokens(self) -> Lengths {
        match self {
            Preset::Chat | Preset::Rag => Lengths::uniform(10, 100),
            Preset::Creative | Preset::Document => Lengths::uniform(500, 2_000),
        }
    }

    /// The built-in prompts: the user's request, which synthesised context
    /// from the built-in corpus precedes when the prompt must be longer.
    pub fn prompts(self) -> &'static [&'static str] {
        match self {
            Preset::Chat => CHAT,
            Preset::Creative => CREATIVE,
            Preset::Rag => RAG,
            Preset::Document => DOCUMENT,
        }
    }

    /// The field of a trial's entry in `summary.json` this use case is
    /// judged by: `ttft`, `output_tps`, `server.prompt_eval_duration` (RAG,
    /// where the engine reports its prompt processing time; `ttft`, which
    /// prompt processing dominates, where it does not) or `e2e_latency`.
    pub fn primary_metric(self, summary: &Summary) -> &'static str {
        match self {
            Preset::Chat => "ttft",
            Preset::Creative => "output_tps",
            Preset::Rag if summary.server.prompt_eval_duration.is_some() => {
                "server.prompt_eval_duration"
            }
            Preset::Rag => "ttft",
            Preset::Document => "e2e_latency",
        }
    }
}

const CHAT: &[&str] = &[
    "What is the capital of Australia?",
    "Give me one tip for sleeping better.",
    "How many legs does a spider have?",
    "Translate 'good morning' into Spanish.",
    "What does HTTP stand for?",
    "Name three primary colours.",
    "Is a tomato a fruit or a vegetable?",
    "How long should I boil an egg for a soft yolk?",
    "What is the difference between weather and climate?",
    "Suggest a name for a grey kitten.",
    "Why is the sky blue?",
    "How do I convert Celsius to Fahrenheit?",
];

const CREATIVE: &[&str] = &[
    "Write a short story about a lighthouse keeper who finds a message in a bottle.",
    "Describe a city on Mars a hundred years after the first landing.",
    "Tell a fable about a fox, a crow and a very old tree.",
    "Write the opening chapter of a mystery set on a night train.",
    "Write a poem about the first snow of winter.",
    "Invent a legend explaining why the moon changes shape.",
    "Write a letter from a dragon to the knight who keeps bothering it.",
    "Describe a market in a city where it never stops raining.",
    "Write a bedtime story about a robot learning to paint.",
    "Tell the story of a village that wakes up one morning speaking a new language.",
    "Write a scene in which two old friends meet at an airport after twenty years.",
];

const RAG: &[&str] = &[
    "Using only the passages above, when was the lighthouse automated?",
    "According to the text above, what does the rule of 72 estimate?",
    "Based on the documents above, why did the expedition turn back?",
    "From the context above, list the ingredients of the lentil recipe.",
    "Using the passages above, explain how honeybees signal distance.",
    "What does the text above say about the cost of database indexes?",
    "According to the context, what happened to the river in 1947?",
    "Based only on the passages above, what replaced the canals?",
    "From the documents above, what should a support ticket include?",
    "Using the context above, how fast do satellites in low orbit travel?",
    "According to the passages above, what changed after wolves returned?",
];

const DOCUMENT: &[&str] = &[
    "Summarise the document above in five paragraphs, one per main subject.",
    "Rewrite the text above as a briefing for a busy executive, with headings.",
    "Translate the document above into plain French, keeping its structure.",
    "Write a detailed review of the text above: what is clear, what is missing, what to cut.",
    "Turn the document above into a set of study notes with questions at the end.",
    "Extract every number in the text above and explain what each refers to.",
    "Write a newsletter article that retells the document above for teenagers.",
    "List the topics covered above and write a paragraph of commentary on each.",
    "Rewrite the document above in the style of a nineteenth-century travel diary.",
    "Produce a question-and-answer version of the text above, at least fifteen questions.",
    "Write a critical essay comparing the subjects discussed in the document above.",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_has_ten_distinct_prompts_and_valid_lengths() {
        for p in [
            Preset::Chat,
            Preset::Creative,
            Preset::Rag,
            Preset::Document,
        ] {
            let mut prompts = p.prompts().to_vec();
            assert!(prompts.len() >= 10, "{}", p.as_str());
            prompts.sort_unstable();
            prompts.dedup();
            assert!(prompts.len() >= 10, "{}: duplicates", p.as_str());
            p.prompt_tokens().validate("p").unwrap();
            p.output_tokens().validate("o").unwrap();
        }
    }
}
