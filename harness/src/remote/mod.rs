//! Runs across two hosts: `perfkit agent` runs one end of a transfer for a
//! `perfkit run` on another machine, which runs the other end and puts
//! both ends' figures and stage tables into one record.
//!
//! - [`proto`]: the control protocol (framing, messages, the token's
//!   challenge-response, the clock exchange); docs/specs/agent.md.
//! - [`agent`]: the server: one run at a time, every wait bounded.
//! - [`client`]: the transfer kind's side of a run with a remote end.

pub mod agent;
pub mod client;
pub mod proto;
