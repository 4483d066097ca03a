//! The built-in corpus of natural English text that synthesised prompts are
//! cut from, and the seeded order in which a prompt reads it.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Paragraphs on unrelated subjects, so that prompts have the vocabulary,
/// punctuation and numbers of real text (tokenizers and prompt caches treat
/// one repeated word very differently from prose).
pub(crate) const PARAGRAPHS: &[&str] = &[
    "The lighthouse on the northern cape was built in 1873 from granite quarried two miles inland. \
     For more than a century its keepers climbed one hundred and twelve steps every evening to light \
     the lamp, and every morning they wound the clockwork that turned the lens. The last keeper left \
     in 1989, when the light was automated; the cottage is now a small museum that opens on summer weekends.",
    "Sourdough bread depends on a culture of wild yeast and lactic acid bacteria. A baker feeds the \
     starter with flour and water, waits for it to double, and then mixes a portion into the dough. \
     Long, cool fermentation develops flavour: the acids that make the crumb tangy also strengthen the \
     gluten, so the loaf holds its shape in a hot oven and forms a dark, blistered crust.",
    "When the committee met on Tuesday, the treasurer reported that the repair fund stood at 14,250 \
     pounds, roughly half of what the roof would cost. Several members proposed a spring fair; others \
     preferred applying for a heritage grant, which would take longer but might cover the whole bill. \
     After an hour of discussion they agreed to do both and to meet again in March.",
    "Honeybees communicate the location of food through a waggle dance performed on the vertical comb. \
     The angle of the dance relative to gravity encodes the direction of the flowers relative to the \
     sun, while the duration of the waggle run signals distance. Foragers that follow the dancer learn \
     where to fly, and a colony can shift its effort to a rich new patch within an hour.",
    "A database index is a separate structure that lets the engine find rows without scanning the \
     whole table. Most relational systems use a B-tree, which keeps keys sorted and balanced so that a \
     lookup touches only a few pages. Indexes speed up reads but slow down writes, because every insert \
     or update must also change each index that covers the affected columns.",
    "The expedition left base camp at four in the morning, while the snow was still frozen hard. By \
     nine they had crossed the glacier and reached the foot of the ridge, where the guide checked every \
     harness and rope. Clouds gathered in the west shortly after noon, and they turned back two hundred \
     metres below the summit; nobody argued, since the descent was the dangerous part.",
    "In the late eighteenth century, canals carried most of the heavy goods in England. A single horse \
     walking along the towpath could pull a barge holding thirty tons of coal, far more than any cart \
     on the rutted roads of the time. Within fifty years, however, the railways offered speed that \
     water could not match, and many canals fell into disrepair.",
    "To repot a houseplant, water it the day before so the roots slide out easily. Choose a pot only \
     slightly larger than the old one, with a drainage hole, and add a layer of fresh compost at the \
     bottom. Loosen any roots that circle the root ball, set the plant at the same depth as before, fill \
     the gaps, and keep it out of direct sunlight for a week while it settles.",
    "The orchestra tuned to the oboe's A, and the hall fell quiet. The first movement opened softly \
     with the cellos, a slow theme that the violins took up and carried higher, until the brass broke \
     in with a bright fanfare. Critics later disagreed about the tempo of the finale, but most agreed \
     that the young conductor had brought unusual clarity to the inner voices.",
    "Compound interest means that interest is earned on earlier interest as well as on the original \
     sum. Invest 1,000 dollars at five percent a year and after one year you hold 1,050; after ten years \
     about 1,629; after thirty years more than 4,300. The rule of 72 gives a quick estimate: divide 72 \
     by the rate to find roughly how many years it takes to double.",
    "Octopuses have three hearts and blue blood, and most of their neurons sit in their arms rather \
     than in their central brain. Each arm can taste what it touches and respond on its own, which \
     may explain how an octopus can open a jar, squeeze through a gap the size of its beak, and change \
     the colour and texture of its skin in a fraction of a second.",
    "Our support team answers tickets in the order they arrive, except for outages, which go straight \
     to the on-call engineer. If you report a problem, please include the time it happened, the \
     version you are running, and any error message you saw. Screenshots help, but a copy of the log \
     file helps more, because it shows what the system was doing just before the failure.",
    "The market square fills before dawn on Saturdays. Farmers unload crates of leeks, apples and \
     potatoes; a cheesemonger sets out wheels of cheddar under a striped awning; the baker from the next \
     village arrives with trays of rye loaves still warm from the oven. By eight o'clock the queue at \
     the coffee stall reaches the fountain, and the first customers are already heading home.",
    "Photosynthesis converts light energy into chemical energy stored in sugar. In the chloroplasts, \
     chlorophyll absorbs mostly red and blue light, which drives the splitting of water and releases \
     oxygen as a by-product. The energy captured is then used to fix carbon dioxide from the air into \
     three-carbon molecules, the building blocks from which the plant makes glucose and starch.",
    "She kept the letters in a biscuit tin under the bed: forty years of correspondence with a cousin \
     in Melbourne whom she had met only twice. The early ones were written on thin blue airmail paper \
     and described weddings, floods and new babies; the later ones were shorter, typed, and full of \
     questions about health. After she died, her grandson read them all in a single weekend.",
    "A good unit test checks one behaviour, runs in milliseconds, and gives the same result every \
     time. It should not depend on the network, the clock or the order in which other tests run. When \
     a test fails, its name and message ought to tell the reader what broke without opening the code; \
     a failure that needs a debugger to understand is a failure of the test as well.",
    "The river floods most springs when the snow melts in the hills. In 1947 the water rose nearly \
     four metres in two days, and boats were rowed along the high street past the post office. Since \
     then the town has built embankments and a relief channel, and the last serious flood, in 2007, \
     reached only the lowest gardens along the bank.",
    "Chess players divide the game into three phases. In the opening, both sides develop their \
     pieces, fight for the centre and castle their king to safety. The middlegame is about plans, \
     tactics and pawn structure, while the endgame rewards precise calculation: a single tempo can \
     decide whether a passed pawn promotes or the position ends in a draw.",
    "Before the meeting, please read the attached proposal and note any questions in the margin. We \
     will spend the first twenty minutes on the budget, then review the timeline for the second \
     phase, which has slipped by about three weeks. If you cannot attend, send your comments to Priya \
     by Thursday so that they can be included in the summary.",
    "Wolves were reintroduced to Yellowstone in 1995 after an absence of about seventy years. Elk, \
     which had grazed the valleys freely, began to avoid open river banks where they could be ambushed, \
     and willow and aspen recovered along the streams. Ecologists still debate how large this effect \
     was, but the park became a famous example of a trophic cascade.",
    "The recipe serves four. Fry a chopped onion in olive oil until soft, add two cloves of garlic \
     and a teaspoon of cumin, then stir in a tin of tomatoes and 200 grams of red lentils. Pour in \
     750 millilitres of stock, simmer for twenty-five minutes, season with salt and lemon juice, and \
     serve with yoghurt and warm flatbread.",
    "Satellites in low Earth orbit circle the planet roughly every ninety minutes at speeds near \
     7.8 kilometres per second. At that height a thin trace of atmosphere still drags on them, so \
     without an occasional boost from their thrusters they slowly lose altitude and eventually burn up \
     on re-entry. Geostationary satellites, far higher, keep pace with the Earth's rotation instead.",
];

/// The corpus's words for prompt `index` under `seed`: the paragraphs in
/// an order of their own (so prompts share no long prefix), repeated as
/// often as a long prompt needs, each paragraph ending in a line break.
pub(crate) fn words(seed: u64, index: u64) -> impl Iterator<Item = Word> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xC0_4B05);
    rng.set_stream(index);
    let mut order: Vec<usize> = (0..PARAGRAPHS.len()).collect();
    order.shuffle(&mut rng);
    order.into_iter().cycle().flat_map(|p| {
        let text = PARAGRAPHS[p];
        let count = text.split_whitespace().count();
        text.split_whitespace().enumerate().map(move |(i, w)| Word {
            text: w,
            ends_paragraph: i + 1 == count,
        })
    })
}

/// One word of the corpus, with its punctuation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Word {
    pub text: &'static str,
    /// The last word of its paragraph (a blank line follows it).
    pub ends_paragraph: bool,
}

/// `words` joined as prose: spaces between words, a blank line between
/// paragraphs.
pub(crate) fn join(words: &[Word]) -> String {
    let mut out = String::with_capacity(words.len() * 7);
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            out.push_str(if words[i - 1].ends_paragraph {
                "\n\n"
            } else {
                " "
            });
        }
        out.push_str(w.text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_corpus_is_varied_prose_of_a_few_kilobytes() {
        let bytes: usize = PARAGRAPHS.iter().map(|p| p.len()).sum();
        assert!(bytes > 6_000, "{bytes} bytes");
        let all: Vec<&str> = PARAGRAPHS
            .iter()
            .flat_map(|p| p.split_whitespace())
            .collect();
        let mut distinct = all.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(distinct.len() * 2 > all.len(), "mostly distinct words");
    }

    #[test]
    fn each_prompt_reads_the_corpus_in_its_own_seeded_order() {
        let take = |seed, index| -> Vec<Word> { words(seed, index).take(300).collect() };
        assert_eq!(take(1, 0), take(1, 0));
        assert_ne!(take(1, 0)[..20], take(1, 1)[..20]);
        assert_ne!(take(1, 0)[..20], take(2, 0)[..20]);
        let long: Vec<Word> = words(1, 0).take(20_000).collect();
        assert_eq!(long.len(), 20_000, "the corpus repeats for long prompts");
        let text = join(&long[..200]);
        assert!(text.contains("\n\n") && !text.contains("  "), "{text}");
    }
}
