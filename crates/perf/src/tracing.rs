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
//! through a map once per span creation and kept in the span's extensions.
//! An enter looks the site up there (a read lock) and pushes the guard on a
//! thread-local list; the exit pops it without touching the registry.

use crate::{Guard, Site, SiteKind};
use std::boxed::Box;
use std::cell::RefCell;
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
            Box::leak(Box::new(Site::with_kind(
                SiteKind::Span,
                meta.name(),
                meta.module_path().unwrap_or(""),
                meta.file().unwrap_or(""),
                meta.line().unwrap_or(0),
            )))
        })
    }
}

/// The span's site, kept in its extensions.
struct SpanSite(&'static Site);

std::thread_local! {
    /// Guards of the spans this thread has entered, innermost last.
    static ENTERED: RefCell<Vec<(u64, Guard)>> = const { RefCell::new(Vec::new()) };
}

impl<S> Layer<S> for PerfkitLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let site = self.site_for(attrs.metadata());
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanSite(site));
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(site) = ctx
            .span(id)
            .and_then(|span| span.extensions().get::<SpanSite>().map(|s| s.0))
        else {
            return;
        };
        // Read the clock last, after the lookups.
        let _ = ENTERED.try_with(|e| {
            let mut e = e.borrow_mut();
            e.reserve(1);
            e.push((id.into_u64(), Guard::enter(site, 0)));
        });
    }

    fn on_exit(&self, id: &Id, _ctx: Context<'_, S>) {
        // Exits come in the reverse order of enters on a thread, so the
        // span is almost always on top; no registry lookup needed.
        let _ = ENTERED.try_with(|e| {
            let mut e = e.borrow_mut();
            let key = id.into_u64();
            if let Some(pos) = e.iter().rposition(|(k, _)| *k == key) {
                let (_, guard) = e.remove(pos);
                drop(e);
                drop(guard);
            }
        });
    }
}
