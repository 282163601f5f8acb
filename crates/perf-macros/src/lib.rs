//! `perfkit-macros`: the `#[perfkit::measured]` attribute, re-exported by
//! `perfkit`. Use it through `perfkit`, never directly: the expansion names
//! `::perfkit::__private`.
//!
//! The attribute wraps the function body; it does not change the signature,
//! so it works on free functions, methods (including `self` receivers),
//! generic functions (one site shared by every instantiation: the `static`
//! lives in the body and does not depend on the generics) and `async fn`
//! (the body becomes an `async move` block wrapped in `Instrumented`, timed
//! from first poll to completion).
//!
//! With the `off` feature the function is emitted unchanged.
//!
//! With the `outline` feature every measured body (of the attribute and of
//! `measure!`, through `outline!`) is moved into a function of its own,
//! never inlined, whose name carries the site's name
//! (`__perfkit_site_<hex of the name's UTF-8>`). A profiler that attributes
//! cost per function (callgrind) then reports each site's inclusive cost
//! under a symbol that names it; `perfkit run --measure instructions` reads
//! them back. The price is one call per measured body. A `measure!` body
//! that may leave early (`?`, `return`, `break`, `continue`, `.await`)
//! stays in place, since in a function of its own those would mean
//! something else.
//!
//! Why `measured` and not `measure`: attribute macros and `macro_rules!`
//! macros share one namespace, so `perfkit::measure` cannot be both the
//! `measure!` expression macro and an attribute on stable Rust.

use proc_macro::TokenStream;
#[cfg(not(feature = "off"))]
use quote::quote;
#[cfg(not(feature = "off"))]
use syn::{parse_macro_input, ItemFn, LitStr};

/// Measure every call of the function into one perfkit site.
///
/// `#[perfkit::measured]` names the site after the function's path
/// (`module::path::fn_name`); `#[perfkit::measured("name")]` sets the name.
#[cfg(not(feature = "off"))]
#[proc_macro_attribute]
pub fn measured(attr: TokenStream, item: TokenStream) -> TokenStream {
    let name: Option<LitStr> = if attr.is_empty() {
        None
    } else {
        match syn::parse::<LitStr>(attr) {
            Ok(l) => Some(l),
            Err(e) => {
                return syn::Error::new(
                    e.span(),
                    "expected #[perfkit::measured] or #[perfkit::measured(\"site name\")]",
                )
                .to_compile_error()
                .into()
            }
        }
    };
    let mut f = parse_macro_input!(item as ItemFn);
    let ident = &f.sig.ident;
    let name = match name {
        Some(l) => quote!(#l),
        None => {
            let fname = ident.to_string();
            quote!(::core::concat!(::core::module_path!(), "::", #fname))
        }
    };
    let site = quote! {
        static __PERFKIT_SITE: ::perfkit::__private::Site = ::perfkit::__private::Site::new(
            #name, ::core::module_path!(), ::core::file!(), ::core::line!());
    };
    let body = &f.block;
    #[cfg(feature = "outline")]
    let body = &match (f.sig.asyncness.is_none(), literal_name(&name)) {
        // An async body is timed across polls: no single call to move out.
        (true, Some(n)) => {
            let call = outlined(&n, &quote!(move || #body));
            quote!({ #call })
        }
        _ => quote!(#body),
    };
    let new_body = if f.sig.asyncness.is_some() {
        quote! {{
            #site
            ::perfkit::__private::Instrumented::new(&__PERFKIT_SITE, async move #body).await
        }}
    } else {
        quote! {{
            #site
            let __perfkit_guard = ::perfkit::__private::enter(&__PERFKIT_SITE);
            #body
        }}
    };
    f.block = match syn::parse2(new_body) {
        Ok(b) => Box::new(b),
        Err(e) => return e.to_compile_error().into(),
    };
    quote!(#f).into()
}

/// The site name a `#[measured]` gives, when known at expansion time.
#[cfg(feature = "outline")]
fn literal_name(name: &proc_macro2::TokenStream) -> Option<String> {
    match syn::parse2::<LitStr>(name.clone()) {
        Ok(l) => Some(l.value()),
        // `module_path!()` is only known to the compiler: such sites are
        // named by the function's own symbol, which callgrind shows anyway.
        Err(_) => None,
    }
}

/// A call of `closure` through a never-inlined function named after `site`.
#[cfg(feature = "outline")]
fn outlined(site: &str, closure: &proc_macro2::TokenStream) -> proc_macro2::TokenStream {
    let hex: String = site.bytes().map(|b| format!("{b:02x}")).collect();
    let ident = syn::Ident::new(
        &format!("__perfkit_site_{hex}"),
        proc_macro2::Span::call_site(),
    );
    // Each function carries its own site's name (an assembler comment: no
    // instruction), so two sites whose bodies compile to the same code stay
    // two functions: otherwise the compiler may merge them under one
    // symbol, and callgrind would count both under one site's name.
    let mark = format!("/* perfkit site {hex} */");
    quote! {{
        #[inline(never)]
        fn #ident<R>(f: impl ::core::ops::FnOnce() -> R) -> R {
            #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
            // SAFETY: a comment; no instruction is emitted.
            unsafe {
                ::core::arch::asm!(#mark, options(nomem, nostack, preserves_flags))
            };
            #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
            ::core::hint::black_box(#site);
            f()
        }
        #ident(#closure)
    }}
}

/// `outline!(name, expr)`: evaluates `expr` inside a never-inlined function
/// whose symbol names the site `name` (see the crate documentation). A name
/// that is not a string literal leaves `expr` in place. Used by
/// `perfkit::measure!` under perfkit's `outline` feature.
#[cfg(feature = "outline")]
#[proc_macro]
pub fn outline(input: TokenStream) -> TokenStream {
    struct Args {
        name: syn::Expr,
        body: syn::Expr,
    }
    impl syn::parse::Parse for Args {
        fn parse(input: syn::parse::ParseStream<'_>) -> syn::Result<Self> {
            let name = input.parse()?;
            input.parse::<syn::Token![,]>()?;
            let body = input.parse()?;
            let _ = input.parse::<Option<syn::Token![,]>>()?;
            Ok(Args { name, body })
        }
    }
    let Args { name, body } = parse_macro_input!(input as Args);
    // A name passed on by another macro arrives wrapped in an invisible group.
    let mut name = &name;
    while let syn::Expr::Group(g) = name {
        name = &g.expr;
    }
    match name {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(l),
            ..
        }) if !leaves_early(quote!(#body)) => outlined(&l.value(), &quote!(|| #body)).into(),
        _ => quote!(#body).into(),
    }
}

/// Whether an expression may leave the enclosing function or loop (`?`,
/// `return`, `break`, `continue`, `.await`): moved into a function of its
/// own it would mean something else, so such a body stays in place (the
/// site is then not attributed by symbol).
#[cfg(feature = "outline")]
fn leaves_early(tokens: proc_macro2::TokenStream) -> bool {
    use proc_macro2::TokenTree;
    tokens.into_iter().any(|t| match t {
        TokenTree::Punct(p) => p.as_char() == '?',
        TokenTree::Ident(i) => ["return", "break", "continue", "await"]
            .iter()
            .any(|k| i == k),
        TokenTree::Group(g) => leaves_early(g.stream()),
        TokenTree::Literal(_) => false,
    })
}

/// Measure every call of the function (the `off` feature: unchanged).
#[cfg(feature = "off")]
#[proc_macro_attribute]
pub fn measured(_attr: TokenStream, item: TokenStream) -> TokenStream {
    item
}
