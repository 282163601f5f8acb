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

/// Measure every call of the function (the `off` feature: unchanged).
#[cfg(feature = "off")]
#[proc_macro_attribute]
pub fn measured(_attr: TokenStream, item: TokenStream) -> TokenStream {
    item
}
