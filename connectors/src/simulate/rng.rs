//! The simulator's own random numbers and math: xoshiro256** seeded by splitmix64, the
//! Marsaglia polar method for normals, and fdlibm's `ln` / `exp` built from IEEE-754
//! basic operations only.
//!
//! Nothing here calls the platform's libm, whose `ln` and `exp` may differ in the last
//! bit between platforms and releases; `+ - * /`, `sqrt` and float-to-integer casts
//! are exactly specified and Rust never fuses them into FMAs. So a seed gives the same
//! numbers, bit for bit, on every platform, forever.

use operators::splitmix::{splitmix64, GOLDEN};

/// xoshiro256** with a cached second normal from the polar method.
#[derive(Clone, Debug)]
pub(crate) struct Rng {
    s: [u64; 4],
    spare: Option<f64>,
}

impl Rng {
    /// An independent stream number `stream` of the master seed `seed`.
    pub(crate) fn stream(seed: u64, mut stream: u64) -> Rng {
        let mut sm = seed ^ splitmix64(&mut stream);
        let mut s = [0u64; 4];
        for word in &mut s {
            *word = splitmix64(&mut sm);
        }
        if s == [0; 4] {
            s[0] = GOLDEN; // the one state xoshiro cannot leave
        }
        Rng { s, spare: None }
    }

    /// The next 64 random bits.
    #[inline]
    pub(crate) fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1), a multiple of 2^-53.
    #[inline]
    pub(crate) fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [lo, hi).
    #[inline]
    pub(crate) fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Exponential with mean 1.
    #[inline]
    pub(crate) fn exponential(&mut self) -> f64 {
        -ln(1.0 - self.uniform()) // 1 - u is in (0, 1]
    }

    /// Standard normal (Marsaglia's polar method; every second call is free).
    #[inline]
    pub(crate) fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        loop {
            let u = 2.0 * self.uniform() - 1.0;
            let v = 2.0 * self.uniform() - 1.0;
            let s = u * u + v * v;
            if s > 0.0 && s < 1.0 {
                let m = (-2.0 * ln(s) / s).sqrt();
                self.spare = Some(v * m);
                return u * m;
            }
        }
    }
}

/// ln 2 split in a part with zero low bits (so `k * LN2_HI` is exact) and the rest.
const LN2_HI: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000);
const LN2_LO: f64 = f64::from_bits(0x3DEA_39EF_3579_3C76);
/// 1 / ln 2.
const INV_LN2: f64 = f64::from_bits(0x3FF7_1547_652B_82FE);

/// fdlibm's minimax coefficients of `ln` (`e_log.c`, Lg1..Lg7).
const LG: [f64; 7] = [
    f64::from_bits(0x3FE5_5555_5555_5593),
    f64::from_bits(0x3FD9_9999_9997_FA04),
    f64::from_bits(0x3FD2_4924_9422_9359),
    f64::from_bits(0x3FCC_71C5_1D8E_78AF),
    f64::from_bits(0x3FC7_4664_96CB_03DE),
    f64::from_bits(0x3FC3_9A09_D078_C69F),
    f64::from_bits(0x3FC2_F112_DF3E_5244),
];

/// fdlibm's minimax coefficients of `exp` (`e_exp.c`, P1..P5).
const P: [f64; 5] = [
    f64::from_bits(0x3FC5_5555_5555_553E),
    f64::from_bits(0xBF66_C16C_16BE_BD93),
    f64::from_bits(0x3F11_566A_AF25_DE2C),
    f64::from_bits(0xBEBB_BD41_C5D2_6BF1),
    f64::from_bits(0x3E66_3769_72BE_A4D0),
];

/// Natural logarithm (fdlibm's algorithm, within 1 ulp), from basic operations only.
/// Returns NaN for negative or NaN inputs, -inf for 0, inf for inf.
pub(crate) fn ln(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return f64::NEG_INFINITY;
    }
    if x.is_infinite() {
        return x;
    }
    let (mut x, mut k) = (x, 0i64);
    if x < f64::MIN_POSITIVE {
        x *= (1u64 << 54) as f64; // subnormal: make it normal
        k -= 54;
    }
    let bits = x.to_bits();
    k += ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        k += 1;
    }
    // ln m = 2 atanh(s) with s = f / (2 + f), f = m - 1, |s| <= 0.1716.
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * (LG[1] + w * (LG[3] + w * LG[5]));
    let t2 = z * (LG[0] + w * (LG[2] + w * (LG[4] + w * LG[6])));
    let r = t2 + t1;
    let hfsq = 0.5 * f * f;
    let k = k as f64;
    k * LN2_HI - ((hfsq - (s * (hfsq + r) + k * LN2_LO)) - f)
}

/// e^x (fdlibm's algorithm, within 1 ulp), from basic operations only.
pub(crate) fn exp(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x > 709.782_712_893_384 {
        return f64::INFINITY;
    }
    if x < -745.133_219_101_941_1 {
        return 0.0;
    }
    // x = k ln2 + r, |r| <= ln2 / 2 (truncation toward zero is exact and portable).
    let t = x * INV_LN2;
    let k = if t < 0.0 {
        (t - 0.5) as i64
    } else {
        (t + 0.5) as i64
    };
    let hi = x - k as f64 * LN2_HI;
    let lo = k as f64 * LN2_LO;
    let r = hi - lo;
    let t = r * r;
    let c = r - t * (P[0] + t * (P[1] + t * (P[2] + t * (P[3] + t * P[4]))));
    let y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi);
    // Scale by 2^k in two steps so both factors are normal numbers.
    let k1 = k / 2;
    let k2 = k - k1;
    y * pow2(k1) * pow2(k2)
}

/// 2^k for -1022 <= k <= 1023.
#[inline]
fn pow2(k: i64) -> f64 {
    f64::from_bits(((k + 1023) as u64) << 52)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulate_rng_math_matches_libm() {
        let mut rng = Rng::stream(7, 1);
        for _ in 0..100_000 {
            let x = rng.range(-700.0, 700.0);
            let (a, b) = (exp(x), x.exp());
            assert!(((a - b) / b).abs() < 1e-14, "exp({x}) = {a} vs {b}");
            let y = exp(rng.range(-740.0, 709.0));
            let (a, b) = (ln(y), y.ln());
            assert!(
                (a - b).abs() <= 1e-14 * b.abs().max(1e-300),
                "ln({y}) = {a} vs {b}"
            );
        }
        assert_eq!(ln(1.0), 0.0);
        assert_eq!(exp(0.0), 1.0);
        assert!((ln(5e-324) - 5e-324f64.ln()).abs() < 1e-12);
        assert_eq!(ln(0.0), f64::NEG_INFINITY);
    }

    #[test]
    fn simulate_rng_normal_moments_and_streams() {
        let mut rng = Rng::stream(42, 0);
        let n = 400_000;
        let (mut s1, mut s2) = (0.0, 0.0);
        for _ in 0..n {
            let z = rng.normal();
            s1 += z;
            s2 += z * z;
        }
        let mean = s1 / n as f64;
        let var = s2 / n as f64 - mean * mean;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.01, "var {var}");
        let mut e = Rng::stream(42, 0);
        let m = (0..n).map(|_| e.exponential()).sum::<f64>() / n as f64;
        assert!((m - 1.0).abs() < 0.01, "exponential mean {m}");
        let a: Vec<u64> = (0..4).map(|_| Rng::stream(1, 0).next_u64()).collect();
        let b = Rng::stream(1, 1).next_u64();
        let c = Rng::stream(2, 0).next_u64();
        assert!(a.iter().all(|&x| x == a[0]) && a[0] != b && a[0] != c && b != c);
    }
}
