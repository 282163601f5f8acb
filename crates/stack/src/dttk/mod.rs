//! The dttk wire profile (`docs/specs/dttk-wire.md`): what the field devices
//! speak, byte for byte, as implementations of the [`profile`](crate::profile)
//! interface.
//!
//! * [`wire`]: the link message (`len | seqno | chn | blockno | payload |
//!   crc`), its CRC, and the META and END control payloads.
//! * [`framing`]: the 0xFF/0xFE byte stuffing ([`framing::Stuffing`]).
//! * [`LinkMessage`]: the link message as the packet half of the interface
//!   ([`PacketFormat`]), the receiver's default.
//!
//! The transfer protocol over these messages (the sender's META schedule,
//! the receiver's rules) is [`Sender`](crate::Sender) and
//! [`Receiver`](crate::Receiver); the old paths `perfkit_stack::wire` and the
//! constants in `perfkit_stack::framing` re-export what is here.

pub mod framing;
pub mod wire;

use crate::error::Result;
use crate::profile::{FrameCheck, PacketFormat, PacketView};

/// The dttk link message format (section 1): a `len` byte that must equal
/// the frame's length - 1, checked by CRC-16/SPI-FUJITSU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkMessage;

impl FrameCheck for LinkMessage {
    #[inline]
    fn frame_ok(frame: &[u8]) -> bool {
        frame
            .first()
            .is_some_and(|&len| len as usize + 1 == frame.len())
    }
}

impl PacketFormat for LinkMessage {
    type Packet<'a> = wire::Packet<&'a [u8]>;

    #[inline]
    fn packet(msg: &[u8]) -> Result<wire::Packet<&[u8]>> {
        wire::Packet::new_checked(msg)
    }
}

impl<T: AsRef<[u8]>> PacketView for wire::Packet<T> {
    #[inline]
    fn seqno(&self) -> u8 {
        wire::Packet::seqno(self)
    }
    #[inline]
    fn channel_id(&self) -> u8 {
        wire::Packet::channel_id(self)
    }
    #[inline]
    fn is_control(&self) -> bool {
        wire::Packet::is_control(self)
    }
    #[inline]
    fn blockno(&self) -> u16 {
        wire::Packet::blockno(self)
    }
    #[inline]
    fn payload(&self) -> &[u8] {
        wire::Packet::payload(self)
    }
    #[inline]
    fn verify(&self) -> Result<()> {
        self.verify_crc()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_check_is_the_len_byte() {
        assert!(LinkMessage::frame_ok(&[2, 0, 0]));
        assert!(!LinkMessage::frame_ok(&[3, 0, 0]));
        assert!(!LinkMessage::frame_ok(&[1, 0, 0]));
        assert!(!LinkMessage::frame_ok(&[]));
    }
}
