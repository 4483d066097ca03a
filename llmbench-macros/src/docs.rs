//! Turns a function's doc comment into the scenario's description.

use syn::{Attribute, Expr, ExprLit, Lit, Meta};

/// The doc comment in `attrs` as plain text: each line of every `///` (or
/// `#[doc = "..."]`) without the one space that follows `///`, lines joined
/// with `\n`, the whole trimmed. Empty when there is none. Docs that are not
/// a literal (`#[doc = include_str!(..)]`) cannot be read here and are skipped.
pub(crate) fn description(attrs: &[Attribute]) -> String {
    let mut lines = Vec::new();
    for attr in attrs {
        let Meta::NameValue(nv) = &attr.meta else {
            continue;
        };
        if !nv.path.is_ident("doc") {
            continue;
        }
        if let Expr::Lit(ExprLit {
            lit: Lit::Str(text),
            ..
        }) = &nv.value
        {
            // A `/** .. */` block arrives as one attribute holding many lines;
            // an empty `///` as an empty string, which is still a line (so not
            // `str::lines`, which yields nothing for it).
            let text = text.value();
            lines.extend(text.split('\n').map(|line| {
                let line = line.strip_suffix('\r').unwrap_or(line);
                line.strip_prefix(' ').unwrap_or(line).to_owned()
            }));
        }
    }
    lines.join("\n").trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn describe(item: syn::ItemFn) -> String {
        description(&item.attrs)
    }

    #[test]
    fn none_is_empty() {
        assert_eq!(
            describe(parse_quote!(
                fn f() {}
            )),
            ""
        );
        assert_eq!(
            describe(parse_quote!(
                #[inline]
                fn f() {}
            )),
            ""
        );
    }

    #[test]
    fn joins_lines_keeping_inner_indentation() {
        let item = parse_quote! {
            /// Chat: short prompts.
            ///
            ///     indented code
            ///Tight.
            #[inline]
            /// After another attribute.
            fn f() {}
        };
        assert_eq!(
            describe(item),
            "Chat: short prompts.\n\n    indented code\nTight.\nAfter another attribute."
        );
    }

    #[test]
    fn trims_the_whole() {
        let item = parse_quote! {
            ///
            ///   Padded.
            ///
            fn f() {}
        };
        assert_eq!(describe(item), "Padded.");
    }

    #[test]
    fn reads_doc_attributes_and_blocks_but_not_other_forms() {
        let item = parse_quote! {
            #[doc = " From an attribute."]
            #[doc(hidden)]
            #[doc = include_str!("x.md")]
            /** A block. */
            fn f() {}
        };
        assert_eq!(describe(item), "From an attribute.\nA block.");
    }
}
