//! The one record of a call site's statistics, wherever it is measured, and
//! its compact binary form.
//!
//! A [`SiteRecord`] is what a snapshot gives per site, what a results file
//! stores per stage (`perfkit-report`'s `Stage` is this type), and what
//! firmware sends to the host in its report. Every column is listed here
//! once: the struct, [`SiteRecord::from_site`] (reading a live [`Site`]),
//! [`SiteRecord::map_durations`] (changing the time unit) and the binary
//! codec ([`SiteRecord::encode`], [`SiteRecord::decode`]). A new column is a
//! change in this file plus its rendering.
//!
//! The name is a type parameter so firmware without an allocator can build
//! records of `&'static str` names and a decoder can borrow names from the
//! bytes; hosts use `SiteRecord<String>`. Serde (the results file's form) is
//! behind the `serde` feature, without `std`.
//!
//! # Binary form
//!
//! Big-endian like the dttk profile it travels in; durations in whatever
//! unit the record holds (device clock ticks in a device report), counts and
//! durations but `cum` and `bytes` saturated to `u32`:
//!
//! ```text
//! name_len u8 | name | calls u32 | min u32 | max u32 | cum u64
//!             | p50 u32 | p90 u32 | p99 u32 | p999 u32 | bytes u64
//! ```
//!
//! `bytes` 0 means the site counts no bytes. `cum_cycles` is not sent: the
//! receiver knows whether the sender's ticks are cycles.

use crate::site::Site;

/// Longest name [`SiteRecord::encode`] writes, in bytes; longer names are cut
/// at a character boundary.
pub const MAX_NAME: usize = 64;

/// The share of calls [`SiteRecord::tmean_ns`] averages: all but the slowest 1 %.
pub const TRIMMED_KEEP: f64 = 0.99;

/// Bytes of the binary form after the name.
const FIXED: usize = 4 + 4 + 4 + 8 + 4 + 4 + 4 + 4 + 8;

/// Statistics of one measured call site.
///
/// Durations are in nanoseconds in a snapshot and a results file, in device
/// clock ticks on the wire from firmware (see [`SiteRecord::map_durations`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(deny_unknown_fields)
)]
pub struct SiteRecord<N> {
    /// Site name (`crc16`, `sender::add_header`, ...).
    pub name: N,
    /// Number of completed measurements.
    pub calls: u64,
    /// Shortest measurement.
    pub min_ns: u64,
    /// Longest measurement.
    pub max_ns: u64,
    /// Sum of all measurements.
    pub cum_ns: u64,
    /// Median (histogram bucket midpoint, clamped to [min, max]).
    pub p50_ns: u64,
    /// 90th percentile.
    #[cfg_attr(feature = "serde", serde(default))]
    pub p90_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    #[cfg_attr(feature = "serde", serde(default))]
    pub p999_ns: u64,
    /// Trimmed mean: the mean of the fastest 99 % of the calls (histogram
    /// bucket midpoints). Where the clock is coarse this follows the true
    /// duration of a short call, which the percentiles, each one bucket's
    /// value, do not (see [`crate::hist::Histogram::trimmed_mean`]). Hosts
    /// fill it in; a device's binary report does not carry it.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub tmean_ns: Option<u64>,
    /// Bytes the site processed, when it counts them (gives MB/s).
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub bytes: Option<u64>,
    /// Device cycles where the clock counts cycles (firmware).
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub cum_cycles: Option<u64>,
}

/// Why bytes are not a [`SiteRecord`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes end inside the record.
    Truncated,
    /// The name is not UTF-8.
    NameNotUtf8,
}

impl DecodeError {
    /// A short description, for messages that wrap it.
    pub fn as_str(self) -> &'static str {
        match self {
            DecodeError::Truncated => "truncated",
            DecodeError::NameNotUtf8 => "name is not UTF-8",
        }
    }
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl SiteRecord<&'static str> {
    /// A live site's statistics in raw clock ticks (`cum_cycles` unset).
    pub fn from_site(site: &'static Site) -> Self {
        let q = |q: f64| site.quantile_ticks(q).unwrap_or(0);
        let bytes = site.bytes();
        SiteRecord {
            name: site.name(),
            calls: site.calls(),
            min_ns: site.min_ticks(),
            max_ns: site.max_ticks(),
            cum_ns: site.cum_ticks(),
            p50_ns: q(0.50),
            p90_ns: q(0.90),
            p99_ns: q(0.99),
            p999_ns: q(0.999),
            // Hosts only: firmware's report has no room for it, and the
            // device's code stays as it was.
            #[cfg(feature = "std")]
            tmean_ns: site.trimmed_mean_ticks(TRIMMED_KEEP),
            #[cfg(not(feature = "std"))]
            tmean_ns: None,
            bytes: (bytes > 0).then_some(bytes),
            cum_cycles: None,
        }
    }
}

impl<N> SiteRecord<N> {
    /// The numeric columns by the names results files and gate thresholds
    /// use (`stage.<site>.<column>`), in table order.
    pub const COLUMNS: &'static [&'static str] = &[
        "calls", "min_ns", "max_ns", "cum_ns", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "tmean_ns",
    ];

    /// A numeric column by name (one of [`Self::COLUMNS`], or `bytes` and
    /// `cum_cycles`), where the site has it (`tmean_ns`, `bytes` and
    /// `cum_cycles` are optional).
    pub fn column(&self, name: &str) -> Option<u64> {
        Some(match name {
            "calls" => self.calls,
            "min_ns" => self.min_ns,
            "max_ns" => self.max_ns,
            "cum_ns" => self.cum_ns,
            "p50_ns" => self.p50_ns,
            "p90_ns" => self.p90_ns,
            "p99_ns" => self.p99_ns,
            "p999_ns" => self.p999_ns,
            "tmean_ns" => return self.tmean_ns,
            "bytes" => return self.bytes,
            "cum_cycles" => return self.cum_cycles,
            _ => return None,
        })
    }

    /// The same record with every duration passed through `f` (ticks to
    /// nanoseconds); counts, bytes and cycles are kept.
    pub fn map_durations(self, f: impl Fn(u64) -> u64) -> Self {
        SiteRecord {
            min_ns: f(self.min_ns),
            max_ns: f(self.max_ns),
            cum_ns: f(self.cum_ns),
            p50_ns: f(self.p50_ns),
            p90_ns: f(self.p90_ns),
            p99_ns: f(self.p99_ns),
            p999_ns: f(self.p999_ns),
            tmean_ns: self.tmean_ns.map(&f),
            ..self
        }
    }

    /// The same record under another name type (`&str` to `String`, or a renamed site).
    pub fn map_name<M>(self, f: impl FnOnce(N) -> M) -> SiteRecord<M> {
        SiteRecord {
            name: f(self.name),
            calls: self.calls,
            min_ns: self.min_ns,
            max_ns: self.max_ns,
            cum_ns: self.cum_ns,
            p50_ns: self.p50_ns,
            p90_ns: self.p90_ns,
            p99_ns: self.p99_ns,
            p999_ns: self.p999_ns,
            tmean_ns: self.tmean_ns,
            bytes: self.bytes,
            cum_cycles: self.cum_cycles,
        }
    }

    /// Throughput in MB/s (10^6 bytes per second of measured time, the
    /// durations taken as nanoseconds), if the site counts bytes.
    pub fn mb_per_s(&self) -> Option<f64> {
        let bytes = self.bytes.filter(|&b| b > 0)?;
        (self.cum_ns > 0).then(|| bytes as f64 * 1e3 / self.cum_ns as f64)
    }
}

impl<N: AsRef<str>> SiteRecord<N> {
    /// The name as [`SiteRecord::encode`] writes it: at most [`MAX_NAME`]
    /// bytes, cut at a character boundary so it stays UTF-8.
    fn wire_name(&self) -> &[u8] {
        let s = self.name.as_ref();
        let mut n = s.len().min(MAX_NAME);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        &s.as_bytes()[..n]
    }

    /// Length of the binary form.
    pub fn encoded_len(&self) -> usize {
        1 + self.wire_name().len() + FIXED
    }

    /// Writes the binary form to the start of `out` and returns its length,
    /// or `None` (nothing written) when `out` is shorter than
    /// [`SiteRecord::encoded_len`].
    pub fn encode(&self, out: &mut [u8]) -> Option<usize> {
        let name = self.wire_name();
        let len = 1 + name.len() + FIXED;
        let out = out.get_mut(..len)?;
        let sat = |v: u64| u32::try_from(v).unwrap_or(u32::MAX).to_be_bytes();
        let (head, mut rest) = out.split_at_mut(1 + name.len());
        head[0] = name.len() as u8;
        head[1..].copy_from_slice(name);
        let mut put = |b: &[u8]| {
            let (a, b_rest) = core::mem::take(&mut rest).split_at_mut(b.len());
            a.copy_from_slice(b);
            rest = b_rest;
        };
        put(&sat(self.calls));
        put(&sat(self.min_ns));
        put(&sat(self.max_ns));
        put(&self.cum_ns.to_be_bytes());
        put(&sat(self.p50_ns));
        put(&sat(self.p90_ns));
        put(&sat(self.p99_ns));
        put(&sat(self.p999_ns));
        put(&self.bytes.unwrap_or(0).to_be_bytes());
        Some(len)
    }
}

impl<'a> SiteRecord<&'a str> {
    /// Reads one record from the start of `buf` and advances `buf` past it.
    /// On error `buf` is left as it was.
    pub fn decode(buf: &mut &'a [u8]) -> Result<Self, DecodeError> {
        let mut r: &'a [u8] = buf;
        let mut take = |n: usize| -> Result<&'a [u8], DecodeError> {
            if r.len() < n {
                return Err(DecodeError::Truncated);
            }
            let (a, b) = r.split_at(n);
            r = b;
            Ok(a)
        };
        let name_len = take(1)?[0] as usize;
        let name = core::str::from_utf8(take(name_len)?).map_err(|_| DecodeError::NameNotUtf8)?;
        let f = take(FIXED)?;
        let u32_at = |i: usize| u32::from_be_bytes([f[i], f[i + 1], f[i + 2], f[i + 3]]) as u64;
        let u64_at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&f[i..i + 8]);
            u64::from_be_bytes(a)
        };
        let bytes = u64_at(36);
        let rec = SiteRecord {
            name,
            calls: u32_at(0),
            min_ns: u32_at(4),
            max_ns: u32_at(8),
            cum_ns: u64_at(12),
            p50_ns: u32_at(20),
            p90_ns: u32_at(24),
            p99_ns: u32_at(28),
            p999_ns: u32_at(32),
            bytes: (bytes > 0).then_some(bytes),
            tmean_ns: None,
            cum_cycles: None,
        };
        *buf = r;
        Ok(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_reads_its_own_field() {
        let r = SiteRecord {
            name: "s",
            calls: 1,
            min_ns: 2,
            max_ns: 3,
            cum_ns: 4,
            p50_ns: 5,
            p90_ns: 6,
            p99_ns: 7,
            p999_ns: 8,
            tmean_ns: Some(9),
            bytes: Some(10),
            cum_cycles: None,
        };
        assert_eq!(SiteRecord::<&str>::COLUMNS.len(), 9);
        for (c, want) in SiteRecord::<&str>::COLUMNS.iter().zip(1..) {
            assert_eq!(r.column(c), Some(want), "{c}");
        }
        assert_eq!(r.column("bytes"), Some(10));
        assert_eq!(r.column("cum_cycles"), None);
        let r = SiteRecord {
            tmean_ns: None,
            ..r
        };
        assert_eq!(r.column("tmean_ns"), None);
        assert_eq!(r.column("nope"), None);
    }

    // Bytes written out by hand from the format above, so the codec is
    // checked against the format, not only against itself.
    const CRC16: &[u8] = &[
        0x05, b'c', b'r', b'c', b'1', b'6', // name
        0x00, 0x00, 0x02, 0xB7, // calls 695
        0x00, 0x00, 0x0B, 0xB8, // min 3000
        0x00, 0x00, 0x0F, 0xA0, // max 4000
        0x00, 0x00, 0x00, 0x00, 0x00, 0x22, 0xB8, 0x78, // cum 2_275_448
        0x00, 0x00, 0x0C, 0x1C, // p50 3100
        0x00, 0x00, 0x0C, 0x80, // p90 3200
        0x00, 0x00, 0x0F, 0x3C, // p99 3900
        0x00, 0x00, 0x0F, 0x96, // p999 3990
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x87, 0x96, // bytes 34_710
    ];

    fn crc16() -> SiteRecord<&'static str> {
        SiteRecord {
            name: "crc16",
            calls: 695,
            min_ns: 3000,
            max_ns: 4000,
            cum_ns: 2_275_448,
            p50_ns: 3100,
            p90_ns: 3200,
            p99_ns: 3900,
            p999_ns: 3990,
            bytes: Some(34_710),
            tmean_ns: None,
            cum_cycles: None,
        }
    }

    #[test]
    fn decodes_and_encodes_the_written_out_form() {
        let mut b = CRC16;
        assert_eq!(SiteRecord::decode(&mut b), Ok(crc16()));
        assert!(b.is_empty());
        let mut out = [0u8; 64];
        assert_eq!(crc16().encoded_len(), CRC16.len());
        assert_eq!(crc16().encode(&mut out), Some(CRC16.len()));
        assert_eq!(&out[..CRC16.len()], CRC16);
        assert_eq!(crc16().encode(&mut out[..CRC16.len() - 1]), None);
    }

    #[test]
    fn long_names_are_cut_on_a_character_boundary() {
        // 63 ASCII bytes then a 2-byte character: 64 bytes would split it.
        let name: &'static str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaé";
        let r = SiteRecord { name, ..crc16() };
        let mut out = [0u8; 128];
        let n = r.encode(&mut out).unwrap();
        let mut b = &out[..n];
        assert_eq!(SiteRecord::decode(&mut b).unwrap().name, &name[..63]);
    }

    #[test]
    fn truncated_and_bad_names_are_errors() {
        for n in 0..CRC16.len() {
            let mut b = &CRC16[..n];
            assert_eq!(SiteRecord::decode(&mut b), Err(DecodeError::Truncated));
            assert_eq!(b.len(), n, "input left as it was");
        }
        let mut bad = [0u8; 50];
        bad.copy_from_slice(CRC16);
        bad[1] = 0xFF;
        assert_eq!(
            SiteRecord::decode(&mut &bad[..]),
            Err(DecodeError::NameNotUtf8)
        );
    }

    #[test]
    fn map_durations_keeps_counts() {
        let r = crc16().map_durations(|t| t * 8);
        assert_eq!(
            (r.min_ns, r.p999_ns, r.cum_ns),
            (24_000, 31_920, 18_203_584)
        );
        assert_eq!((r.calls, r.bytes), (695, Some(34_710)));
    }

    proptest::proptest! {
        // Any record whose counts fit the form's u32 columns comes back
        // as it was (names at most MAX_NAME bytes); any bytes decode to a
        // record or an error, never a panic.
        #[test]
        fn round_trips(
            name in "\\PC{0,16}",
            small in proptest::array::uniform7(0..=u32::MAX as u64),
            cum: u64,
            bytes in proptest::option::of(1..=u64::MAX),
        ) {
            let r = SiteRecord {
                name: name.as_str(),
                calls: small[0],
                min_ns: small[1],
                max_ns: small[2],
                cum_ns: cum,
                p50_ns: small[3],
                p90_ns: small[4],
                p99_ns: small[5],
                p999_ns: small[6],
                bytes,
                tmean_ns: None,
                cum_cycles: None,
            };
            let mut out = [0u8; 1 + MAX_NAME + FIXED];
            let n = r.encode(&mut out).unwrap();
            proptest::prop_assert_eq!(n, r.encoded_len());
            let mut b = &out[..n];
            proptest::prop_assert_eq!(SiteRecord::decode(&mut b), Ok(r));
            proptest::prop_assert!(b.is_empty());
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..80)) {
            let mut b = &bytes[..];
            if SiteRecord::decode(&mut b).is_err() {
                proptest::prop_assert_eq!(b.len(), bytes.len());
            }
        }
    }
}
