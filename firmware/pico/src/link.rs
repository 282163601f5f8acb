//! UART0 as a dttk link: blocking framed writes, non-blocking reads, and the
//! control-channel messages of the host protocol (`perfkit_stack::device`).

use perfkit_stack::device::{self, Message};
use perfkit_stack::{wire, Framing};
use rp2040_hal::pac::{self, interrupt};
use rp2040_hal::uart::{Enabled, UartDevice, UartPeripheral, ValidUartPinout};

/// The UART plus what framed writes need.
pub struct Link<D: UartDevice, P: ValidUartPinout<D>> {
    uart: UartPeripheral<Enabled, D, P>,
    seq: u8,
    /// Receive errors the UART flagged (overrun, framing, parity, break).
    pub rx_errors: u32,
}

impl<D: UartDevice, P: ValidUartPinout<D>> Link<D, P> {
    /// Wraps an enabled UART.
    pub fn new(uart: UartPeripheral<Enabled, D, P>) -> Self {
        Link {
            uart,
            seq: 0,
            rx_errors: 0,
        }
    }

    /// Writes bytes, blocking while the TX FIFO is full (no transmit buffer
    /// beyond the hardware FIFO, as in the reference). The core sleeps until
    /// the FIFO has drained to its level instead of polling.
    pub fn write_all(&mut self, bytes: &[u8]) {
        perfkit::measure!(
            "uart::write",
            bytes = bytes.len(),
            self.write_blocking(bytes)
        );
    }

    fn write_blocking(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        while !rest.is_empty() {
            match self.uart.write_raw(rest) {
                Ok(r) => rest = r,
                Err(_) => wait_uart(false),
            }
        }
    }

    /// Blocks until the last byte has left the shift register.
    pub fn flush(&mut self) {
        // One character time at 115200 baud is 86.8 us.
        while self.uart.uart_is_busy() {
            crate::clock::sleep_ns(87_000);
        }
    }

    /// Sleeps until the RX FIFO reaches its level, the line goes idle with
    /// bytes in the FIFO, or another interrupt (SysTick) wakes the core.
    pub fn wait_rx(&mut self) {
        wait_uart(true);
    }

    /// Reads what the RX FIFO holds (up to `buf.len()` bytes).
    pub fn read(&mut self, buf: &mut [u8]) -> usize {
        match self.uart.read_raw(buf) {
            Ok(n) => n,
            Err(nb::Error::WouldBlock) => 0,
            Err(nb::Error::Other(_)) => {
                // Overrun, framing, parity or break: counted; the bytes read
                // with the faulty one are lost, as the framing layer expects.
                self.rx_errors += 1;
                0
            }
        }
    }

    /// Sends one control message of the host protocol.
    pub fn send(&mut self, message: &Message<'_>) {
        let mut payload = [0u8; device::MAX_MESSAGE];
        if let Some(len) = message.encode(&mut payload) {
            let mut framed = [0u8; 2 + 2 * wire::MAX_MESSAGE];
            self.send_control(&payload[..len], &mut framed);
        }
    }

    /// Sends one control message, leaving its framed bytes in `framed` and
    /// returning their length (None if the payload is too long).
    pub fn send_control(&mut self, payload: &[u8], framed: &mut [u8]) -> Option<usize> {
        let mut msg = [0u8; wire::MAX_MESSAGE];
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        let n = wire::build(&mut msg, seq, device::CHANNEL, 0, payload.len(), |p| {
            p.copy_from_slice(payload);
            Ok(())
        })
        .ok()?;
        let m = Framing::Dttk.encode(&msg[..n], framed).ok()?;
        self.write_blocking(&framed[..m]);
        Some(m)
    }
}

/// Low RX level (4 bytes): the receiver starts on a frame early instead of
/// waiting for half the FIFO; the RX timeout covers the tail of a frame.
pub fn set_rx_level_low() {
    // SAFETY: UART0 is only touched from the main loop and its interrupt,
    // which only masks interrupt sources.
    let u = unsafe { &*pac::UART0::ptr() };
    u.uartifls().modify(|_, w| unsafe { w.rxiflsel().bits(0) });
    // SAFETY: the handler below only masks UART interrupt sources.
    unsafe { cortex_m::peripheral::NVIC::unmask(pac::Interrupt::UART0_IRQ) };
}

/// Sleeps until UART0 can make progress: RX data (`rx`) or TX FIFO space.
/// Interrupts are masked around the check and the WFI so a wake-up cannot
/// slip in between; the pending interrupt is taken (and the source masked
/// again by the handler) right after.
fn wait_uart(rx: bool) {
    // SAFETY: see set_rx_level_low.
    let u = unsafe { &*pac::UART0::ptr() };
    cortex_m::interrupt::free(|_| {
        if rx {
            u.uartimsc()
                .modify(|_, w| w.rxim().set_bit().rtim().set_bit());
            if u.uartfr().read().rxfe().bit_is_set() {
                cortex_m::asm::wfi();
            }
        } else {
            u.uartimsc().modify(|_, w| w.txim().set_bit());
            if u.uartfr().read().txff().bit_is_set() {
                cortex_m::asm::wfi();
            }
        }
    });
}

#[interrupt]
fn UART0_IRQ() {
    // Only a wake-up: mask the sources; the main loop does the work.
    // SAFETY: see set_rx_level_low.
    let u = unsafe { &*pac::UART0::ptr() };
    u.uartimsc()
        .modify(|_, w| w.rxim().clear_bit().rtim().clear_bit().txim().clear_bit());
}
