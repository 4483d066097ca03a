//! Parses the attribute's options, `#[llm_bench(crate = "..", name = "..")]`,
//! and checks each value, collecting every mistake instead of stopping at the
//! first.

use proc_macro2::TokenStream;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, Lit, LitStr, Meta, Path, Token};

use crate::Errors;

/// The options `#[llm_bench(..)]` accepts, as listed in every error about them.
const ALLOWED: &str = "`#[llm_bench]` accepts `crate = \"...\"` and `name = \"...\"`";

/// What the attribute's arguments asked for.
#[derive(Default)]
pub(crate) struct Options {
    /// `crate = "path"`: where llmbench is, for users who renamed it.
    pub(crate) krate: Option<Path>,
    /// `name = "..."`: the trial name, instead of the function's name.
    pub(crate) name: Option<LitStr>,
}

impl Options {
    /// Parse the tokens between the attribute's parentheses.
    pub(crate) fn parse(args: TokenStream) -> syn::Result<Self> {
        let metas = Punctuated::<Meta, Token![,]>::parse_terminated
            .parse2(args)
            .map_err(|err| syn::Error::new(err.span(), format!("{err}; {ALLOWED}")))?;

        let mut options = Options::default();
        let mut errors = Errors::default();
        for meta in metas {
            let key = match meta.path().get_ident() {
                Some(ident) if ident == "crate" => Key::Crate,
                Some(ident) if ident == "name" => Key::Name,
                _ => {
                    let path = meta.path();
                    let shown = quote::quote!(#path).to_string().replace(' ', "");
                    errors.push(syn::Error::new_spanned(
                        path,
                        format!("unknown option `{shown}`; {ALLOWED}"),
                    ));
                    continue;
                }
            };
            let lit = match string_value(&meta, key) {
                Ok(lit) => lit,
                Err(err) => {
                    errors.push(err);
                    continue;
                }
            };
            let already_set = match key {
                Key::Crate => options.krate.is_some(),
                Key::Name => options.name.is_some(),
            };
            if already_set {
                errors.push(syn::Error::new_spanned(
                    meta.path(),
                    format!("duplicate `{}` option; give it once", key.as_str()),
                ));
                continue;
            }
            match key {
                Key::Crate => match crate_path(&lit) {
                    Ok(path) => options.krate = Some(path),
                    Err(err) => errors.push(err),
                },
                Key::Name => match check_name(&lit.value()) {
                    Ok(()) => options.name = Some(lit),
                    Err(why) => errors.push(syn::Error::new_spanned(&lit, why)),
                },
            }
        }
        errors.finish(options)
    }
}

/// The option a `key = value` pair names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    Crate,
    Name,
}

impl Key {
    fn as_str(self) -> &'static str {
        match self {
            Key::Crate => "crate",
            Key::Name => "name",
        }
    }

    /// A value to show in "as in `key = ...`".
    fn example(self) -> &'static str {
        match self {
            Key::Crate => "crate = \"llmbench\"",
            Key::Name => "name = \"chat_long\"",
        }
    }
}

/// The string literal of `key = "..."`, or an error pointing at what is there
/// instead (no value, a list, a number, a bare path).
fn string_value(meta: &Meta, key: Key) -> syn::Result<LitStr> {
    let message = format!(
        "`{}` takes a string literal, as in `{}`",
        key.as_str(),
        key.example()
    );
    match meta {
        Meta::NameValue(nv) => match &nv.value {
            Expr::Lit(ExprLit {
                lit: Lit::Str(lit), ..
            }) => Ok(lit.clone()),
            other => Err(syn::Error::new_spanned(other, message)),
        },
        Meta::Path(path) => Err(syn::Error::new_spanned(path, message)),
        Meta::List(list) => Err(syn::Error::new_spanned(list, message)),
    }
}

/// Parse `crate = "..."`'s string as a path; its tokens keep the literal's
/// span, so later errors about the path point at the string.
fn crate_path(lit: &LitStr) -> syn::Result<Path> {
    lit.parse_with(Path::parse_mod_style).map_err(|_| {
        syn::Error::new_spanned(
            lit,
            format!(
                "`crate = {:?}` is not a path; give the name llmbench is imported as, \
                 as in `crate = \"llmbench\"` or `crate = \"::my_llmbench\"`",
                lit.value()
            ),
        )
    })
}

/// Why `name` cannot be a trial name, if it cannot. Trials are listed and
/// filtered as `scenario/engine`, so a name must be one non-empty word.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("`name` must not be empty".to_owned());
    }
    if name.contains('/') {
        return Err(format!(
            "`name` must not contain `/`: trial names are `scenario/engine`, \
             so {name:?} would read as an engine"
        ));
    }
    if name.chars().any(char::is_whitespace) {
        return Err(format!(
            "`name` must not contain whitespace: {name:?}; use `_` or `-` instead"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn messages(err: syn::Error) -> Vec<String> {
        err.into_iter().map(|e| e.to_string()).collect()
    }

    fn parse_err(args: TokenStream) -> syn::Error {
        match Options::parse(args.clone()) {
            Ok(_) => panic!("`{args}` was accepted"),
            Err(err) => err,
        }
    }

    #[test]
    fn no_arguments_means_defaults() {
        let options = Options::parse(TokenStream::new()).expect("empty args parse");
        assert!(options.krate.is_none());
        assert!(options.name.is_none());
    }

    #[test]
    fn reads_crate_and_name() {
        let options = Options::parse(quote!(crate = "::lb::inner", name = "chat_long",))
            .expect("valid args parse");
        let krate = options.krate.expect("crate set");
        assert_eq!(quote!(#krate).to_string(), ":: lb :: inner");
        assert_eq!(options.name.expect("name set").value(), "chat_long");
    }

    #[test]
    fn collects_every_mistake() {
        let err = parse_err(quote!(
            nmae = "x",
            name = 5,
            crate = llmbench,
            name = "a b",
            name = "ok",
            name = "again",
            crate("x"),
            a::b = "y"
        ));
        assert_eq!(
            messages(err),
            [
                format!("unknown option `nmae`; {ALLOWED}"),
                "`name` takes a string literal, as in `name = \"chat_long\"`".to_owned(),
                "`crate` takes a string literal, as in `crate = \"llmbench\"`".to_owned(),
                "`name` must not contain whitespace: \"a b\"; use `_` or `-` instead".to_owned(),
                "duplicate `name` option; give it once".to_owned(),
                "`crate` takes a string literal, as in `crate = \"llmbench\"`".to_owned(),
                format!("unknown option `a::b`; {ALLOWED}"),
            ]
        );
    }

    #[test]
    fn bare_option_needs_a_value() {
        let err = parse_err(quote!(name));
        assert_eq!(
            messages(err),
            ["`name` takes a string literal, as in `name = \"chat_long\"`"]
        );
    }

    #[test]
    fn malformed_arguments_list_the_options() {
        let err = parse_err(quote!(42));
        let message = err.to_string();
        assert!(message.ends_with(ALLOWED), "{message}");
    }

    #[test]
    fn crate_must_be_a_path() {
        for bad in ["", "not a path", "llmbench::<T>", "1x"] {
            let err = parse_err(quote!(crate = #bad));
            assert!(err.to_string().contains("is not a path"), "{bad}: {err}");
        }
        for good in ["llmbench", "::llmbench", "crate::lb", "self::x::y"] {
            Options::parse(quote!(crate = #good)).expect(good);
        }
    }

    #[test]
    fn names_are_one_word_without_slash() {
        assert!(check_name("chat").is_ok());
        assert!(check_name("rag-4k_v2.1").is_ok());
        assert!(check_name("ünïcode").is_ok());
        assert_eq!(check_name(""), Err("`name` must not be empty".to_owned()));
        assert!(check_name("chat/vllm")
            .expect_err("slash")
            .contains("`scenario/engine`"));
        for bad in ["a b", " chat", "chat\n", "a\tb"] {
            assert!(check_name(bad).expect_err(bad).contains("whitespace"));
        }
    }
}
