//! The firmware ELF: what gets loaded where, and where the RTT control block
//! is, checked before anything touches a board or the emulator.
//!
//! Loading follows the load (physical) addresses of the `PT_LOAD` segments,
//! as the emulator runner and a flasher do: `.data` is stored in flash after
//! the code and copied to RAM by the reset handler.

use std::path::Path;

use object::read::elf::{ElfFile32, FileHeader, ProgramHeader};
use object::{Object, ObjectSymbol};

use crate::{Error, ErrorKind};

/// Start of the RP2040's XIP flash.
pub const FLASH_START: u32 = 0x1000_0000;
/// Size of the Pico's flash.
pub const FLASH_SIZE: u32 = 2 * 1024 * 1024;
/// Start of SRAM.
pub const SRAM_START: u32 = 0x2000_0000;
/// SRAM size (banks 0-5).
pub const SRAM_SIZE: u32 = 264 * 1024;

/// One loadable segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Load address.
    pub addr: u32,
    /// Bytes stored at `addr`.
    pub data: Vec<u8>,
}

/// The parts of a firmware ELF a runner needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firmware {
    /// Loadable segments, by load address.
    pub segments: Vec<Segment>,
    /// Entry point (the reset handler).
    pub entry: u32,
    /// Address of `_SEGGER_RTT`, the RTT control block, if present.
    pub rtt: Option<u32>,
}

impl Firmware {
    /// Reads and checks an RP2040 firmware ELF.
    pub fn load(path: &Path) -> Result<Firmware, Error> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Firmware::parse(&bytes)
            .map_err(|m| Error::new(ErrorKind::Setup(format!("{}: {m}", path.display()))))
    }

    /// Parses ELF bytes; every problem is an error message, never a panic.
    pub fn parse(bytes: &[u8]) -> Result<Firmware, String> {
        let elf = ElfFile32::<object::Endianness>::parse(bytes)
            .map_err(|e| format!("not a 32-bit ELF: {e}"))?;
        if elf.architecture() != object::Architecture::Arm {
            return Err(format!(
                "built for {:?}, not ARM (thumbv6m-none-eabi)",
                elf.architecture()
            ));
        }
        let endian = elf.endian();
        let header = elf.elf_header();
        let mut segments = Vec::new();
        for ph in header
            .program_headers(endian, bytes)
            .map_err(|e| e.to_string())?
        {
            if ph.p_type(endian) != object::elf::PT_LOAD {
                continue;
            }
            let data = ph
                .data(endian, bytes)
                .map_err(|_| "segment past end of file".to_owned())?;
            if data.is_empty() {
                continue;
            }
            let addr = ph.p_paddr(endian);
            let end = addr as u64 + data.len() as u64;
            let in_flash = addr >= FLASH_START && end <= (FLASH_START + FLASH_SIZE) as u64;
            let in_sram = addr >= SRAM_START && end <= (SRAM_START + SRAM_SIZE) as u64;
            if !in_flash && !in_sram {
                return Err(format!(
                    "segment at 0x{addr:08x} ({} bytes) is outside flash and SRAM",
                    data.len()
                ));
            }
            segments.push(Segment {
                addr,
                data: data.to_vec(),
            });
        }
        if segments.is_empty() {
            return Err("no loadable segment".into());
        }
        segments.sort_by_key(|s| s.addr);
        for w in segments.windows(2) {
            if w[0].addr as u64 + w[0].data.len() as u64 > w[1].addr as u64 {
                return Err(format!(
                    "segments at 0x{:08x} and 0x{:08x} overlap",
                    w[0].addr, w[1].addr
                ));
            }
        }
        if segments[0].addr != FLASH_START {
            return Err(format!(
                "no boot2 at 0x{FLASH_START:08x} (first segment at 0x{:08x}); the RP2040 boots from there",
                segments[0].addr
            ));
        }
        let rtt = elf
            .symbols()
            .find(|s| s.name() == Ok("_SEGGER_RTT"))
            .map(|s| s.address() as u32);
        Ok(Firmware {
            segments,
            entry: elf.entry() as u32,
            rtt,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_elf_and_truncated_input() {
        assert!(Firmware::parse(b"").is_err());
        assert!(Firmware::parse(b"\x7fELF").is_err());
        assert!(Firmware::parse(&[0u8; 64]).is_err());
    }
}
