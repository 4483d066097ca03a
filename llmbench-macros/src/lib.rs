//! `#[llm_bench]`: registers a scenario function with the llmbench harness.
//!
//! Use it through `llmbench` (`llmbench::llm_bench`, or
//! `llmbench::prelude::*`); this crate only holds the attribute. The output is
//! the function, unchanged, plus a `static` entry in the linkme slice
//! `llmbench::__private::BENCHES` that the harness reads at start-up. Misuse is
//! a compile error at the offending token that says what is allowed; the
//! function is still emitted so editors keep completing inside it.

#![warn(missing_docs)]

mod check;
mod docs;
mod options;

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::{parse_quote, ItemFn, LitStr, Path, ReturnType};

use options::Options;

/// Register a function that describes a benchmark scenario.
///
/// The function takes no arguments and returns `Bench` or
/// `llmbench::Result<Bench>`; the harness calls it once per run and benchmarks
/// the scenario it returns against every configured engine. Its doc comment
/// becomes the scenario's description.
///
/// ```
/// use llmbench::prelude::*;
///
/// /// Chat: short prompts, short answers.
/// #[llm_bench]
/// fn chat() -> Bench {
///     Bench::new()
///         .workload(Workload::prompts(["Say hello."]).max_tokens(16))
///         .load(Load::users(4).for_secs(10))
/// }
///
/// /// The same scenario under a longer trial name.
/// #[llm_bench(name = "chat_four_users")]
/// fn chat_four() -> llmbench::Result<Bench> {
///     Ok(chat())
/// }
/// # fn main() {}
/// ```
///
/// Options:
///
/// - `name = "..."`: the trial name, instead of the function's name. Trials
///   are filtered as `scenario/engine`, so it may not be empty nor contain `/`
///   or whitespace.
/// - `crate = "..."`: where llmbench is, when it was renamed (as in
///   `extern crate llmbench as lb;` and `#[lb::llm_bench(crate = "lb")]`);
///   the default is `::llmbench`.
///
/// Only free functions can be registered: not methods, not `async`,
/// `unsafe`, `const` or `extern` functions, nor generic ones.
#[proc_macro_attribute]
pub fn llm_bench(
    args: proc_macro::TokenStream,
    item: proc_macro::TokenStream,
) -> proc_macro::TokenStream {
    expand(args.into(), item.into()).into()
}

/// The attribute's output: `item` followed by its registration, or by
/// `compile_error!`s saying what is wrong.
fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let options = errors.take(Options::parse(args));
    let func = errors.take(check::bench_fn(item.clone()));
    let mut out = item;
    if let (Some(options), Some(func)) = (options, func) {
        out.extend(registration(&options, &func));
    }
    if let Err(err) = errors.finish(()) {
        out.extend(err.into_compile_error());
    }
    out
}

/// The `static` that lists `func` in `BENCHES`, in an anonymous `const` so it
/// adds no name to the user's module.
fn registration(options: &Options, func: &ItemFn) -> TokenStream {
    let krate: Path = options
        .krate
        .clone()
        .unwrap_or_else(|| parse_quote!(::llmbench));
    let private = quote!(#krate::__private);
    let ident = &func.sig.ident;
    let name = options
        .name
        .clone()
        .unwrap_or_else(|| LitStr::new(&ident.unraw().to_string(), ident.span()));
    let description = LitStr::new(&docs::description(&func.attrs), Span::call_site());
    // `file!()` and `line!()` spanned on the name report where the function is.
    let file = quote_spanned!(ident.span()=> ::core::file!());
    let line = quote_spanned!(ident.span()=> ::core::line!());
    // Naming the return type in `<T as IntoBench>` makes a type that is not
    // `Bench` or `Result<Bench>` fail with `IntoBench`'s message, pointing at
    // the type as the user wrote it. (`check` has made sure there is one.)
    let output = match &func.sig.output {
        ReturnType::Type(_, ty) => quote!(#ty),
        ReturnType::Default => quote!(()),
    };
    // A `#[cfg]` that reaches us must drop the registration with the function.
    let cfgs = func.attrs.iter().filter(|attr| attr.path().is_ident("cfg"));
    quote! {
        #(#cfgs)*
        const _: () = {
            #[#private::linkme::distributed_slice(#private::BENCHES)]
            #[linkme(crate = #private::linkme)]
            static __LLMBENCH_ENTRY: #private::BenchEntry = #private::BenchEntry {
                name: #name,
                description: #description,
                module_path: ::core::module_path!(),
                file: #file,
                line: #line,
                make: || <#output as #private::IntoBench>::into_bench(#ident()),
            };
        };
    }
}

/// Errors collected so far, combined into one that reports each.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    /// Add one more error.
    fn push(&mut self, err: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(err),
            None => self.0 = Some(err),
        }
    }

    /// The value of `result`, or `None` after adding its error.
    fn take<T>(&mut self, result: syn::Result<T>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(err) => {
                self.push(err);
                None
            }
        }
    }

    /// `value` if nothing went wrong, every error otherwise.
    fn finish<T>(self, value: T) -> syn::Result<T> {
        match self.0 {
            Some(err) => Err(err),
            None => Ok(value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_the_function_under_its_name() {
        let item = quote! {
            /// Chat.
            fn r#chat() -> Bench { Bench::new() }
        };
        let out = expand(TokenStream::new(), item.clone()).to_string();
        assert!(out.starts_with(&item.to_string()), "{out}");
        assert!(out.contains("name : \"chat\""), "{out}");
        assert!(out.contains("description : \"Chat.\""), "{out}");
        assert!(
            out.contains(
                "< Bench as :: llmbench :: __private :: IntoBench > :: into_bench (r#chat ())"
            ),
            "{out}"
        );
        assert!(!out.contains("compile_error"), "{out}");
    }

    #[test]
    fn options_rename_the_trial_and_the_crate() {
        let out = expand(
            quote!(crate = "lb", name = "chat_long"),
            quote!(
                fn chat() -> Bench {
                    Bench::new()
                }
            ),
        )
        .to_string();
        assert!(out.contains("name : \"chat_long\""), "{out}");
        assert!(
            out.contains(
                "# [lb :: __private :: linkme :: distributed_slice (lb :: __private :: BENCHES)]"
            ),
            "{out}"
        );
        assert!(
            out.contains("# [linkme (crate = lb :: __private :: linkme)]"),
            "{out}"
        );
    }

    #[test]
    fn errors_keep_the_item_and_add_no_registration() {
        let item = quote!(
            async fn chat() -> Bench {
                Bench::new()
            }
        );
        let out = expand(quote!(nmae = "x"), item.clone()).to_string();
        assert!(out.starts_with(&item.to_string()), "{out}");
        assert_eq!(out.matches("compile_error").count(), 2, "{out}");
        assert!(!out.contains("BENCHES"), "{out}");
    }
}
