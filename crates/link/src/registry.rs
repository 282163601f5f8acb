//! The byte-stream link kinds a scenario can name, each with its own
//! parameter table and settings type.
//!
//! A kind is a settings struct that implements [`StreamLink`]: its name,
//! the parameters scenarios write under `[link]` (type, range, default,
//! help), and how to open both ends. The scenario loader composes every
//! kind's table into its own, so `perfkit params`, `[sweep]`, `--set` and
//! the file:line:key errors cover a new kind's parameters with no change
//! outside this crate; the harness runs every kind through the same
//! byte-stream driver. Adding a link kind is its module plus one line in
//! [`STREAM_LINKS`].
//!
//! Parameters are flat names shared across kinds: a kind that declares a
//! name another kind (or the scenario loader) already declares must give it
//! the same type, so one value means one thing everywhere.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::{ByteLink, Result};

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

/// Both ends of a byte-stream link, connected: the sender writes `tx`, the
/// receiver reads `rx`.
pub struct StreamEnds {
    /// The sending end.
    pub tx: Box<dyn ByteLink + Send>,
    /// The receiving end.
    pub rx: Box<dyn ByteLink + Send>,
    /// Largest read the receiver makes, bytes.
    pub chunk: usize,
    /// What the line can carry, bytes per second, when it has a fixed rate
    /// (a serial line); a run reports its utilisation against it.
    pub capacity_bytes_per_s: Option<f64>,
}

/// A byte-stream link kind: its settings, read from a configuration by
/// serde (field names are parameter keys), and how to open it.
pub trait StreamLink: Serialize + DeserializeOwned {
    /// The name scenarios give as `[link] kind`.
    const NAME: &'static str;
    /// One line for `perfkit params`.
    const HELP: &'static str;
    /// The parameters this kind reads.
    const PARAMS: &'static [LinkParam];

    /// Checks what the table's types and ranges cannot express; an error
    /// names the parameter at fault.
    fn check(&self) -> std::result::Result<(), (&'static str, String)> {
        Ok(())
    }

    /// Opens and connects both ends.
    fn open(&self) -> Result<StreamEnds>;
}

/// A link kind with its settings type erased, for the table.
#[derive(Debug)]
pub struct StreamKind {
    /// The name scenarios give as `[link] kind`.
    pub name: &'static str,
    /// One line for `perfkit params`.
    pub help: &'static str,
    /// The parameters this kind reads.
    pub params: &'static [LinkParam],
    check: fn(&Settings) -> std::result::Result<(), (String, String)>,
    open: fn(&Settings) -> Result<StreamEnds>,
}

impl StreamKind {
    /// The table entry for settings type `T`.
    pub const fn of<T: StreamLink>() -> StreamKind {
        StreamKind {
            name: T::NAME,
            help: T::HELP,
            params: T::PARAMS,
            check: check_erased::<T>,
            open: open_erased::<T>,
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

    /// Opens both ends.
    pub fn open(&self, settings: &Settings) -> Result<StreamEnds> {
        (self.open)(settings)
    }
}

fn typed<T: StreamLink>(settings: &Settings) -> std::result::Result<T, (String, String)> {
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

fn check_erased<T: StreamLink>(settings: &Settings) -> std::result::Result<(), (String, String)> {
    typed::<T>(settings)?
        .check()
        .map_err(|(key, why)| (key.to_owned(), why))
}

fn open_erased<T: StreamLink>(settings: &Settings) -> Result<StreamEnds> {
    let t = typed::<T>(settings).map_err(|(_, why)| crate::Error::config("link", why))?;
    t.check()
        .map_err(|(key, why)| crate::Error::config(key, why))?;
    t.open()
}

/// Every byte-stream link kind. A new kind is its module plus one line here.
pub static STREAM_LINKS: &[StreamKind] = &[
    StreamKind::of::<crate::serial::SerialSettings>(),
    StreamKind::of::<crate::tcp::TcpSettings>(),
];

/// The byte-stream link kind called `name`.
pub fn stream_link(name: &str) -> Option<&'static StreamKind> {
    STREAM_LINKS.iter().find(|k| k.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_keys_are_declared_once_per_kind() {
        for (i, k) in STREAM_LINKS.iter().enumerate() {
            assert!(
                STREAM_LINKS[..i].iter().all(|o| o.name != k.name),
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
        for k in STREAM_LINKS {
            let s = k.settings(|_| None);
            assert_eq!(k.check(&s), Ok(()), "{}", k.name);
        }
    }

    #[test]
    fn a_shared_key_has_one_type() {
        for a in STREAM_LINKS {
            for b in STREAM_LINKS {
                for pa in a.params {
                    if let Some(pb) = b.params.iter().find(|p| p.key == pa.key) {
                        assert_eq!(pa.ty, pb.ty, "{} in {} and {}", pa.key, a.name, b.name);
                    }
                }
            }
        }
    }
}
