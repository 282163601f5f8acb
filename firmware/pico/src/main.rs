//! Boot test: clocks, UART0, echo.
#![no_std]
#![no_main]

use core::panic::PanicInfo;
use embedded_hal_nb::serial::{Read, Write};
use rp2040_hal::{self as hal, clocks::Clock, fugit::RateExtU32, pac, uart};

#[link_section = ".boot2"]
#[used]
pub static BOOT2_FIRMWARE: [u8; 256] = rp2040_boot2::BOOT_LOADER_W25Q080;

const XOSC_HZ: u32 = 12_000_000;

#[hal::entry]
fn main() -> ! {
    let mut p = pac::Peripherals::take().unwrap();
    let mut wd = hal::Watchdog::new(p.WATCHDOG);
    let clocks = hal::clocks::init_clocks_and_plls(
        XOSC_HZ, p.XOSC, p.CLOCKS, p.PLL_SYS, p.PLL_USB, &mut p.RESETS, &mut wd,
    )
    .ok()
    .unwrap();
    let sio = hal::Sio::new(p.SIO);
    let pins = hal::gpio::Pins::new(p.IO_BANK0, p.PADS_BANK0, sio.gpio_bank0, &mut p.RESETS);
    let uart_pins = (pins.gpio0.into_function(), pins.gpio1.into_function());
    let mut u = uart::UartPeripheral::new(p.UART0, uart_pins, &mut p.RESETS)
        .enable(
            uart::UartConfig::new(115_200.Hz(), uart::DataBits::Eight, None, uart::StopBits::One),
            clocks.peripheral_clock.freq(),
        )
        .unwrap();
    for &b in b"hello\n" {
        nb::block!(u.write(b)).ok();
    }
    loop {
        if let Ok(b) = u.read() {
            nb::block!(u.write(b)).ok();
        }
    }
}

#[panic_handler]
fn panic(_: &PanicInfo<'_>) -> ! {
    loop {
        cortex_m::asm::udf();
    }
}
