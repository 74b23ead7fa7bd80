//! The simplifier's inner loop: the largest vertical error of a run of samples against a plane that is linear along
//! the run, `e(k) = |(z0 + k·dz) − h[k]|` in f64, for `k` in a range. Each `e(k)` is computed by the same two rounded
//! operations (a multiply, then an add; never fused) in every implementation, so the vector versions return the
//! same maximum as the scalar twin, bit for bit, and the sample that attains it is found again by the scalar
//! [`first_at`] with the same formula: choices are identical whichever path ran.
//!
//! x86_64 has an AVX2 version (4 lanes, picked at run time) and an SSE2 one (2 lanes, always there); other targets
//! use the scalar loop.

/// The error of sample `k`, as every path computes it.
#[inline(always)]
fn err(h: &[f32], z0: f64, dz: f64, k: usize) -> f64 {
    ((z0 + k as f64 * dz) - h[k] as f64).abs()
}

/// Scalar twin: the largest `e(k)` for `k` in `k0..k1` (−1 for an empty range).
pub fn max_scalar(h: &[f32], z0: f64, dz: f64, k0: usize, k1: usize) -> f64 {
    let mut m = -1.0f64;
    for k in k0..k1 {
        let e = err(h, z0, dz, k);
        if e > m {
            m = e;
        }
    }
    m
}

/// The first `k` in `k0..k1` whose error equals `m` (which [`max`] returned for that range).
pub fn first_at(h: &[f32], z0: f64, dz: f64, k0: usize, k1: usize, m: f64) -> usize {
    (k0..k1).find(|&k| err(h, z0, dz, k) == m).unwrap_or(k0)
}

/// Raises `best` to the largest `e(k)` for `k` in `k0..k1` if that is larger, and returns the first `k` attaining
/// it; `None` (and `best` unchanged) if no sample beats `best`. The same choice as a scalar loop keeping the first
/// strictly larger error; short runs take that loop directly.
#[inline(always)]
pub fn raise(h: &[f32], z0: f64, dz: f64, k0: usize, k1: usize, best: &mut f64) -> Option<usize> {
    if k1 - k0 < RAISE_SCALAR {
        // Selects instead of a branch per sample (a rising error mispredicts it): 5-8% off the scans.
        // k as f64 by a float counter (exact: integers below 2^53) and no bounds check per sample: the same e(k),
        // bit for bit, in fewer instructions.
        let mut b = *best;
        let mut at = usize::MAX;
        let mut kf = k0 as f64;
        for (k, &hv) in h[k0..k1].iter().enumerate() {
            let e = ((z0 + kf * dz) - hv as f64).abs();
            let gt = e > b;
            b = if gt { e } else { b };
            at = if gt { k } else { at };
            kf += 1.0;
        }
        *best = b;
        return (at != usize::MAX).then_some(k0 + at);
    }
    let m = max(h, z0, dz, k0, k1);
    if m > *best {
        *best = m;
        return Some(first_at(h, z0, dz, k0, k1, m));
    }
    None
}

/// Runs shorter than this take the scalar loop in [`raise`] (measured: 4 and 8 were slower on the simplifier's
/// rows, most of which are a few samples long).
const RAISE_SCALAR: usize = 16;

/// The largest `e(k)` for `k` in `k0..k1` (−1 for an empty range), by the fastest path this CPU has.
#[inline]
pub fn max(h: &[f32], z0: f64, dz: f64, k0: usize, k1: usize) -> f64 {
    assert!(k0 <= k1 && k1 <= h.len());
    #[cfg(target_arch = "x86_64")]
    {
        if k1 - k0 >= 4 {
            if avx2() {
                // SAFETY: AVX2 is present (checked above); the range is inside `h` (asserted).
                return unsafe { x86::max_avx2(h, z0, dz, k0, k1) };
            }
            // SAFETY: SSE2 is part of x86_64; the range is inside `h` (asserted).
            return unsafe { x86::max_sse2(h, z0, dz, k0, k1) };
        }
    }
    max_scalar(h, z0, dz, k0, k1)
}

/// Whether the AVX2 path is used (detected once).
#[cfg(target_arch = "x86_64")]
#[inline]
pub fn avx2() -> bool {
    use std::sync::atomic::{AtomicU8, Ordering};
    static HAS: AtomicU8 = AtomicU8::new(0);
    match HAS.load(Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => {
            let has = std::is_x86_feature_detected!("avx2");
            HAS.store(1 + u8::from(has), Ordering::Relaxed);
            has
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub mod x86 {
    use std::arch::x86_64::*;

    /// SSE2, two lanes.
    ///
    /// # Safety
    /// `k0 <= k1 <= h.len()`.
    #[target_feature(enable = "sse2")]
    pub unsafe fn max_sse2(h: &[f32], z0: f64, dz: f64, k0: usize, k1: usize) -> f64 {
        let p = h.as_ptr();
        let abs = _mm_castsi128_pd(_mm_set1_epi64x(i64::MAX));
        let (z0v, dzv) = (_mm_set1_pd(z0), _mm_set1_pd(dz));
        let mut kv = _mm_set_pd((k0 + 1) as f64, k0 as f64);
        let two = _mm_set1_pd(2.0);
        let (mut m0, mut m1) = (_mm_set1_pd(-1.0), _mm_set1_pd(-1.0));
        let mut k = k0;
        while k + 4 <= k1 {
            let h0 = _mm_cvtps_pd(_mm_castpd_ps(_mm_load_sd(p.add(k) as *const f64)));
            let h1 = _mm_cvtps_pd(_mm_castpd_ps(_mm_load_sd(p.add(k + 2) as *const f64)));
            let k1v = _mm_add_pd(kv, two);
            let e0 = _mm_and_pd(_mm_sub_pd(_mm_add_pd(z0v, _mm_mul_pd(kv, dzv)), h0), abs);
            let e1 = _mm_and_pd(_mm_sub_pd(_mm_add_pd(z0v, _mm_mul_pd(k1v, dzv)), h1), abs);
            m0 = _mm_max_pd(m0, e0);
            m1 = _mm_max_pd(m1, e1);
            kv = _mm_add_pd(k1v, two);
            k += 4;
        }
        let m = _mm_max_pd(m0, m1);
        let mut out = [0.0f64; 2];
        _mm_storeu_pd(out.as_mut_ptr(), m);
        out[0].max(out[1]).max(super::max_scalar(h, z0, dz, k, k1))
    }

    /// AVX2, four lanes.
    ///
    /// # Safety
    /// The CPU has AVX2, and `k0 <= k1 <= h.len()`.
    #[target_feature(enable = "avx2")]
    pub unsafe fn max_avx2(h: &[f32], z0: f64, dz: f64, k0: usize, k1: usize) -> f64 {
        if k1 - k0 < 4 {
            // Too short for one vector (the tail below re-reads the last four samples of the range).
            return super::max_scalar(h, z0, dz, k0, k1);
        }
        let p = h.as_ptr();
        let abs = _mm256_castsi256_pd(_mm256_set1_epi64x(i64::MAX));
        let (z0v, dzv) = (_mm256_set1_pd(z0), _mm256_set1_pd(dz));
        let k0f = k0 as f64;
        let mut kv = _mm256_set_pd(k0f + 3.0, k0f + 2.0, k0f + 1.0, k0f);
        let four = _mm256_set1_pd(4.0);
        let (mut m0, mut m1) = (_mm256_set1_pd(-1.0), _mm256_set1_pd(-1.0));
        let mut k = k0;
        while k + 8 <= k1 {
            let h0 = _mm256_cvtps_pd(_mm_loadu_ps(p.add(k)));
            let h1 = _mm256_cvtps_pd(_mm_loadu_ps(p.add(k + 4)));
            let k1v = _mm256_add_pd(kv, four);
            let e0 = _mm256_and_pd(_mm256_sub_pd(_mm256_add_pd(z0v, _mm256_mul_pd(kv, dzv)), h0), abs);
            let e1 = _mm256_and_pd(_mm256_sub_pd(_mm256_add_pd(z0v, _mm256_mul_pd(k1v, dzv)), h1), abs);
            m0 = _mm256_max_pd(m0, e0);
            m1 = _mm256_max_pd(m1, e1);
            kv = _mm256_add_pd(k1v, four);
            k += 8;
        }
        if k + 4 <= k1 {
            let h0 = _mm256_cvtps_pd(_mm_loadu_ps(p.add(k)));
            let e0 = _mm256_and_pd(_mm256_sub_pd(_mm256_add_pd(z0v, _mm256_mul_pd(kv, dzv)), h0), abs);
            m0 = _mm256_max_pd(m0, e0);
            k += 4;
        }
        if k < k1 {
            // The last four samples again (the range has at least four): the maximum is the same, and there is no
            // scalar tail.
            let kl = (k1 - 4) as f64;
            let kt = _mm256_set_pd(kl + 3.0, kl + 2.0, kl + 1.0, kl);
            let h0 = _mm256_cvtps_pd(_mm_loadu_ps(p.add(k1 - 4)));
            let e0 = _mm256_and_pd(_mm256_sub_pd(_mm256_add_pd(z0v, _mm256_mul_pd(kt, dzv)), h0), abs);
            m1 = _mm256_max_pd(m1, e0);
        }
        let m = _mm256_max_pd(m0, m1);
        let m = _mm_max_pd(_mm256_castpd256_pd128(m), _mm256_extractf128_pd::<1>(m));
        _mm_cvtsd_f64(_mm_max_sd(m, _mm_unpackhi_pd(m, m)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `raise` keeps the first strictly larger error from a starting `best`, as one scalar loop does, on short and
    /// long runs, with many ties (few distinct heights, flat and sloped planes) and with starting values that the
    /// run does and does not beat.
    #[test]
    fn raise_is_the_first_strictly_larger() {
        let mut rnd = crate::mesh::xorshift(0x2545f4914f6cdd1du64);
        for _ in 0..20000 {
            let n = (rnd() % 40) as usize + 1;
            let levels = (rnd() % 4) + 1;
            let h: Vec<f32> = (0..n).map(|_| (rnd() % levels) as f32 * 0.5).collect();
            let z0 = (rnd() % 5) as f64 * 0.25;
            let dz = [0.0, 0.5, -0.25, 1.0 / 3.0][(rnd() % 4) as usize];
            let k0 = (rnd() as usize) % n;
            let k1 = k0 + (rnd() as usize) % (n - k0 + 1);
            let start = [-1.0, 0.0, 0.5, 1.0, 100.0][(rnd() % 5) as usize];
            let (mut want_b, mut want_at) = (start, None);
            for k in k0..k1 {
                let e = err(&h, z0, dz, k);
                if e > want_b {
                    want_b = e;
                    want_at = Some(k);
                }
            }
            let mut b = start;
            assert_eq!(raise(&h, z0, dz, k0, k1, &mut b), want_at, "n {n}, {k0}..{k1}, start {start}");
            assert_eq!(b.to_bits(), want_b.to_bits());
        }
    }

    /// Every path returns the scalar twin's maximum bit for bit, on every range of rows with awkward planes.
    #[test]
    fn vector_paths_equal_the_scalar_twin() {
        let mut rnd = crate::mesh::xorshift(0x9e3779b97f4a7c15u64);
        for _ in 0..2000 {
            let n = (rnd() % 70) as usize + 1;
            let h: Vec<f32> = (0..n).map(|_| (rnd() % 100_000) as f32 * 0.037 - 1000.0).collect();
            let z0 = (rnd() % 1_000_000) as f64 * 0.0013 - 600.0;
            let dz = ((rnd() % 20_000) as f64 - 10_000.0) / 7.0;
            let k0 = (rnd() as usize) % n;
            let k1 = k0 + (rnd() as usize) % (n - k0 + 1);
            let want = max_scalar(&h, z0, dz, k0, k1);
            assert_eq!(max(&h, z0, dz, k0, k1).to_bits(), want.to_bits());
            #[cfg(target_arch = "x86_64")]
            {
                // SAFETY: SSE2 is part of x86_64; the range is inside `h`.
                assert_eq!(unsafe { x86::max_sse2(&h, z0, dz, k0, k1) }.to_bits(), want.to_bits());
                if std::is_x86_feature_detected!("avx2") {
                    // SAFETY: checked.
                    assert_eq!(unsafe { x86::max_avx2(&h, z0, dz, k0, k1) }.to_bits(), want.to_bits());
                }
            }
            if k1 > k0 {
                let k = first_at(&h, z0, dz, k0, k1, want);
                assert!((k0..k1).all(|j| err(&h, z0, dz, j) < want || j >= k), "first maximum");
                assert_eq!(err(&h, z0, dz, k), want);
            }
        }
    }
}
