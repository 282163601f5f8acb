//! The three ways to measure, on free functions, methods, generic and async
//! functions, with the real clock. Each site name is used by one test only.
#![cfg(not(feature = "off"))]

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

fn calls(name: &str) -> u64 {
    perfkit::snapshot()
        .sites
        .iter()
        .filter(|s| s.name == name)
        .map(|s| s.calls)
        .sum()
}

#[perfkit::measured]
fn default_named(x: u32) -> u32 {
    x + 1
}

#[perfkit::measured("explicit.name")]
fn explicit_named(x: u32) -> u32 {
    if x == 0 {
        return 100; // an early return still records
    }
    x * 2
}

#[perfkit::measured("generic.sum")]
fn generic_sum<T: Copy + Into<u64>>(xs: &[T]) -> u64 {
    xs.iter().map(|&x| x.into()).sum()
}

#[perfkit::measured("fallible")]
fn fallible(s: &str) -> Result<u32, std::num::ParseIntError> {
    let v: u32 = s.parse()?;
    Ok(v)
}

struct Counter {
    n: u32,
}

impl Counter {
    #[perfkit::measured("counter.bump")]
    fn bump(&mut self) -> u32 {
        self.n += 1;
        self.n
    }

    #[perfkit::measured]
    fn peek(&self) -> u32 {
        self.n
    }

    #[perfkit::measured("counter.bump_async")]
    async fn bump_async(&mut self, by: u32) -> u32 {
        Yield(1).await;
        self.n += by;
        self.n
    }
}

#[perfkit::measured("async.double")]
async fn double(x: u32) -> u32 {
    Yield(2).await;
    x * 2
}

#[perfkit::measured("async.generic")]
async fn async_len<T: AsRef<[u8]>>(t: T) -> usize {
    Yield(1).await;
    t.as_ref().len()
}

/// Returns Pending `n` times (waking itself), then Ready.
struct Yield(u32);
impl Future for Yield {
    type Output = ();
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 == 0 {
            Poll::Ready(())
        } else {
            self.0 -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// A minimal executor: poll until ready, counting polls.
fn block_on<F: Future>(f: F) -> (F::Output, u32) {
    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    let waker = Waker::from(Arc::new(Noop));
    let mut cx = Context::from_waker(&waker);
    let mut f = pin!(f);
    let mut polls = 0;
    loop {
        polls += 1;
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return (v, polls);
        }
    }
}

#[test]
fn attribute_on_free_functions() {
    assert_eq!(default_named(1), 2);
    assert_eq!(default_named(2), 3);
    assert_eq!(calls("macros::default_named"), 2);
    assert_eq!(explicit_named(0), 100);
    assert_eq!(explicit_named(4), 8);
    assert_eq!(calls("explicit.name"), 2);
    assert_eq!(fallible("12"), Ok(12));
    assert!(fallible("x").is_err());
    assert_eq!(calls("fallible"), 2);
}

#[test]
fn attribute_on_generic_functions_shares_one_site() {
    assert_eq!(generic_sum(&[1u8, 2, 3]), 6);
    assert_eq!(generic_sum(&[10u32, 20]), 30);
    let snap = perfkit::snapshot();
    let sites: Vec<_> = snap
        .sites
        .iter()
        .filter(|s| s.name == "generic.sum")
        .collect();
    assert_eq!(sites.len(), 1);
    assert_eq!(sites[0].calls, 2);
}

#[test]
fn attribute_on_methods() {
    let mut c = Counter { n: 0 };
    c.bump();
    c.bump();
    assert_eq!(c.peek(), 2);
    assert_eq!(calls("counter.bump"), 2);
    assert_eq!(calls("macros::peek"), 1);
}

#[test]
fn attribute_on_async_functions() {
    let (v, polls) = block_on(double(21));
    assert_eq!((v, polls), (42, 3));
    // One call per completed future, not per poll.
    assert_eq!(calls("async.double"), 1);

    let mut c = Counter { n: 1 };
    let (v, _) = block_on(c.bump_async(4));
    assert_eq!(v, 5);
    assert_eq!(calls("counter.bump_async"), 1);

    let (n, _) = block_on(async_len(vec![1u8, 2, 3]));
    let (m, _) = block_on(async_len("ab"));
    assert_eq!((n, m), (3, 2));
    assert_eq!(calls("async.generic"), 2);

    // A future dropped before completion records nothing.
    drop(double(1));
    assert_eq!(calls("async.double"), 1);
}

#[test]
fn measure_expression_returns_its_value() {
    let buf = vec![7u8; 300];
    let sum: u32 = perfkit::measure!("expr.sum", buf.iter().map(|&b| b as u32).sum());
    assert_eq!(sum, 2100);
    let n = perfkit::measure!("expr.bytes", bytes = buf.len(), buf.len() / 2);
    let m = perfkit::measure!("expr.bytes64", bytes = 5u64, n + 1);
    assert_eq!((n, m), (150, 151));
    let snap = perfkit::snapshot();
    assert_eq!(snap.site("expr.sum").unwrap().calls, 1);
    assert_eq!(snap.site("expr.bytes").unwrap().bytes, Some(300));
    assert_eq!(snap.site("expr.bytes64").unwrap().bytes, Some(5));
    assert_eq!(snap.site("expr.sum").unwrap().line, line!() - 9);
}

#[test]
fn measure_propagates_question_mark() {
    fn parse(s: &str) -> Result<u32, std::num::ParseIntError> {
        let v = perfkit::measure!("expr.try", s.parse::<u32>()?);
        Ok(v + 1)
    }
    assert_eq!(parse("41"), Ok(42));
    assert!(parse("no").is_err());
    assert_eq!(calls("expr.try"), 2);
}

#[test]
fn span_guard_records_on_drop_and_nests() {
    {
        let _outer = perfkit::span!("guard.outer");
        for _ in 0..4 {
            let _inner = perfkit::span!("guard.inner", bytes = 10usize);
            std::hint::black_box(0);
        }
        assert_eq!(calls("guard.outer"), 0, "not recorded before drop");
    }
    let snap = perfkit::snapshot();
    assert_eq!(snap.site("guard.outer").unwrap().calls, 1);
    assert_eq!(snap.site("guard.inner").unwrap().bytes, Some(40));
    let inner = snap.stack("guard.outer;guard.inner").unwrap();
    let outer = snap.stack("guard.outer").unwrap();
    assert_eq!(inner.calls, 4);
    assert!(outer.total_ns >= inner.total_ns);
    // Self = total - children, in ticks; each converts to ns on its own,
    // so the rounding may differ by 1 ns.
    assert!(outer.self_ns.abs_diff(outer.total_ns - inner.total_ns) <= 1);
}

#[test]
fn byte_totals_stop_at_the_largest_count_instead_of_wrapping() {
    // Each flush adds a path's bytes since the last one to its site: there
    // the total saturates (it wrapped: to 2^64 - 2, and to 0, which a
    // record reads as "counts no bytes").
    for _ in 0..2 {
        perfkit::measure!("bytes.max", bytes = u64::MAX, ());
        perfkit::flush();
    }
    for n in [u64::MAX, 1] {
        perfkit::measure!("bytes.to_zero", bytes = n, ());
        perfkit::flush();
    }
    // The fallback without a path (too deep for one) merges into the site
    // the same way.
    fn deep(n: usize) {
        let _g = perfkit::span!("bytes.deep");
        if n == 0 {
            for b in [u64::MAX, 2] {
                perfkit::measure!("bytes.unpathed", bytes = b, ());
            }
        } else {
            deep(n - 1);
        }
    }
    deep(perfkit::stack::MAX_DEPTH);
    let snap = perfkit::snapshot();
    for name in ["bytes.max", "bytes.to_zero", "bytes.unpathed"] {
        let s = snap.site(name).unwrap();
        assert_eq!((s.calls, s.bytes), (2, Some(u64::MAX)), "{name}");
    }
}
