//! The link kinds a scenario can name from this crate (serial, TCP, UDP),
//! each with its own parameter table and settings type.
//!
//! A kind is a settings struct that implements [`LinkKind`]: its name,
//! the parameters scenarios write under `[link]` (type, range, default,
//! help), and how to open both ends: in one process ([`LinkKind::open`]),
//! or on two hosts, the receiving end listening ([`LinkKind::listen`]) and
//! the sending end connecting to the address it gives
//! ([`LinkKind::connect`]). An end is a byte stream or a packet link
//! ([`End`]). The scenario loader composes every kind's table into its
//! own, so `perfkit params`, `[sweep]`, `--set` and the file:line:key
//! errors cover a new kind's parameters with no change outside this crate;
//! the harness and `perfkit agent` run every kind through the same engine
//! drivers. Adding a link kind is its module plus one line in
//! [`LINK_KINDS`].
//!
//! Parameters are flat names shared across kinds: a kind that declares a
//! name another kind (or the scenario loader) already declares must give it
//! the same type, so one value means one thing everywhere.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::{ByteLink, Error, PacketLink, Result};

/// Settings of a link, by parameter name, as a configuration holds them.
pub type Settings = Map<String, Value>;

/// The type and range a parameter's values must have.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParamType {
    /// An integer in `min..=max`.
    Int(i64, i64),
    /// A number in `min..=max`.
    Float(f64, f64),
    /// Any string (a path, an address).
    Str,
    /// true / false.
    Bool,
}

/// A parameter's value when the scenario does not give one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParamDefault {
    /// Unset (the settings type makes it an `Option`).
    Unset,
    /// An integer.
    Int(i64),
    /// A number.
    Float(f64),
    /// A string.
    Str(&'static str),
    /// A flag.
    Bool(bool),
}

impl ParamDefault {
    /// The value a configuration holds for it.
    pub fn value(self) -> Value {
        match self {
            ParamDefault::Unset => Value::Null,
            ParamDefault::Int(i) => i.into(),
            ParamDefault::Float(f) => f.into(),
            ParamDefault::Str(s) => s.into(),
            ParamDefault::Bool(b) => b.into(),
        }
    }
}

/// One parameter of a link kind, written `[link] key = value`.
#[derive(Debug)]
pub struct LinkParam {
    /// The key (also its flat name in `[sweep]` and `--set`).
    pub key: &'static str,
    /// Type and range.
    pub ty: ParamType,
    /// Value when unset.
    pub default: ParamDefault,
    /// One line of help.
    pub help: &'static str,
}

/// One end of a link, as a driver takes it.
/// A kind opens ends that own their links (`End<'static>`); a runner may
/// wrap one around a link it keeps (`End::Packets(Box::new(&mut faulty))`)
/// to read the wrapper's counters afterwards.
pub enum End<'a> {
    /// A byte stream: the transfer frames its messages (serial, TCP).
    Bytes(Box<dyn ByteLink + Send + 'a>),
    /// Datagrams: one message per packet (UDP).
    Packets(Box<dyn PacketLink + Send + 'a>),
}

impl std::fmt::Debug for End<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            End::Bytes(_) => "End::Bytes",
            End::Packets(_) => "End::Packets",
        })
    }
}

impl End<'_> {
    /// What crossed this end so far.
    pub fn stats(&self) -> crate::LinkStats {
        match self {
            End::Bytes(l) => l.stats(),
            End::Packets(l) => l.stats(),
        }
    }
}

/// Both ends of a link, connected: the sender writes `tx`, the receiver
/// reads `rx`.
#[derive(Debug)]
pub struct Ends {
    /// The sending end.
    pub tx: End<'static>,
    /// The receiving end.
    pub rx: End<'static>,
    /// Largest read the receiver makes, bytes.
    pub chunk: usize,
    /// What the line can carry, bytes per second, when it has a fixed rate
    /// (a serial line); a run reports its utilisation against it.
    pub capacity_bytes_per_s: Option<f64>,
}

/// A receiving end waiting for its sender.
pub trait Listening: Send {
    /// The address the sending end connects to.
    fn address(&self) -> String;
    /// Waits at most `timeout` for the sender; the receiving end.
    fn accept(self: Box<Self>, timeout: Duration) -> Result<End<'static>>;
}

/// A link kind: its settings, read from a configuration by serde (field
/// names are parameter keys), and how to open it.
pub trait LinkKind: Serialize + DeserializeOwned {
    /// The name scenarios give as `[link] kind`.
    const NAME: &'static str;
    /// One line for `perfkit params`.
    const HELP: &'static str;
    /// The parameters this kind reads.
    const PARAMS: &'static [LinkParam];
    /// Whether the two ends can be on two hosts ([`LinkKind::listen`] and
    /// [`LinkKind::connect`] work).
    const ACROSS_HOSTS: bool = true;

    /// Checks what the table's types and ranges cannot express; an error
    /// names the parameter at fault.
    fn check(&self) -> std::result::Result<(), (&'static str, String)> {
        Ok(())
    }

    /// Largest read the receiver makes, bytes.
    fn chunk(&self) -> usize {
        1 << 16
    }

    /// What the line can carry, bytes per second, when it has a fixed rate.
    fn capacity_bytes_per_s(&self) -> Option<f64> {
        None
    }

    /// The receiving end, listening where the settings say (a kind that
    /// cannot span hosts says so).
    fn listen(&self) -> Result<Box<dyn Listening>> {
        Err(Error::config(
            "link",
            format!("link kind `{}` cannot join two hosts", Self::NAME),
        ))
    }

    /// The sending end, connected to a listening receiver's address.
    fn connect(&self, address: &str) -> Result<End<'static>> {
        let _ = address;
        Err(Error::config(
            "link",
            format!("link kind `{}` cannot join two hosts", Self::NAME),
        ))
    }

    /// Opens and connects both ends in this process: by default, listens,
    /// connects to itself and accepts.
    fn open(&self) -> Result<Ends> {
        let listening = self.listen()?;
        let tx = self.connect(&listening.address())?;
        let rx = listening.accept(Duration::from_secs(5))?;
        Ok(Ends {
            tx,
            rx,
            chunk: self.chunk(),
            capacity_bytes_per_s: self.capacity_bytes_per_s(),
        })
    }
}

/// A link kind with its settings type erased, for the table.
#[derive(Debug)]
pub struct Registered {
    /// The name scenarios give as `[link] kind`.
    pub name: &'static str,
    /// One line for `perfkit params`.
    pub help: &'static str,
    /// The parameters this kind reads.
    pub params: &'static [LinkParam],
    /// Whether the two ends can be on two hosts.
    pub across_hosts: bool,
    check: fn(&Settings) -> std::result::Result<(), (String, String)>,
    open: fn(&Settings) -> Result<Ends>,
    listen: fn(&Settings) -> Result<Box<dyn Listening>>,
    connect: fn(&Settings, &str) -> Result<End<'static>>,
}

impl Registered {
    /// The table entry for settings type `T`.
    pub const fn of<T: LinkKind>() -> Registered {
        Registered {
            name: T::NAME,
            help: T::HELP,
            params: T::PARAMS,
            across_hosts: T::ACROSS_HOSTS,
            check: check_erased::<T>,
            open: |s| typed_checked::<T>(s)?.open(),
            listen: |s| typed_checked::<T>(s)?.listen(),
            connect: |s, address| typed_checked::<T>(s)?.connect(address),
        }
    }

    /// The parameters this kind reads, taken from a configuration's values
    /// (a missing one is its default).
    pub fn settings<'a>(&self, value: impl Fn(&str) -> Option<&'a Value>) -> Settings {
        self.params
            .iter()
            .map(|p| {
                let v = value(p.key).cloned().unwrap_or_else(|| p.default.value());
                (p.key.to_owned(), v)
            })
            .collect()
    }

    /// Checks settings: `Err((key, why))` names the parameter at fault.
    pub fn check(&self, settings: &Settings) -> std::result::Result<(), (String, String)> {
        (self.check)(settings)
    }

    /// Opens both ends in this process.
    pub fn open(&self, settings: &Settings) -> Result<Ends> {
        (self.open)(settings)
    }

    /// The receiving end of a run across two hosts, listening.
    pub fn listen(&self, settings: &Settings) -> Result<Box<dyn Listening>> {
        (self.listen)(settings)
    }

    /// The sending end of a run across two hosts, connected to `address`.
    pub fn connect(&self, settings: &Settings, address: &str) -> Result<End<'static>> {
        (self.connect)(settings, address)
    }
}

fn typed<T: LinkKind>(settings: &Settings) -> std::result::Result<T, (String, String)> {
    // Unset parameters are absent, so `Option` fields read as `None`.
    let present: Settings = settings
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    serde_json::from_value(Value::Object(present)).map_err(|e| {
        (
            T::NAME.to_owned(),
            format!("settings of link kind `{}`: {e}", T::NAME),
        )
    })
}

fn check_erased<T: LinkKind>(settings: &Settings) -> std::result::Result<(), (String, String)> {
    typed::<T>(settings)?
        .check()
        .map_err(|(key, why)| (key.to_owned(), why))
}

fn typed_checked<T: LinkKind>(settings: &Settings) -> Result<T> {
    let t = typed::<T>(settings).map_err(|(_, why)| Error::config("link", why))?;
    t.check().map_err(|(key, why)| Error::config(key, why))?;
    Ok(t)
}

/// Every link kind this crate offers scenarios. A new kind is its module
/// plus one line here.
pub static LINK_KINDS: &[Registered] = &[
    Registered::of::<crate::serial::SerialSettings>(),
    Registered::of::<crate::tcp::TcpSettings>(),
    Registered::of::<crate::udp::UdpSettings>(),
];

/// The link kind called `name`.
pub fn link_kind(name: &str) -> Option<&'static Registered> {
    LINK_KINDS.iter().find(|k| k.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_keys_are_declared_once_per_kind() {
        for (i, k) in LINK_KINDS.iter().enumerate() {
            assert!(
                LINK_KINDS[..i].iter().all(|o| o.name != k.name),
                "{} twice",
                k.name
            );
            for (j, p) in k.params.iter().enumerate() {
                assert!(k.params[..j].iter().all(|o| o.key != p.key), "{}", p.key);
            }
        }
    }

    #[test]
    fn every_kind_accepts_its_defaults() {
        for k in LINK_KINDS {
            let s = k.settings(|_| None);
            assert_eq!(k.check(&s), Ok(()), "{}", k.name);
        }
    }

    #[test]
    fn a_shared_key_has_one_type() {
        for a in LINK_KINDS {
            for b in LINK_KINDS {
                for pa in a.params {
                    if let Some(pb) = b.params.iter().find(|p| p.key == pa.key) {
                        assert_eq!(pa.ty, pb.ty, "{} in {} and {}", pa.key, a.name, b.name);
                    }
                }
            }
        }
    }
}
