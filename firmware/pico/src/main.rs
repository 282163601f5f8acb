//! perfkit's RP2040 firmware: the dttk transfer stack (`perfkit-stack`) as
//! sender or receiver on UART0, through the engine's pumps
//! (`perfkit-engine`, no_std) as on the host, every stage measured with
//! `perfkit` in CPU cycles, and a report of the device-side statistics at
//! the end.
//!
//! Protocol with the host (all dttk link messages; control messages on
//! channel 0xFE, codec and format in `perfkit_stack::device`):
//!
//! 1. after boot the firmware sends HELLO (clock rates, image size, receive
//!    capacity) and waits for CONFIG;
//! 2. CONFIG selects the role and the transfer settings; the firmware answers
//!    READY;
//! 3. sender: it sends the image embedded in flash (`fixtures/test35k.jpg`)
//!    with the profile's META schedule, repeats and throttle; receiver: it
//!    receives into RAM until the file is complete and verified, the transfer
//!    fails, or the host sends FINISH;
//! 4. it sends its report (SUMMARY, COUNTERS, SITES, DONE) on UART0 and, on
//!    a real board, the same bytes on RTT up channel 0 ("perfkit");
//! 5. it clears its statistics and waits for the next CONFIG.
#![no_std]
#![no_main]

mod clock;
mod link;
mod report;

use core::cell::Cell;
use core::panic::PanicInfo;
use perfkit_engine::{Next, RecvEnd, RxPump, TxPump};
use perfkit_stack::device::{self, DeviceRole, Hello, Message, Summary};
use perfkit_stack::{
    Deframer, Event, Failure, Framing, MemorySink, MemorySource, Receiver, Sender, SenderConfig,
};
use rp2040_hal::{self as hal, clocks::Clock, fugit::RateExtU32, pac, uart};

use link::Link;
use report::Report;

#[link_section = ".boot2"]
#[used]
pub static BOOT2_FIRMWARE: [u8; 256] = rp2040_boot2::BOOT_LOADER_W25Q080;

const XOSC_HZ: u32 = 12_000_000;
/// The image the device sends.
static IMAGE: &[u8] = include_bytes!("../../../fixtures/test35k.jpg");
const IMAGE_NAME: &[u8] = b"test35k.jpg";
/// Largest file the device receives (RAM buffer).
const RX_CAPACITY: usize = 64 * 1024;
/// Receiver block bitmap in bytes: 8192 blocks (a 64 KiB file in 8-byte blocks).
const BITMAP: usize = 1024;
/// Receiver: stop when nothing arrived for this long after END (cycles: 0.5 s).
const IDLE_AFTER_END: u64 = clock::CPU_HZ as u64 / 2;

static mut RX_BUF: [u8; RX_CAPACITY] = [0; RX_CAPACITY];

/// CONFIG, decoded.
#[derive(Clone, Copy)]
struct Config {
    role: DeviceRole,
    sender: SenderConfig,
}

fn parse_config(p: &[u8]) -> Option<Config> {
    let Ok(Message::Config(c)) = Message::decode(p) else {
        return None;
    };
    let sender = SenderConfig {
        block_size: c.blocksz,
        start_meta: c.start_meta as u32,
        meta_every: c.meta_every as u32,
        repeats: c.repeats as u32,
        throttle_pps: c.throttle_pps as u32,
        ..SenderConfig::default()
    };
    // c.baud is the host's; the UART runs at BAUD (build time).
    sender.validate().ok()?;
    Some(Config {
        role: c.role,
        sender,
    })
}

const BAUD: u32 = 115_200;

#[hal::entry]
fn main() -> ! {
    let mut p = pac::Peripherals::take().unwrap();
    let mut cp = pac::CorePeripherals::take().unwrap();
    let mut wd = hal::Watchdog::new(p.WATCHDOG);
    let Ok(clocks) = hal::clocks::init_clocks_and_plls(
        XOSC_HZ,
        p.XOSC,
        p.CLOCKS,
        p.PLL_SYS,
        p.PLL_USB,
        &mut p.RESETS,
        &mut wd,
    ) else {
        panic!("clock init");
    };
    clock::start(cp.SYST, &mut cp.SCB);
    let _ = perfkit::set_clock(&clock::Cycles);
    report::rtt_init();

    let sio = hal::Sio::new(p.SIO);
    let pins = hal::gpio::Pins::new(p.IO_BANK0, p.PADS_BANK0, sio.gpio_bank0, &mut p.RESETS);
    let uart_pins = (pins.gpio0.into_function(), pins.gpio1.into_function());
    let Ok(u) = uart::UartPeripheral::new(p.UART0, uart_pins, &mut p.RESETS).enable(
        uart::UartConfig::new(BAUD.Hz(), uart::DataBits::Eight, None, uart::StopBits::One),
        clocks.peripheral_clock.freq(),
    ) else {
        panic!("uart init");
    };
    // The 1 MHz timer, only as a wake-up source for sleeps.
    let _timer = hal::Timer::new(p.TIMER, &mut p.RESETS, &clocks);
    clock::enable_sleep();
    link::set_rx_level_low();
    let mut link = Link::new(u);
    let mut deframer: Deframer = Deframer::new(Framing::Dttk);

    loop {
        link.send(&Message::Hello(Hello {
            cpu_hz: clock::CPU_HZ,
            tick_hz: clock::CPU_HZ,
            image_len: IMAGE.len() as u32,
            rx_capacity: RX_CAPACITY as u32,
        }));

        let cfg = wait_config(&mut link, &mut deframer);
        link.send(&Message::Ready);
        link.flush();
        let mut rep = Report::new();
        let (inline, replay) = probe_cycles_per_scope();
        rep.counter("probe_cycles_per_scope", inline);
        rep.counter("probe_replay_cycles_per_scope", replay);
        let replayed = perfkit::replay_ticks();
        if cfg.role == DeviceRole::Sender {
            run_sender(&mut link, &cfg, &mut rep);
        } else {
            run_receiver(&mut link, &cfg, &mut rep);
        }
        perfkit::replay();
        rep.counter(
            "probe_replay_cycles",
            clamp_u32(perfkit::replay_ticks() - replayed),
        );
        rep.counter("uart_rx_errors", link.rx_errors);
        rep.send(&mut link);
        link.flush();
        link.rx_errors = 0;
        perfkit::for_each_site(|s| s.clear());
    }
}

/// Empty scopes timed by [`probe_cycles_per_scope`].
const PROBE_CALIBRATION_SCOPES: u32 = 64;

/// The cost of one empty measured scope nested in another, in two parts.
///
/// - What it adds to the stages around it, inline: its two clock reads and
///   the two events it appends to perfkit's ring.
/// - Its share of the replay that counts those events later (the path, the
///   call's statistics, a histogram bucket): time no measurement contains,
///   since replays run between measurements and the measurements open
///   meanwhile start later by it, but the device's time all the same.
///
/// Raw cycle reads around [`PROBE_CALIBRATION_SCOPES`] empty `measure!`s
/// inside a span, with every event they make replayed inside the reads;
/// the replays' own time (`perfkit::replay_ticks`) is the second part, the
/// rest, divided by the number of scopes, the first. Nothing else is
/// subtracted (the loop and the `nop` are a few cycles). In the `bare`
/// build the scopes compile away and the first part is the loop's cost.
fn probe_cycles_per_scope() -> (u32, u32) {
    let _outer = perfkit::span!("perfkit::calibrate");
    // Start from an empty ring.
    perfkit::replay();
    let r0 = perfkit::replay_ticks();
    let t0 = clock::now();
    for _ in 0..PROBE_CALIBRATION_SCOPES {
        perfkit::measure!("perfkit::empty", cortex_m::asm::nop());
    }
    perfkit::replay();
    let cycles = clock::now() - t0;
    let replayed = perfkit::replay_ticks() - r0;
    let per_scope = |c: u64| clamp_u32(c / u64::from(PROBE_CALIBRATION_SCOPES));
    (per_scope(cycles.saturating_sub(replayed)), per_scope(replayed))
}

fn clamp_u32(v: u64) -> u32 {
    v.min(u64::from(u32::MAX)) as u32
}

/// Reads frames until a valid CONFIG arrives.
fn wait_config<D, P>(link: &mut Link<D, P>, deframer: &mut Deframer) -> Config
where
    D: uart::UartDevice,
    P: uart::ValidUartPinout<D>,
{
    let mut buf = [0u8; 32];
    loop {
        let n = link.read(&mut buf);
        if n == 0 {
            link.wait_rx();
            continue;
        }
        let mut bytes = &buf[..n];
        while let Some(frame) = deframer.decode(&mut bytes) {
            if let Some(payload) = control_payload(frame) {
                if let Some(cfg) = parse_config(payload) {
                    return cfg;
                }
            }
        }
    }
}

/// The payload of a valid control-channel message of the host protocol.
fn control_payload(frame: &[u8]) -> Option<&[u8]> {
    let packet = perfkit_stack::wire::Packet::new_checked(frame).ok()?;
    if packet.chn() != device::CHANNEL || packet.verify_crc().is_err() {
        return None;
    }
    let payload = packet.payload();
    // Re-slice from `frame` to keep the caller's lifetime.
    let start = perfkit_stack::wire::HEADER_LEN;
    frame.get(start..start + payload.len())
}

fn run_sender<D, P>(link: &mut Link<D, P>, cfg: &Config, rep: &mut Report)
where
    D: uart::UartDevice,
    P: uart::ValidUartPinout<D>,
{
    let source = MemorySource::new(IMAGE, IMAGE_NAME);
    let mut tx = match Sender::new(source, cfg.sender) {
        Ok(tx) => tx,
        Err(_) => {
            rep.summary(Summary {
                role: DeviceRole::Sender,
                status: device::STATUS_ERROR,
                start_ticks: 0,
                end_ticks: 0,
                blocks: 0,
                bytes: 0,
                buf_addr: 0,
                buf_len: 0,
                sha256: [0; 32],
            });
            return;
        }
    };
    let mut pump = TxPump::framed(&mut tx, Framing::Dttk);
    let start = clock::now();
    let mut status = device::STATUS_COMPLETE;
    let mut msg_cycles = CycleStats::default();
    loop {
        let t_msg = clock::now();
        match pump.poll(clock::to_ns(t_msg)) {
            Ok(Next::Send(frame)) => {
                msg_cycles.add(clock::now() - t_msg);
                link.write_all(frame)
            }
            Ok(Next::WaitUntil(t)) => clock::sleep_until_ns(t),
            Ok(Next::Done) => break,
            Err(_) => {
                status = device::STATUS_ERROR;
                break;
            }
        }
    }
    link.flush();
    let end = clock::now();
    let stats = *tx.stats();
    let counters = *tx.counters();
    let mut sha = [0u8; 32];
    let meta = tx.meta_payload();
    if meta.len() >= 37 {
        sha.copy_from_slice(&meta[5..37]);
    }
    rep.summary(Summary {
        role: DeviceRole::Sender,
        status,
        start_ticks: start,
        end_ticks: end,
        blocks: stats.blocks as u32,
        bytes: stats.bytes as u32,
        buf_addr: 0,
        buf_len: 0,
        sha256: sha,
    });
    rep.counter("messages", counters.messages as u32);
    rep.counter("metas", counters.metas as u32);
    rep.counter("throttled", counters.throttled as u32);
    msg_cycles.report(
        rep,
        [
            "tx_message_cycles_min",
            "tx_message_cycles_max",
            "tx_message_cycles_mean",
        ],
    );
}

fn run_receiver<D, P>(link: &mut Link<D, P>, _cfg: &Config, rep: &mut Report)
where
    D: uart::UartDevice,
    P: uart::ValidUartPinout<D>,
{
    // SAFETY: the only reference to RX_BUF; main() never returns, so this
    // borrow lives until the next run, which starts after this one ended.
    let buf: &'static mut [u8] = unsafe { &mut *core::ptr::addr_of_mut!(RX_BUF) };
    let buf_addr = buf.as_ptr() as u32;
    let mut rx: Receiver<MemorySink<&mut [u8]>, BITMAP> =
        Receiver::new(0, MemorySink::new(&mut buf[..]), Framing::Dttk).with_hash_pass(0);
    let mut pump = RxPump::new(&mut rx);
    let mut chunk = [0u8; 32];
    let mut start: Option<u64> = None;
    let mut last_rx = clock::now();
    let mut failure = None;
    let mut msg_cycles = CycleStats::default();
    // Each message is timed (raw cycles, and a span that nests the stack's
    // stages as `measure!` would) from the moment the deframer hands it
    // over until its event.
    let t_msg = Cell::new(0u64);
    let span = Cell::new(None);
    // Set by the last message of the transfer (complete, failed, FINISH):
    // the rest of that read is nobody's.
    let over = Cell::new(false);
    while !over.get() {
        let n = link.read(&mut chunk);
        let now = clock::now();
        if n == 0 {
            if pump.ended() == Some(RecvEnd::EndIncomplete) && now - last_rx > IDLE_AFTER_END {
                break;
            }
            link.wait_rx();
            continue;
        }
        last_rx = now;
        start.get_or_insert(now);
        pump.on_bytes_shared(
            &chunk[..n],
            clock::to_ns(now),
            |frame| {
                if over.get() {
                    return true;
                }
                // The host's control messages share the stream: only FINISH
                // means anything during a transfer.
                if frame.get(2) == Some(&device::CHANNEL) {
                    let msg = control_payload(frame).map(Message::decode);
                    over.set(msg == Some(Ok(Message::Finish)));
                    return true;
                }
                t_msg.set(clock::now());
                span.set(Some(perfkit::span!("receiver::on_message")));
                false
            },
            |ev| {
                drop(span.take());
                msg_cycles.add(clock::now() - t_msg.get());
                match ev {
                    Event::Complete { .. } => over.set(true),
                    Event::Failed(f) => {
                        failure = Some(f);
                        over.set(true);
                    }
                    _ => {}
                }
            },
        );
    }
    let end = clock::now();
    let status = match (pump.ended(), failure) {
        (Some(RecvEnd::Complete), _) => device::STATUS_COMPLETE,
        (_, Some(Failure::ShaMismatch)) => device::STATUS_SHA_MISMATCH,
        (_, Some(Failure::TooManyBlocks { .. } | Failure::Sink(_))) => device::STATUS_TOO_LARGE,
        (_, Some(Failure::MetaConflict)) => device::STATUS_ERROR,
        _ => device::STATUS_INCOMPLETE,
    };
    let rx = pump.receiver();
    let stats = *rx.stats();
    let c = *rx.counters();
    let d = *rx.deframer_stats();
    let (size, sha) = match rx.meta() {
        Some(m) => (m.file_size() as u32, m.sha256),
        None => (0, [0; 32]),
    };
    let missing = rx.block_count().saturating_sub(rx.blocks_held());
    rep.summary(Summary {
        role: DeviceRole::Receiver,
        status,
        start_ticks: start.unwrap_or(end),
        end_ticks: end,
        blocks: stats.blocks as u32,
        bytes: stats.bytes as u32,
        buf_addr,
        buf_len: size,
        sha256: sha,
    });
    rep.counter("messages", c.link.messages as u32);
    rep.counter("crc_errors", c.link.crc_errors as u32);
    rep.counter("bad_lengths", (c.link.bad_lengths + d.bad_lengths) as u32);
    rep.counter("seq_gaps", c.link.seq_gaps as u32);
    rep.counter("duplicates", c.duplicates as u32);
    rep.counter("metas", c.metas as u32);
    rep.counter("junk_bytes", d.junk_bytes as u32);
    rep.counter("protocol_violations", d.protocol_violations as u32);
    rep.counter("frame_overflows", d.overflows as u32);
    rep.counter("missing_blocks", missing);
    msg_cycles.report(
        rep,
        [
            "rx_message_cycles_min",
            "rx_message_cycles_max",
            "rx_message_cycles_mean",
        ],
    );
}

/// Raw cycle statistics of one step, kept without perfkit so they exist in
/// the `bare` build too (the clock reads cost about 60 cycles).
#[derive(Default)]
struct CycleStats {
    n: u32,
    min: u32,
    max: u32,
    sum: u64,
}

impl CycleStats {
    fn add(&mut self, cycles: u64) {
        let c = cycles.min(u32::MAX as u64) as u32;
        self.min = if self.n == 0 { c } else { self.min.min(c) };
        self.max = self.max.max(c);
        self.sum += c as u64;
        self.n += 1;
    }

    /// Adds the min/max/mean counters under `names`.
    fn report(&self, rep: &mut Report, names: [&'static str; 3]) {
        rep.counter(names[0], self.min);
        rep.counter(names[1], self.max);
        rep.counter(names[2], (self.sum / self.n.max(1) as u64) as u32);
    }
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    // Say where on the UART (raw text, outside any frame: the host counts it
    // as junk and shows it in a trace), then stop with a breakpoint, which
    // ends an emulated run with a fault and halts a debugger.
    cortex_m::interrupt::disable();
    // SAFETY: nothing else runs any more.
    let u = unsafe { &*pac::UART0::ptr() };
    let put = |b: u8| {
        while u.uartfr().read().txff().bit_is_set() {}
        u.uartdr().write(|w| unsafe { w.data().bits(b) });
    };
    for &b in b"\npanic at " {
        put(b);
    }
    if let Some(loc) = info.location() {
        for &b in loc.file().as_bytes() {
            put(b);
        }
        put(b':');
        let mut line = loc.line();
        let mut digits = [0u8; 10];
        let mut n = 0;
        loop {
            digits[n] = b'0' + (line % 10) as u8;
            n += 1;
            line /= 10;
            if line == 0 {
                break;
            }
        }
        for &d in digits[..n].iter().rev() {
            put(d);
        }
    }
    put(b'\n');
    while u.uartfr().read().busy().bit_is_set() {}
    loop {
        cortex_m::asm::bkpt();
    }
}
