//! Exact, order-independent sums of floating-point quantities.
//!
//! Every value is rounded once to a fixed-point integer with 64 fractional bits and then
//! summed as `i128`. Integer addition is associative, so a sum does not depend on the
//! order in which trades arrive, on the number of workers, or on whether a 1m bar is
//! built from raw trades or from 1s bars. Values up to 2^63 (about 9.2e18) in total are
//! exact to 2^-64; a single rounding happens when the sum is turned back into `f64`.

use serde::{Deserialize, Serialize};

const SCALE: f64 = 18_446_744_073_709_551_616.0; // 2^64

/// A fixed-point number with 64 fractional bits.
///
/// ```
/// use operators::Fixed;
/// let a = Fixed::from_f64(0.1) + Fixed::from_f64(0.2);
/// let b = Fixed::from_f64(0.2) + Fixed::from_f64(0.1);
/// assert_eq!(a, b);
/// assert!((a.to_f64() - 0.3).abs() < 1e-15);
/// ```
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Fixed(pub i128);

impl Fixed {
    /// Zero.
    pub const ZERO: Fixed = Fixed(0);

    /// Rounds `x` to the nearest representable fixed-point value (saturating).
    #[inline]
    pub fn from_f64(x: f64) -> Fixed {
        // The same as `(x * SCALE).round() as i128` (x · 2^64 is exact, rounded half
        // away from zero), done with integer shifts of the mantissa instead of the
        // slow float-to-i128 conversion; zeros, subnormals, non-finite values and
        // magnitudes near the saturation limit take that path.
        let bits = x.to_bits();
        let exp = ((bits >> 52) & 0x7ff) as i32;
        if exp == 0 || exp == 0x7ff {
            return Fixed::from_f64_slow(x);
        }
        let m = (bits & ((1u64 << 52) - 1)) | (1u64 << 52);
        // x = ±m · 2^(exp - 1075), so x · 2^64 = ±m · 2^(exp - 1011).
        let shift = exp - 1011;
        let magnitude: i128 = if shift >= 0 {
            if shift > 73 {
                return Fixed::from_f64_slow(x);
            }
            (m as i128) << shift
        } else if shift >= -53 {
            let s = (-shift) as u32;
            ((m + (1u64 << (s - 1))) >> s) as i128
        } else {
            0
        };
        Fixed(if bits >> 63 == 1 {
            -magnitude
        } else {
            magnitude
        })
    }

    #[cold]
    fn from_f64_slow(x: f64) -> Fixed {
        Fixed((x * SCALE).round() as i128)
    }

    /// The nearest `f64` to this value.
    #[inline]
    pub fn to_f64(self) -> f64 {
        (self.0 as f64) / SCALE
    }
}

impl std::ops::Add for Fixed {
    type Output = Fixed;
    #[inline]
    fn add(self, rhs: Fixed) -> Fixed {
        Fixed(self.0.saturating_add(rhs.0))
    }
}

impl std::ops::AddAssign for Fixed {
    #[inline]
    fn add_assign(&mut self, rhs: Fixed) {
        self.0 = self.0.saturating_add(rhs.0);
    }
}

impl std::ops::Sub for Fixed {
    type Output = Fixed;
    #[inline]
    fn sub(self, rhs: Fixed) -> Fixed {
        Fixed(self.0.saturating_sub(rhs.0))
    }
}

/// `W·Σxy − Σx·Σy` (W² times a population co-moment) from integer sums: exact while it
/// fits in `i128`, else in f64. Equal inputs give exactly 0.
///
/// ```
/// use operators::fixed::moment;
/// assert_eq!(moment(3, 3 * 49, 3 * 7, 3 * 7), 0.0);
/// assert_eq!(moment(2, 1 + 9, 4, 4), 4.0);
/// ```
pub fn moment(w: i128, sum_xy: i128, sum_x: i128, sum_y: i128) -> f64 {
    match w
        .checked_mul(sum_xy)
        .zip(sum_x.checked_mul(sum_y))
        .and_then(|(a, b)| a.checked_sub(b))
    {
        Some(v) => v as f64,
        None => w as f64 * sum_xy as f64 - sum_x as f64 * sum_y as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_do_not_depend_on_order() {
        let xs: Vec<f64> = (1..1000)
            .map(|i| (i as f64).sqrt() * 1e-3 + 12345.678)
            .collect();
        let fwd = xs.iter().fold(Fixed::ZERO, |a, &x| a + Fixed::from_f64(x));
        let rev = xs
            .iter()
            .rev()
            .fold(Fixed::ZERO, |a, &x| a + Fixed::from_f64(x));
        assert_eq!(fwd, rev);
        let naive: f64 = xs.iter().sum();
        assert!((fwd.to_f64() - naive).abs() / naive < 1e-12);
    }

    #[test]
    fn the_fast_conversion_equals_rounding_the_scaled_value() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut xs = vec![
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.0,
            2f64.powi(-64),
            2f64.powi(-65),
            1.5 * 2f64.powi(-65),
            2f64.powi(-66),
            2f64.powi(62),
            2f64.powi(63),
            2f64.powi(64),
            f64::MAX,
            f64::MIN_POSITIVE,
            1e-310,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ];
        for _ in 0..200_000 {
            // Random bit patterns over every exponent, and typical prices and sizes.
            xs.push(f64::from_bits(next()));
            let unit = (next() >> 11) as f64 / (1u64 << 53) as f64;
            xs.push(unit * 10f64.powi((next() % 24) as i32 - 12));
        }
        for x in xs {
            let want = (x * SCALE).round() as i128;
            assert_eq!(Fixed::from_f64(x).0, want, "{x:e} ({:#x})", x.to_bits());
        }
    }

    #[test]
    fn tiny_values_keep_relative_precision() {
        let x = 1.234_567_89e-8;
        let back = Fixed::from_f64(x).to_f64();
        assert!((back - x).abs() / x < 1e-10);
    }
}
