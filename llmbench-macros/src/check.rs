//! Checks that the annotated item is a function the harness can call, `fn
//! name() -> Bench` or `fn name() -> Result<Bench>`, and says what to write
//! instead when it is not.

use proc_macro2::TokenStream;
use quote::{quote, ToTokens};
use syn::{FnArg, Item, ItemFn, ReturnType, Signature, Type};

use crate::Errors;

/// The shapes a `#[llm_bench]` function may have, for error messages.
const FORMS: &str = "`fn name() -> Bench` or `fn name() -> llmbench::Result<Bench>`";

/// The function under the attribute, if it is one the harness can register;
/// otherwise every reason it is not.
pub(crate) fn bench_fn(item: TokenStream) -> syn::Result<ItemFn> {
    match syn::parse2::<Item>(item)? {
        Item::Fn(func) => {
            check_signature(&func.sig)?;
            Ok(func)
        }
        other => Err(not_a_function(&other)),
    }
}

/// Every reason `sig` is not `fn name() -> Bench`, combined.
fn check_signature(sig: &Signature) -> syn::Result<()> {
    let mut errors = Errors::default();
    let mut reject = |tokens: &dyn ToTokens, message: String| {
        errors.push(syn::Error::new_spanned(tokens, message));
    };
    if let Some(constness) = &sig.constness {
        reject(
            constness,
            format!("a `#[llm_bench]` function cannot be `const`; write {FORMS}"),
        );
    }
    if let Some(asyncness) = &sig.asyncness {
        reject(
            asyncness,
            format!(
                "a `#[llm_bench]` function cannot be `async`: it only describes the scenario \
                 and the harness owns the runtime; write {FORMS}"
            ),
        );
    }
    if let Some(unsafety) = &sig.unsafety {
        reject(
            unsafety,
            format!(
                "a `#[llm_bench]` function cannot be `unsafe`: the harness calls it from \
                 safe code; write {FORMS}"
            ),
        );
    }
    if let Some(abi) = &sig.abi {
        reject(
            abi,
            format!("a `#[llm_bench]` function cannot be `extern`; write {FORMS}"),
        );
    }
    if !sig.generics.params.is_empty() {
        reject(
            &sig.generics,
            format!(
                "a `#[llm_bench]` function cannot be generic: the harness calls it without \
                 type arguments; write {FORMS}"
            ),
        );
    }
    if let Some(where_clause) = &sig.generics.where_clause {
        reject(
            where_clause,
            format!("a `#[llm_bench]` function cannot have a `where` clause; write {FORMS}"),
        );
    }
    if let Some(FnArg::Receiver(receiver)) = sig.inputs.first() {
        reject(
            receiver,
            format!(
                "a `#[llm_bench]` function cannot be a method: the harness calls it with no \
                 arguments, so it cannot take `self`; write a free function, {FORMS}"
            ),
        );
    } else if !sig.inputs.is_empty() {
        reject(
            &sig.inputs,
            format!(
                "a `#[llm_bench]` function takes no arguments: the harness calls it with none; \
                 write {FORMS}"
            ),
        );
    } else if let Some(variadic) = &sig.variadic {
        reject(
            variadic,
            format!("a `#[llm_bench]` function takes no arguments; write {FORMS}"),
        );
    }
    match &sig.output {
        ReturnType::Default => reject(
            &sig.ident,
            format!(
                "`{}` returns nothing; a `#[llm_bench]` function must return `Bench` or \
                 `llmbench::Result<Bench>`, as in `fn {}() -> Bench`",
                sig.ident, sig.ident
            ),
        ),
        ReturnType::Type(_, ty) if !names_bench_or_result(ty) => reject(
            ty,
            "a `#[llm_bench]` function must return `Bench` or `llmbench::Result<Bench>`".to_owned(),
        ),
        ReturnType::Type(..) => {}
    }
    errors.finish(())
}

/// Whether `ty` reads like `Bench` or `Result<..>`: a path whose last segment
/// is one of those names. The compiler checks the rest (`Result<String>` is
/// caught by `IntoBench`'s on-unimplemented message).
fn names_bench_or_result(ty: &Type) -> bool {
    match ty {
        // A type passed through a `macro_rules!` `$t:ty` arrives grouped.
        Type::Group(group) => names_bench_or_result(&group.elem),
        Type::Paren(paren) => names_bench_or_result(&paren.elem),
        Type::Path(path) if path.qself.is_none() => path
            .path
            .segments
            .last()
            .is_some_and(|last| last.ident == "Bench" || last.ident == "Result"),
        _ => false,
    }
}

/// The error for an item that is not a function, pointing at its keyword and
/// name rather than its whole body.
fn not_a_function(item: &Item) -> syn::Error {
    fn at(tokens: &dyn ToTokens, what: &str) -> syn::Error {
        syn::Error::new_spanned(
            tokens,
            format!("`#[llm_bench]` goes on a function, {FORMS}, not on {what}"),
        )
    }
    match item {
        Item::Struct(s) => {
            let (kw, ident) = (&s.struct_token, &s.ident);
            at(&quote!(#kw #ident), "a struct")
        }
        Item::Enum(e) => {
            let (kw, ident) = (&e.enum_token, &e.ident);
            at(&quote!(#kw #ident), "an enum")
        }
        Item::Union(u) => {
            let (kw, ident) = (&u.union_token, &u.ident);
            at(&quote!(#kw #ident), "a union")
        }
        Item::Trait(t) => {
            let (kw, ident) = (&t.trait_token, &t.ident);
            at(&quote!(#kw #ident), "a trait")
        }
        Item::Impl(i) => {
            let (kw, ty) = (&i.impl_token, &i.self_ty);
            at(&quote!(#kw #ty), "an `impl` block")
        }
        Item::Mod(m) => {
            let (kw, ident) = (&m.mod_token, &m.ident);
            at(&quote!(#kw #ident), "a module")
        }
        Item::Const(c) => {
            let (kw, ident) = (&c.const_token, &c.ident);
            at(&quote!(#kw #ident), "a constant")
        }
        Item::Static(s) => {
            let (kw, ident) = (&s.static_token, &s.ident);
            at(&quote!(#kw #ident), "a static")
        }
        Item::Type(t) => {
            let (kw, ident) = (&t.type_token, &t.ident);
            at(&quote!(#kw #ident), "a type alias")
        }
        Item::Use(u) => at(u, "a `use` declaration"),
        Item::ExternCrate(e) => at(e, "an `extern crate`"),
        Item::ForeignMod(f) => at(&f.abi, "an `extern` block"),
        Item::Macro(m) => at(&m.mac.path, "a macro invocation"),
        other => at(other, "this item"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(item: TokenStream) -> Vec<String> {
        match bench_fn(item) {
            Ok(func) => panic!("`{}` was accepted", func.sig.ident),
            Err(err) => err.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn accepts_the_two_forms_however_spelled() {
        for item in [
            quote!(
                fn a() -> Bench {
                    Bench::new()
                }
            ),
            quote!(
                pub fn a() -> llmbench::Bench {
                    todo()
                }
            ),
            quote!(
                fn a() -> Result<Bench> {
                    todo()
                }
            ),
            quote!(
                pub(crate) fn a() -> ::llmbench::Result<Bench> {
                    todo()
                }
            ),
            quote!(
                fn a() -> Result<Bench, llmbench::Error> {
                    todo()
                }
            ),
            quote!(
                #[doc = "x"]
                #[inline]
                fn a() -> (Bench) {
                    todo()
                }
            ),
        ] {
            bench_fn(item.clone()).unwrap_or_else(|err| panic!("{item}: {err}"));
        }
    }

    #[test]
    fn rejects_wrong_return_types() {
        for ty in [
            quote!(String),
            quote!(()),
            quote!(impl Into<Bench>),
            quote!(&'static Bench),
            quote!(Option<Bench>),
            quote!(<X as Y>::Bench),
            quote!(!),
        ] {
            assert_eq!(
                messages(quote!(fn a() -> #ty { todo() })),
                ["a `#[llm_bench]` function must return `Bench` or `llmbench::Result<Bench>`"],
                "{ty}"
            );
        }
    }

    #[test]
    fn reports_every_problem_at_once() {
        let found = messages(quote!(
            const async unsafe extern "C" fn a<T>(x: T)
            where
                T: Copy,
            {
            }
        ));
        let starts: Vec<_> = found
            .iter()
            .map(|m| m.split([';', ':']).next().unwrap_or_default())
            .collect();
        assert_eq!(
            starts,
            [
                "a `#[llm_bench]` function cannot be `const`",
                "a `#[llm_bench]` function cannot be `async`",
                "a `#[llm_bench]` function cannot be `unsafe`",
                "a `#[llm_bench]` function cannot be `extern`",
                "a `#[llm_bench]` function cannot be generic",
                "a `#[llm_bench]` function cannot have a `where` clause",
                "a `#[llm_bench]` function takes no arguments",
                "`a` returns nothing",
            ]
        );
    }

    #[test]
    fn methods_are_named_as_such() {
        let found = messages(quote!(
            fn a(&self) -> Bench {
                todo()
            }
        ));
        assert_eq!(found.len(), 1);
        assert!(found[0].contains("cannot be a method"), "{found:?}");
    }

    #[test]
    fn other_items_are_named() {
        for (item, what) in [
            (
                quote!(
                    struct S;
                ),
                "a struct",
            ),
            (
                quote!(
                    enum E {}
                ),
                "an enum",
            ),
            (quote!(impl S {}), "an `impl` block"),
            (
                quote!(
                    mod m {}
                ),
                "a module",
            ),
            (
                quote!(
                    static S: u8 = 0;
                ),
                "a static",
            ),
            (
                quote!(
                    use std::fmt;
                ),
                "a `use` declaration",
            ),
        ] {
            let found = messages(item);
            assert_eq!(found.len(), 1);
            assert!(found[0].ends_with(&format!("not on {what}")), "{found:?}");
        }
    }
}
