//! `#[llm_bench]`: registers a scenario function with the llmbench harness.
//! (stub: replaced by the real implementation)

use proc_macro::TokenStream;

/// Register a scenario function (stub).
#[proc_macro_attribute]
pub fn llm_bench(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}
