//! The device report: SUMMARY, COUNTERS, SITES, DONE control messages
//! (format in `crates/pico/src/proto.rs`), sent on UART0 and copied to RTT up
//! channel 0 ("perfkit") for a debug probe.

use core::cell::RefCell;
use cortex_m::interrupt::Mutex;
use rp2040_hal::uart;
use rtt_target::{rtt_init, UpChannel};

use crate::link::Link;

const SUMMARY: u8 = 0xC3;
const COUNTERS: u8 = 0xC4;
const SITES: u8 = 0xC5;
const DONE: u8 = 0xC6;
const MAX_PAYLOAD: usize = perfkit_stack::wire::MAX_PAYLOAD;
const MAX_COUNTERS: usize = 16;

static RTT: Mutex<RefCell<Option<UpChannel>>> = Mutex::new(RefCell::new(None));

/// Sets up the RTT control block with the report channel. The buffer holds
/// a whole report, so a probe can read it after the transfer; without a
/// probe, writes that do not fit are skipped (never block).
pub fn rtt_init() {
    let ch = rtt_init! {
        up: {
            0: {
                size: 4096,
                mode: rtt_target::ChannelMode::NoBlockSkip,
                name: "perfkit"
            }
        }
    };
    cortex_m::interrupt::free(|cs| *RTT.borrow(cs).borrow_mut() = Some(ch.up.0));
}

fn rtt_write(bytes: &[u8]) {
    cortex_m::interrupt::free(|cs| {
        if let Some(ch) = RTT.borrow(cs).borrow_mut().as_mut() {
            ch.write(bytes);
        }
    });
}

/// A report being put together.
pub struct Report {
    summary: [u8; 67],
    summary_len: usize,
    counters: [(&'static str, u32); MAX_COUNTERS],
    n_counters: usize,
}

impl Report {
    /// An empty report.
    pub fn new() -> Self {
        Report {
            summary: [0; 67],
            summary_len: 0,
            counters: [("", 0); MAX_COUNTERS],
            n_counters: 0,
        }
    }

    /// Sets the SUMMARY.
    #[allow(clippy::too_many_arguments)]
    pub fn summary(
        &mut self,
        role: u8,
        status: u8,
        start: u64,
        end: u64,
        blocks: u32,
        bytes: u32,
        buf_addr: u32,
        buf_len: u32,
        sha: [u8; 32],
    ) {
        let s = &mut self.summary;
        s[0] = SUMMARY;
        s[1] = role;
        s[2] = status;
        s[3..11].copy_from_slice(&start.to_be_bytes());
        s[11..19].copy_from_slice(&end.to_be_bytes());
        s[19..23].copy_from_slice(&blocks.to_be_bytes());
        s[23..27].copy_from_slice(&bytes.to_be_bytes());
        s[27..31].copy_from_slice(&buf_addr.to_be_bytes());
        s[31..35].copy_from_slice(&buf_len.to_be_bytes());
        s[35..67].copy_from_slice(&sha);
        self.summary_len = 67;
    }

    /// Adds a named counter (the first 16 are kept).
    pub fn counter(&mut self, name: &'static str, value: u32) {
        if self.n_counters < MAX_COUNTERS {
            self.counters[self.n_counters] = (name, value);
            self.n_counters += 1;
        }
    }

    /// Sends the whole report.
    pub fn send<D, P>(&self, link: &mut Link<D, P>)
    where
        D: uart::UartDevice,
        P: uart::ValidUartPinout<D>,
    {
        let mut out = |payload: &[u8]| {
            let mut framed = [0u8; 2 + 2 * perfkit_stack::wire::MAX_MESSAGE];
            if let Some(m) = link.send_control(payload, &mut framed) {
                rtt_write(&framed[..m]);
            }
        };
        if self.summary_len > 0 {
            out(&self.summary[..self.summary_len]);
        }
        let mut p = [0u8; MAX_PAYLOAD];
        // Counters.
        let mut len = 2;
        let mut n = 0u8;
        p[0] = COUNTERS;
        for &(name, value) in &self.counters[..self.n_counters] {
            let rec = 1 + name.len() + 4;
            if len + rec > MAX_PAYLOAD {
                p[1] = n;
                out(&p[..len]);
                len = 2;
                n = 0;
            }
            p[len] = name.len() as u8;
            p[len + 1..len + 1 + name.len()].copy_from_slice(name.as_bytes());
            p[len + 1 + name.len()..len + rec].copy_from_slice(&value.to_be_bytes());
            len += rec;
            n += 1;
        }
        if n > 0 {
            p[1] = n;
            out(&p[..len]);
        }
        // Sites with at least one call, in ticks (cycles).
        let mut sites = 0u16;
        let mut len = 2;
        let mut n = 0u8;
        p[0] = SITES;
        perfkit::for_each_site(|s| {
            if s.calls() == 0 {
                return;
            }
            let name = &s.name().as_bytes()[..s.name().len().min(64)];
            let rec = 1 + name.len() + 32;
            if len + rec > MAX_PAYLOAD {
                p[1] = n;
                out(&p[..len]);
                len = 2;
                n = 0;
            }
            let r = &mut p[len..len + rec];
            r[0] = name.len() as u8;
            r[1..1 + name.len()].copy_from_slice(name);
            let k = 1 + name.len();
            let sat = |v: u64| v.min(u32::MAX as u64) as u32;
            r[k..k + 4].copy_from_slice(&sat(s.calls()).to_be_bytes());
            r[k + 4..k + 8].copy_from_slice(&sat(s.min_ticks()).to_be_bytes());
            r[k + 8..k + 12].copy_from_slice(&sat(s.max_ticks()).to_be_bytes());
            r[k + 12..k + 20].copy_from_slice(&s.cum_ticks().to_be_bytes());
            let q = |q: f64| sat(s.quantile_ticks(q).unwrap_or(0));
            r[k + 20..k + 24].copy_from_slice(&q(0.5).to_be_bytes());
            r[k + 24..k + 28].copy_from_slice(&q(0.9).to_be_bytes());
            r[k + 28..k + 32].copy_from_slice(&q(0.99).to_be_bytes());
            len += rec;
            n += 1;
            sites += 1;
        });
        if n > 0 {
            p[1] = n;
            out(&p[..len]);
        }
        let mut done = [0u8; 5];
        done[0] = DONE;
        done[1..3].copy_from_slice(&sites.to_be_bytes());
        done[3..5].copy_from_slice(&(self.n_counters as u16).to_be_bytes());
        out(&done);
    }
}
