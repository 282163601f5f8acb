//! `tracing` integration: [`PerfkitLayer`] records `tracing` spans into
//! perfkit sites, so code instrumented with `tracing` gets perfkit statistics
//! and stack paths without edits.
//!
//! ```
//! use tracing_subscriber::layer::SubscriberExt;
//! let subscriber = tracing_subscriber::registry().with(perfkit::tracing::PerfkitLayer::new());
//! tracing::subscriber::with_default(subscriber, || {
//!     let _e = tracing::info_span!("decode").entered();
//! });
//! ```
//!
//! What is measured is **busy time**: from each enter to the matching exit,
//! one call per enter/exit pair, nested in perfkit's per-thread stack like a
//! [`span!`](crate::span) guard. An async task's span entered at each poll
//! thus counts each poll, and time spent waiting is not counted. One site is
//! made (and leaked) per `tracing` callsite, named after the span, found
//! through a map once per span creation and cached in the span's extensions.

use crate::{Guard, Site};
use std::boxed::Box;
use std::collections::HashMap;
use std::sync::Mutex;
use std::vec::Vec;
use tracing::span::{Attributes, Id};
use tracing::{Metadata, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// A `tracing_subscriber::Layer` that records span busy time into perfkit sites.
#[derive(Debug, Default)]
pub struct PerfkitLayer {
    sites: Mutex<HashMap<usize, &'static Site>>,
}

impl PerfkitLayer {
    /// A new layer.
    pub fn new() -> Self {
        Self::default()
    }

    fn site_for(&self, meta: &'static Metadata<'static>) -> &'static Site {
        let key = meta as *const Metadata<'static> as usize;
        let mut sites = self.sites.lock().unwrap_or_else(|e| e.into_inner());
        sites.entry(key).or_insert_with(|| {
            Box::leak(Box::new(Site::new(
                meta.name(),
                meta.module_path().unwrap_or(""),
                meta.file().unwrap_or(""),
                meta.line().unwrap_or(0),
            )))
        })
    }
}

/// Per-span state in the span's extensions: its site and open entries.
struct Timing {
    site: &'static Site,
    open: Vec<Guard>,
}

// SAFETY: a `Guard` is !Send because it belongs to the thread that entered
// the span; `tracing` exits a span on the thread that entered it, and the
// guard is only dropped there (on_exit) or, if a span is closed while still
// entered, where it closes, which then records into the site and at worst
// leaves that thread's stack path approximate (never unsound: the stack is
// thread-local and a foreign pop only touches the current thread's stack).
unsafe impl Send for Timing {}
// SAFETY: as above; `Timing` is only reached through `&mut` extensions.
unsafe impl Sync for Timing {}

impl<S> Layer<S> for PerfkitLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let site = self.site_for(attrs.metadata());
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Timing {
                site,
                open: Vec::new(),
            });
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(t) = span.extensions_mut().get_mut::<Timing>() {
                let g = Guard::enter(t.site, 0);
                t.open.push(g);
            }
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let g = span
                .extensions_mut()
                .get_mut::<Timing>()
                .and_then(|t| t.open.pop());
            drop(g);
        }
    }
}
