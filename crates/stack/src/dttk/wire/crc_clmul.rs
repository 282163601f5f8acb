//! CRC-16/SPI-FUJITSU by carry-less multiplication (x86_64 PCLMULQDQ).
//!
//! The folding method of Intel's "Fast CRC Computation for Generic
//! Polynomials Using PCLMULQDQ Instruction" (Gopal et al., 2009) for a
//! non-reflected CRC, the case of Linux's `crct10dif-pcl`, with this
//! profile's generator P(x) = x^16 + x^12 + x^5 + 1 (0x1021).
//!
//! Without init and xorout, the CRC of an n-bit message M is
//! `M(x) * x^16 mod P(x)`. Arithmetic is in `GF(2)[x]`: addition is XOR,
//! multiplication is PCLMULQDQ, and any value may be replaced by one
//! congruent to it modulo P:
//!
//! * Load: 16 message bytes are read and byte-reversed (PSHUFB), so the first
//!   message bit is bit 127 of the register, the highest power of x, as the
//!   CRC reads bits MSB first.
//! * Init: for a non-reflected CRC with xorout 0, starting the register at
//!   `init` equals starting at 0 with `init` XORed into the message's first 16
//!   bits (`crc = (M(x) + init(x) * x^(n-16)) * x^16 mod P`), so the init is
//!   XORed into the top 16 bits of the first block (inputs of 16 bytes and
//!   more only).
//! * Fold: a 128-bit value `X = H * x^64 + L` followed by `d` more message
//!   bits contributes `X * x^d ≡ H * (x^(d+64) mod P) + L * (x^d mod P)`, two
//!   64 x 16-bit products that fit in 80 bits, then XORed into the block at
//!   that position. [`FOLD`]`[i]` holds the pair for `d = 128 * i`. The main
//!   loop takes 8 blocks (128 bytes) per step: the running value is folded
//!   over 1024 bits and the 8 new blocks over 896, 768, .., 0 bits, so only
//!   one multiplication per 128 bytes lies on the dependency chain; then one
//!   step of 4 blocks and up to 3 steps of 1 block.
//! * Tail: the last `r` (1..=15) bytes are handled by shifting the running
//!   value left by `r` bytes (PSHUFB): the `r` bytes pushed out on top are
//!   folded over 128 bits, the rest is completed with the last `r` message
//!   bytes (PBLENDVB with the message's last 16 bytes, loaded again).
//! * Reduction of the final 128-bit `R = H * x^64 + L` to
//!   `R * x^16 mod P`: `S = H * (x^80 mod P) + L * x^16` (< 80 bits), then
//!   Barrett: with `mu = floor(x^80 / P)` (degree 64, so `x^64 + MU`), the
//!   quotient is `q = floor(floor(S / x^16) * mu / x^64)` exactly (polynomial
//!   Barrett has no error term when `deg S < 16 + 64`), and
//!   `S + q * P` is the CRC.
//!
//! Every constant is computed at compile time from [`POLY`] by the `const
//! fn`s below; the tests check them against independent arithmetic.
//!
//! Inputs shorter than [`MIN_LEN`] (16 bytes) go to the table: there is no
//! full block to fold. From 16 bytes up folding measured faster at every
//! length tried (see `crate::dttk::wire::crc`).
//!
//! MSRV note: current compilers let intrinsics be called without `unsafe`
//! inside a function with the matching `#[target_feature]` (since Rust 1.87)
//! and `__cpuid` anywhere; the workspace's MSRV 1.85 still needs `unsafe`
//! blocks for both. Those blocks are kept and marked
//! `#[allow(unused_unsafe)]` where they hold nothing else.

use core::arch::x86_64::{
    __cpuid, __m128i, _mm_blendv_epi8, _mm_clmulepi64_si128, _mm_cvtsi128_si32, _mm_loadu_si128,
    _mm_move_epi64, _mm_set1_epi8, _mm_set_epi64x, _mm_setr_epi8, _mm_shuffle_epi8, _mm_slli_si128,
    _mm_srli_si128, _mm_sub_epi8, _mm_xor_si128,
};
use core::sync::atomic::{AtomicU8, Ordering};

use crc::CRC_16_SPI_FUJITSU as ALG;

// The folding below is for a non-reflected CRC-16 without xorout.
const _: () = assert!(ALG.width == 16 && !ALG.refin && !ALG.refout && ALG.xorout == 0);

/// The generator polynomial with its x^16 term: x^16 + x^12 + x^5 + 1.
const POLY: u32 = 0x1_0000 | ALG.poly as u32;
/// The register's initial value (0x1D0F), XORed into the first 16 message bits.
const INIT: u16 = ALG.init;

/// Shortest input the folding path takes; shorter ones use the table.
pub(super) const MIN_LEN: usize = 16;

/// `x^n mod P(x)`, a polynomial of degree < 16.
const fn xn_mod_p(n: u32) -> u64 {
    let mut r: u32 = 1; // x^0
    let mut i = 0;
    while i < n {
        r <<= 1;
        if r & 0x1_0000 != 0 {
            r ^= POLY;
        }
        i += 1;
    }
    r as u64
}

/// Fold constants for a distance of `d` bits: `[x^d mod P, x^(d+64) mod P]`,
/// the multipliers of a 128-bit value's low and high 64-bit halves.
const fn fold_pair(d: u32) -> [u64; 2] {
    [xn_mod_p(d), xn_mod_p(d + 64)]
}

/// `FOLD[i]` folds a 128-bit value over `128 * i` bits (`FOLD[0]` unused).
const FOLD: [[u64; 2]; 9] = {
    let mut t = [[0u64; 2]; 9];
    let mut i = 0;
    while i < t.len() {
        t[i] = fold_pair(128 * i as u32);
        i += 1;
    }
    t
};

/// `x^80 mod P`: multiplies the high half of the final 128-bit value by
/// x^64 (its position) and x^16 (the CRC's factor).
const K80: u64 = xn_mod_p(80);

/// `floor(x^80 / P(x))` without its x^64 term (the Barrett constant `mu`).
const MU: u64 = {
    let mut rem: u128 = 1 << 80;
    let mut q: u128 = 0;
    let mut bit: u32 = 80;
    while bit >= 16 {
        if rem & (1 << bit) != 0 {
            q |= 1 << (bit - 16);
            rem ^= (POLY as u128) << (bit - 16);
        }
        bit -= 1;
    }
    assert!(q >> 64 == 1, "deg P = 16, so floor(x^80 / P) has degree 64");
    q as u64
};

/// CPUID.1:ECX bits: PCLMULQDQ (1), SSSE3 (9), SSE4.1 (19). SSE2 is part of
/// x86_64.
const CPUID1_ECX_NEEDED: u32 = (1 << 1) | (1 << 9) | (1 << 19);

const UNKNOWN: u8 = 0;
const NO: u8 = 1;
const YES: u8 = 2;
/// Whether the CPU has what [`crc16_clmul`] needs (`UNKNOWN` until first
/// asked; a race only repeats the detection, which gives the same answer).
static SUPPORT: AtomicU8 = AtomicU8::new(UNKNOWN);

/// True when the CPU supports PCLMULQDQ, SSSE3 and SSE4.1. One relaxed load
/// once known.
#[inline]
pub(super) fn supported() -> bool {
    match SUPPORT.load(Ordering::Relaxed) {
        YES => true,
        NO => false,
        _ => detect(),
    }
}

#[cold]
#[inline(never)]
fn detect() -> bool {
    // SAFETY: CPUID exists on every x86_64 CPU and leaf 1 is always
    // implemented; the instruction only reads identification registers.
    #[allow(unused_unsafe)] // safe to call since Rust 1.87, unsafe in 1.85
    let ecx = unsafe { __cpuid(1) }.ecx;
    let ok = ecx & CPUID1_ECX_NEEDED == CPUID1_ECX_NEEDED;
    SUPPORT.store(if ok { YES } else { NO }, Ordering::Relaxed);
    ok
}

/// The CRC by folding when the CPU supports it and `bytes` is at least
/// [`MIN_LEN`] long, `None` otherwise.
#[inline]
pub(super) fn checksum(bytes: &[u8]) -> Option<u16> {
    if bytes.len() >= MIN_LEN && supported() {
        // SAFETY: `supported()` confirmed PCLMULQDQ, SSSE3 and SSE4.1 (and
        // SSE2 is baseline), the features `crc16_clmul` is compiled for.
        Some(unsafe { crc16_clmul(bytes) })
    } else {
        None
    }
}

/// The `i`-th 16-byte block of `bytes`.
fn block(bytes: &[u8], i: usize) -> &[u8; 16] {
    bytes[16 * i..16 * i + 16]
        .try_into()
        .expect("a 16-byte range")
}

/// CRC-16/SPI-FUJITSU of `bytes` (at least 16 bytes; panics on less).
///
/// # Safety
///
/// The CPU must support PCLMULQDQ, SSE2, SSSE3 and SSE4.1.
#[target_feature(enable = "pclmulqdq,sse2,ssse3,sse4.1")]
unsafe fn crc16_clmul(bytes: &[u8]) -> u16 {
    let n = bytes.len();
    assert!(n >= 16, "the folding path needs a full block");
    // SAFETY: the helpers called here require only the target features of
    // this function, which its caller guarantees; they read memory through
    // references only.
    unsafe {
        let init = _mm_set_epi64x(((INIT as u64) << 48) as i64, 0);
        let mut x = _mm_xor_si128(load(block(bytes, 0)), init);
        let mut rest = &bytes[16..];
        while rest.len() >= 128 {
            let (blocks, tail) = rest.split_at(128);
            x = fold_blocks::<8>(x, blocks);
            rest = tail;
        }
        if rest.len() >= 64 {
            let (blocks, tail) = rest.split_at(64);
            x = fold_blocks::<4>(x, blocks);
            rest = tail;
        }
        while rest.len() >= 16 {
            let (blocks, tail) = rest.split_at(16);
            x = fold_blocks::<1>(x, blocks);
            rest = tail;
        }
        if !rest.is_empty() {
            x = fold_tail(x, rest.len(), block(&bytes[n - 16..], 0));
        }
        reduce(x)
    }
}

/// Load 16 bytes byte-reversed: the first byte becomes the most significant.
///
/// # Safety
///
/// The CPU must support SSSE3.
#[inline]
#[target_feature(enable = "pclmulqdq,sse2,ssse3,sse4.1")]
unsafe fn load(b: &[u8; 16]) -> __m128i {
    // SAFETY: `b` is 16 readable bytes and `_mm_loadu_si128` has no
    // alignment requirement; PSHUFB needs SSSE3, guaranteed by the caller.
    unsafe {
        let rev = _mm_setr_epi8(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
        _mm_shuffle_epi8(_mm_loadu_si128(b.as_ptr().cast()), rev)
    }
}

/// `x * x^d mod P` as a value below 2^80, with `k = fold_pair(d)`.
///
/// # Safety
///
/// The CPU must support PCLMULQDQ.
#[inline]
#[target_feature(enable = "pclmulqdq,sse2,ssse3,sse4.1")]
#[allow(unused_unsafe)] // see the module's MSRV note
unsafe fn fold(x: __m128i, k: [u64; 2]) -> __m128i {
    // SAFETY: PCLMULQDQ and SSE2, guaranteed by the caller.
    unsafe {
        let k = _mm_set_epi64x(k[1] as i64, k[0] as i64);
        _mm_xor_si128(
            _mm_clmulepi64_si128::<0x00>(x, k),
            _mm_clmulepi64_si128::<0x11>(x, k),
        )
    }
}

/// Fold the running value `x` over the `W` blocks of `blocks` (`16 * W`
/// bytes) and add them: `x * x^(128 W) + sum of block j * x^(128 (W-1-j))`.
///
/// # Safety
///
/// The CPU must support PCLMULQDQ, SSE2 and SSSE3.
#[inline]
#[target_feature(enable = "pclmulqdq,sse2,ssse3,sse4.1")]
unsafe fn fold_blocks<const W: usize>(x: __m128i, blocks: &[u8]) -> __m128i {
    // SAFETY: `load` and `fold` need the features the caller guarantees.
    unsafe {
        // The new blocks do not depend on `x`; add `x`'s part last so only
        // one multiplication and one XOR are on the dependency chain.
        let mut acc = load(block(blocks, W - 1));
        let mut j = 0;
        while j + 1 < W {
            acc = _mm_xor_si128(acc, fold(load(block(blocks, j)), FOLD[W - 1 - j]));
            j += 1;
        }
        _mm_xor_si128(fold(x, FOLD[W]), acc)
    }
}

/// Append the last `r` (1..=15) message bytes to the running value `x`;
/// `last` is the message's last 16 bytes (their first `16 - r` bytes are
/// already in `x`).
///
/// # Safety
///
/// The CPU must support PCLMULQDQ, SSE2, SSSE3 and SSE4.1.
#[inline]
#[target_feature(enable = "pclmulqdq,sse2,ssse3,sse4.1")]
unsafe fn fold_tail(x: __m128i, r: usize, last: &[u8; 16]) -> __m128i {
    debug_assert!((1..16).contains(&r));
    // SAFETY: `load` and `fold` and the SSE2/SSSE3/SSE4.1 intrinsics need
    // the features the caller guarantees.
    unsafe {
        let ident = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        // PSHUFB masks. Byte i of `shl` is i - r: for i >= r it selects
        // byte i - r (x shifted left by r bytes), for i < r it is negative,
        // its top bit is set and PSHUFB writes 0. `shl ^ 0x80` flips that:
        // byte i < r selects byte (i - r) mod 16 = i + 16 - r (x shifted
        // right by 16 - r bytes), bytes i >= r become 0.
        let shl = _mm_sub_epi8(ident, _mm_set1_epi8(r as i8));
        let shr = _mm_xor_si128(shl, _mm_set1_epi8(-128));
        let low = _mm_shuffle_epi8(x, shl);
        let high = _mm_shuffle_epi8(x, shr);
        // The low r bytes of the reversed last block are the tail; the
        // blend takes them where `shl`'s top bit is set, i.e. bytes < r.
        let b = _mm_blendv_epi8(low, load(last), shl);
        _mm_xor_si128(fold(high, FOLD[1]), b)
    }
}

/// `x * x^16 mod P(x)` for a 128-bit `x`: the CRC.
///
/// # Safety
///
/// The CPU must support PCLMULQDQ and SSE2.
#[inline]
#[target_feature(enable = "pclmulqdq,sse2,ssse3,sse4.1")]
#[allow(unused_unsafe)] // see the module's MSRV note
unsafe fn reduce(x: __m128i) -> u16 {
    // SAFETY: PCLMULQDQ and SSE2, guaranteed by the caller.
    unsafe {
        let k = _mm_set_epi64x(MU as i64, K80 as i64);
        let p = _mm_set_epi64x(0, POLY as i64);
        // S = H * (x^80 mod P) + L * x^16, below 2^80.
        let s = _mm_xor_si128(
            _mm_clmulepi64_si128::<0x01>(x, k),
            _mm_slli_si128::<2>(_mm_move_epi64(x)),
        );
        // Barrett: t = floor(S / x^16) (< 2^64, the low half),
        // q = floor(t * (x^64 + MU) / x^64) = t + floor(t * MU / x^64).
        let t = _mm_srli_si128::<2>(s);
        let q = _mm_xor_si128(t, _mm_srli_si128::<8>(_mm_clmulepi64_si128::<0x10>(t, k)));
        // S + q * P = S mod P, below 2^16.
        let crc = _mm_xor_si128(s, _mm_clmulepi64_si128::<0x00>(q, p));
        _mm_cvtsi128_si32(crc) as u16
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::dttk::wire::crc::{self, SLICE16};
    use proptest::prelude::*;
    use rand::{RngCore, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use std::vec;
    use std::vec::Vec;

    /// The folding path, or `None` (test skipped) on a CPU without it.
    fn kernel(bytes: &[u8]) -> Option<u16> {
        if !supported() {
            std::eprintln!("CPU lacks PCLMULQDQ/SSSE3/SSE4.1: folding path not tested");
            return None;
        }
        // SAFETY: `supported()` just confirmed the features.
        Some(unsafe { crc16_clmul(bytes) })
    }

    fn random(seed: u64, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut v);
        v
    }

    /// Bit at a time, MSB first, straight from the definition.
    fn bitwise(data: &[u8]) -> u16 {
        let mut reg = INIT;
        for &byte in data {
            for i in (0..8).rev() {
                let top = (reg >> 15) ^ ((byte as u16 >> i) & 1);
                reg <<= 1;
                if top != 0 {
                    reg ^= 0x1021;
                }
            }
        }
        reg
    }

    /// Carry-less product in software.
    fn clmul_sw(a: u128, b: u128) -> u128 {
        (0..128)
            .filter(|i| b >> i & 1 != 0)
            .fold(0, |acc, i| acc ^ (a << i))
    }

    #[test]
    fn check_value() {
        assert_eq!(ALG.check, 0xE5CC);
        assert_eq!(crc::crc16(b"123456789"), 0xE5CC);
        if supported() {
            assert_eq!(crc::clmul(b"123456789"), Some(0xE5CC));
        }
        // The folding path itself on inputs of 16 bytes and more.
        let long = b"123456789123456789123456789123456789";
        for n in 16..=long.len() {
            if let Some(c) = kernel(&long[..n]) {
                assert_eq!(c, bitwise(&long[..n]), "len {n}");
            }
        }
    }

    #[test]
    fn constants_follow_from_the_polynomial() {
        assert_eq!(POLY, 0x1_1021);
        assert_eq!(INIT, 0x1D0F);
        assert_eq!(xn_mod_p(0), 1);
        assert_eq!(xn_mod_p(15), 0x8000);
        assert_eq!(xn_mod_p(16), 0x1021);
        // x^d mod P by repeated squaring and multiplication in software.
        fn mod_p(mut v: u128) -> u64 {
            for bit in (16..128).rev() {
                if v >> bit & 1 != 0 {
                    v ^= (POLY as u128) << (bit - 16);
                }
            }
            v as u64
        }
        let x64 = mod_p(1 << 64) as u128;
        for (i, &[lo, hi]) in FOLD.iter().enumerate() {
            let d = 128 * i as u32;
            // x^(128 i) = (x^64)^(2 i)
            let mut want = 1u128;
            for _ in 0..2 * i {
                want = mod_p(clmul_sw(want, x64)) as u128;
            }
            assert_eq!(lo as u128, want, "x^{d} mod P");
            assert_eq!(
                hi as u128,
                mod_p(clmul_sw(want, x64)) as u128,
                "x^{} mod P",
                d + 64
            );
            assert!(lo < 1 << 16 && hi < 1 << 16);
        }
        assert_eq!(K80, mod_p(1 << 80));
        // mu = floor(x^80 / P): x^80 + mu * P has degree < 16.
        let mu = (1u128 << 64) | MU as u128;
        assert!((clmul_sw(mu, POLY as u128) ^ (1 << 80)) < 1 << 16);
    }

    #[test]
    fn cpu_detection_matches_std_and_is_cached() {
        let want = std::is_x86_feature_detected!("pclmulqdq")
            && std::is_x86_feature_detected!("ssse3")
            && std::is_x86_feature_detected!("sse4.1");
        assert_eq!(supported(), want);
        assert_eq!(SUPPORT.load(Ordering::Relaxed), if want { YES } else { NO });
        assert_eq!(supported(), want);
        assert_eq!(crc::clmul(b"").is_some(), want);
    }

    #[test]
    fn every_length_up_to_1024_matches_the_table() {
        let data = random(1, 1024 + 15);
        for off in [0, 1, 7] {
            for n in 0..=1024 {
                let s = &data[off..off + n];
                let want = SLICE16.checksum(s);
                assert_eq!(crc::crc16(s), want, "crc16 len {n} offset {off}");
                if let Some(c) = crc::clmul(s) {
                    assert_eq!(c, want, "clmul len {n} offset {off}");
                }
                if n >= 16 {
                    if let Some(c) = kernel(s) {
                        assert_eq!(c, want, "kernel len {n} offset {off}");
                    }
                }
            }
        }
    }

    #[test]
    fn uniform_inputs_match_the_table() {
        for fill in [0x00u8, 0xFF] {
            let data = vec![fill; 1 << 20];
            let lens = (16..=300).chain([511, 512, 513, 4095, 4096, 65536, 1 << 20]);
            for n in lens {
                if let Some(c) = kernel(&data[..n]) {
                    assert_eq!(c, SLICE16.checksum(&data[..n]), "{fill:#x} x {n}");
                }
            }
        }
    }

    #[test]
    fn bitwise_reference_agrees_on_random_input() {
        let data = random(2, 600);
        for n in (16..=600).step_by(13) {
            if let Some(c) = kernel(&data[..n]) {
                assert_eq!(c, bitwise(&data[..n]), "len {n}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn random_slices_up_to_64k_match_the_table(
            seed in any::<u64>(),
            len in 0usize..=65536,
            offset in 0usize..64,
        ) {
            let data = random(seed, offset + len);
            let s = &data[offset..];
            let want = SLICE16.checksum(s);
            prop_assert_eq!(crc::crc16(s), want);
            if let Some(c) = crc::clmul(s) {
                prop_assert_eq!(c, want);
            }
        }
    }
}
