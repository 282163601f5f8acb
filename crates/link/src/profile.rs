//! Device cost profiles: what a device spends, in CPU time, to send and to
//! receive, and the sizes of its UART buffers. The virtual-time simulation
//! ([`crate::sim`]) charges these costs, during which the device does not
//! service the link.
//!
//! Profiles are TOML files (`fixtures/profiles/*.toml`); the two shipped
//! ones are also built in ([`DeviceProfile::builtin`]). A file looks like:
//!
//! ```toml
//! name = "example"
//! description = "what was measured and how"
//! [send]              # building and writing one message
//! per_message_ns = 5_000
//! per_byte_ns = 10
//! [receive]           # processing received bytes and completed messages
//! per_message_ns = 8_000
//! per_byte_ns = 20
//! poll_interval_ns = 0  # 0 = the receiver wakes as soon as a byte arrives
//! [uart]
//! rx_buffer = 544
//! tx_buffer = 32
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::stages::Stages;
use crate::{Error, ErrorKind, Result};

/// CPU costs of one activity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Costs {
    /// Fixed cost per message, nanoseconds.
    pub per_message_ns: u64,
    /// Cost per byte, nanoseconds.
    pub per_byte_ns: u64,
}

impl Costs {
    /// Cost of `messages` messages totalling `bytes` bytes.
    pub fn cost_ns(&self, messages: u64, bytes: u64) -> u64 {
        self.per_message_ns
            .saturating_mul(messages)
            .saturating_add(self.per_byte_ns.saturating_mul(bytes))
    }
}

/// Receive-side costs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiveCosts {
    /// Cost per completed message, nanoseconds.
    pub per_message_ns: u64,
    /// Cost per received byte, nanoseconds.
    pub per_byte_ns: u64,
    /// When idle with an empty buffer, the receiver looks again only every
    /// this many nanoseconds (0 = it wakes on the first arriving byte).
    #[serde(default)]
    pub poll_interval_ns: u64,
}

impl ReceiveCosts {
    /// Cost of completing `messages` messages from `bytes` bytes.
    pub fn cost_ns(&self, messages: u64, bytes: u64) -> u64 {
        Costs {
            per_message_ns: self.per_message_ns,
            per_byte_ns: self.per_byte_ns,
        }
        .cost_ns(messages, bytes)
    }
}

/// The device's UART buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UartBuffers {
    /// Receive buffer capacity, bytes (at least 1).
    pub rx_buffer: usize,
    /// Transmit buffer capacity, bytes (0 = writes block until sent).
    pub tx_buffer: usize,
}

/// What one device spends to send and receive, and its UART buffers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceProfile {
    /// Short name (`host`, `pico-micropython`).
    pub name: String,
    /// What the numbers come from.
    #[serde(default)]
    pub description: String,
    /// Building and writing a message (may be left out when `stages` are given).
    #[serde(default)]
    pub send: Costs,
    /// Processing received bytes and messages, and the poll interval.
    #[serde(default)]
    pub receive: ReceiveCosts,
    /// UART buffer sizes.
    pub uart: UartBuffers,
    /// Per-stage costs ([`crate::stages`]), which the simulation charges
    /// instead of `send` and `receive` when given. A profile without them
    /// is charged its lump costs, as stages that add up to them
    /// ([`Stages::from_lumps`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stages: Option<Stages>,
}

const BUILTIN: &[(&str, &str)] = &[
    ("host", include_str!("../../../fixtures/profiles/host.toml")),
    (
        "pico-micropython",
        include_str!("../../../fixtures/profiles/pico-micropython.toml"),
    ),
    (
        "pico-micropython-copying",
        include_str!("../../../fixtures/profiles/pico-micropython-copying.toml"),
    ),
];

impl DeviceProfile {
    /// The stages the simulation charges: the profile's own, or its lump
    /// costs as stages.
    pub fn stages(&self) -> Stages {
        self.stages
            .unwrap_or_else(|| Stages::from_lumps(&self.send, &self.receive))
    }

    /// Names of the built-in profiles.
    pub fn builtin_names() -> impl Iterator<Item = &'static str> {
        BUILTIN.iter().map(|(n, _)| *n)
    }

    /// A built-in profile by name (the files shipped in `fixtures/profiles/`).
    pub fn builtin(name: &str) -> Result<Self> {
        let Some((_, text)) = BUILTIN.iter().find(|(n, _)| *n == name) else {
            let known: Vec<_> = Self::builtin_names().collect();
            return Err(Error::config(
                "profile",
                format!(
                    "no built-in profile `{name}` (known: {}); give a path to a .toml file instead",
                    known.join(", ")
                ),
            ));
        };
        Self::from_toml_str(text, &format!("<builtin {name}>"))
    }

    /// Loads a profile file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading profile {}", path.display()), e))?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// A built-in name, or else a path to a profile file.
    pub fn resolve(name_or_path: &str) -> Result<Self> {
        if BUILTIN.iter().any(|(n, _)| *n == name_or_path) {
            Self::builtin(name_or_path)
        } else {
            Self::load(Path::new(name_or_path))
        }
    }

    /// Parses profile text; `origin` names it in errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self> {
        let profile: Self = toml::from_str(text).map_err(|e| toml_error(text, origin, &e))?;
        if let Some(st) = &profile.stages {
            st.check().map_err(|e| {
                Error::new(ErrorKind::Parse {
                    path: origin.to_owned(),
                    line: 0,
                    column: 0,
                    key: None,
                    message: e.to_string(),
                })
            })?;
        }
        if profile.uart.rx_buffer == 0 {
            return Err(Error::new(ErrorKind::Parse {
                path: origin.to_owned(),
                line: 0,
                column: 0,
                key: Some("uart.rx_buffer".to_owned()),
                message: "must be at least 1 byte".to_owned(),
            }));
        }
        Ok(profile)
    }
}

/// Turns a TOML error into one naming the file, line, column and key.
pub(crate) fn toml_error(text: &str, origin: &str, e: &toml::de::Error) -> Error {
    let (mut line, mut column, mut key) = (0, 0, None);
    if let Some(span) = e.span() {
        let before = &text[..span.start.min(text.len())];
        line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        column = before[line_start..].chars().count() + 1;
        // The key is what precedes `=` on the offending line.
        let line_text = text[line_start..].lines().next().unwrap_or("");
        if let Some((k, _)) = line_text.split_once('=') {
            let k = k.trim();
            if !k.is_empty() && !k.starts_with('#') {
                key = Some(k.to_owned());
            }
        }
    }
    Error::new(ErrorKind::Parse {
        path: origin.to_owned(),
        line,
        column,
        key,
        message: e.message().trim().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse() {
        for name in DeviceProfile::builtin_names() {
            let p = DeviceProfile::builtin(name).unwrap();
            assert_eq!(p.name, name);
            assert!(p.uart.rx_buffer > 0);
        }
    }

    #[test]
    fn pico_buffers_match_the_spec() {
        let p = DeviceProfile::builtin("pico-micropython").unwrap();
        assert_eq!(p.uart.rx_buffer, 544);
        assert_eq!(p.uart.tx_buffer, 32);
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let text = "name = \"x\"\n[send]\nper_message_ns = 1\nper_byte_ns = 2\nper_mesage_ns = 3\n";
        let err = DeviceProfile::from_toml_str(text, "p.toml").unwrap_err();
        let ErrorKind::Parse {
            path, line, key, ..
        } = err.kind()
        else {
            panic!("{err}");
        };
        assert_eq!(path, "p.toml");
        assert_eq!(*line, 5);
        assert_eq!(key.as_deref(), Some("per_mesage_ns"));
        assert!(err.to_string().starts_with("p.toml:5:"), "{err}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let text = "name = \"x\"\n[send]\nper_message_ns = \"fast\"\nper_byte_ns = 2\n";
        let err = DeviceProfile::from_toml_str(text, "p.toml").unwrap_err();
        let ErrorKind::Parse { line, key, .. } = err.kind() else {
            panic!("{err}");
        };
        assert_eq!((*line, key.as_deref()), (3, Some("per_message_ns")));
    }

    #[test]
    fn unknown_builtin_is_a_clear_error() {
        let err = DeviceProfile::builtin("vax").unwrap_err();
        assert!(err.to_string().contains("pico-micropython"), "{err}");
    }
}
