//! Role: measured figures as decimal text (`12.5`, `0.25`, `87`) — what `format!("{x:.1}")`
//! writes, without core's float formatting.
//!
//! Core's `f64` formatting (Grisu with a Dragon fallback, their tables and big-number
//! arithmetic) is about 15 kB of the page's wasm. The figures shown are durations, shares and
//! ratios of a few digits, so scaling to a whole number and writing that is enough. Use
//! [`Fixed`] wherever a float is shown, in the page and in `shared`: one `{x:.1}` left anywhere
//! brings all of core's formatting back.
//!
//! Rounding is half away from zero on the scaled value (core rounds exact ties to even:
//! `0.125` to two places is `0.13` here, `0.12` there). A negative value that rounds to zero
//! is written without its sign.

use std::fmt;

/// `x` with `places` digits after the point (at most 9), rounded. Not finite: `NaN`, `inf`,
/// `-inf`. Beyond 2^64 − 1 after scaling the value is written as that bound (never the case for
/// a figure of a run).
#[derive(Clone, Copy, Debug)]
pub struct Fixed(pub f64, pub u8);

impl fmt::Display for Fixed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Fixed(x, places) = *self;
        if x.is_nan() {
            return f.write_str("NaN");
        }
        if x.is_infinite() {
            return f.write_str(if x > 0.0 { "inf" } else { "-inf" });
        }
        let places = u32::from(places.min(9));
        let scale = 10u64.pow(places);
        // `as` saturates; `round` is half away from zero.
        let scaled = (x.abs() * scale as f64).round() as u64;
        if x < 0.0 && scaled != 0 {
            f.write_str("-")?;
        }
        write!(f, "{}", scaled / scale)?;
        if places > 0 {
            write!(f, ".{:0width$}", scaled % scale, width = places as usize)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Fixed;

    fn fixed(x: f64, places: u8) -> String {
        Fixed(x, places).to_string()
    }

    #[test]
    fn writes_what_std_writes_for_figures() {
        // Values a run shows: std's text for each, at every precision the page uses.
        let values = [
            0.0,
            0.04,
            0.05,
            0.4,
            0.96,
            1.0,
            1.234_567,
            9.995,
            12.5,
            87.49,
            99.96,
            1023.7,
            2.718_281_9,
            1e6 / 3.0,
            123_456_789.987,
            -0.3,
            -12.25,
            -1.96,
        ];
        for x in values {
            for places in 0..=4u8 {
                let std = format!("{x:.prec$}", prec = usize::from(places));
                // std keeps the sign of a negative value shown as zero ("-0.0"); ours drops it.
                let zero = std.bytes().all(|b| matches!(b, b'-' | b'0' | b'.'));
                let std = if zero {
                    std.trim_start_matches('-').to_string()
                } else {
                    std
                };
                let ours = fixed(x, places);
                // Exact ties may round the other way (ours away from zero, std's to even).
                let tie = (x * 10f64.powi(i32::from(places))).fract().abs() == 0.5;
                if !tie {
                    assert_eq!(ours, std, "{x} to {places} places");
                }
            }
        }
    }

    #[test]
    fn edges() {
        assert_eq!(fixed(0.125, 2), "0.13", "ties round away from zero");
        assert_eq!(fixed(2.5, 0), "3");
        assert_eq!(fixed(-0.01, 1), "0.0", "no sign on a value shown as zero");
        assert_eq!(fixed(-0.06, 1), "-0.1");
        assert_eq!(fixed(f64::NAN, 1), "NaN");
        assert_eq!(fixed(f64::INFINITY, 1), "inf");
        assert_eq!(fixed(f64::NEG_INFINITY, 0), "-inf");
        assert_eq!(fixed(1e30, 0), u64::MAX.to_string(), "saturates");
        assert_eq!(fixed(0.5, 12), "0.500000000", "at most 9 places");
        assert_eq!(format!("{}×", Fixed(1.9, 1)), "1.9×");
    }
}
