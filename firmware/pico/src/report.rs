//! The device report: SUMMARY, COUNTERS, SITES, DONE control messages
//! (`perfkit_stack::device`, the codec the host decodes with), sent on UART0
//! and copied to RTT up channel 0 ("perfkit") for a debug probe.

use core::cell::RefCell;
use cortex_m::interrupt::Mutex;
use perfkit::SiteRecord;
use perfkit_stack::device::{self, Batcher, Message, Summary};
use rp2040_hal::uart;
use rtt_target::{rtt_init, UpChannel};

use crate::link::Link;

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
    summary: Option<Summary>,
    counters: [(&'static str, u32); MAX_COUNTERS],
    n_counters: usize,
}

impl Report {
    /// An empty report.
    pub fn new() -> Self {
        Report {
            summary: None,
            counters: [("", 0); MAX_COUNTERS],
            n_counters: 0,
        }
    }

    /// Sets the SUMMARY.
    pub fn summary(&mut self, summary: Summary) {
        self.summary = Some(summary);
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
        let send = |msg: Message<'_>, out: &mut dyn FnMut(&[u8])| {
            let mut p = [0u8; device::MAX_MESSAGE];
            if let Some(n) = msg.encode(&mut p) {
                out(&p[..n]);
            }
        };
        if let Some(s) = self.summary {
            send(Message::Summary(s), &mut out);
        }
        let mut counters = Batcher::counters();
        for &(name, value) in &self.counters[..self.n_counters] {
            counters.counter(name, value, &mut out);
        }
        let counters = counters.finish(&mut out);
        // Sites with at least one call, in ticks (cycles).
        let mut sites = Batcher::sites();
        perfkit::for_each_site(|s| {
            if s.calls() > 0 {
                sites.site(&SiteRecord::from_site(s), &mut out);
            }
        });
        let sites = sites.finish(&mut out);
        send(Message::Done { sites, counters }, &mut out);
    }
}
