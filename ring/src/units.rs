//! Byte sizes for people, in binary units (KiB, MiB, GiB, TiB): parsed from text such as
//! `16MiB` (the programs' options, the Python package's `capacity="16MiB"`) and displayed in
//! the library's errors and the programs' output alike.

use std::fmt;
use std::str::FromStr;

/// A byte count, displayed in binary units.
///
/// - `{}` is exact: `64 KiB` or `1 MiB` when the count is a whole number (below 10 000) of a
///   unit, else the count with its approximation, `64000 bytes (62.5 KiB)`; below 1 KiB,
///   `1000 bytes`.
/// - `{:#}` is approximate, for rates and overviews: `62.5 KiB`, `1.0 MiB`, `512 bytes`.
///
/// ```
/// use ringfile::units::Size;
/// assert_eq!(Size(65536).to_string(), "64 KiB");
/// assert_eq!(Size(64000).to_string(), "64000 bytes (62.5 KiB)");
/// assert_eq!(format!("{:#}", Size(1 << 20)), "1.0 MiB");
/// assert_eq!(format!("{:#}/s", Size(512)), "512 bytes/s");
/// ```
///
/// Parsed from a byte count with an optional binary unit: `65536`, `64KiB`, `16MiB`, `1GiB`
/// (also `k`, `M`, `G`, `T`, `KB`...: every unit is a binary multiple, `1MB` is 1 MiB).
///
/// ```
/// use ringfile::units::Size;
/// assert_eq!("64KiB".parse(), Ok(Size(65536)));
/// assert_eq!("16M".parse(), Ok(Size(16 << 20)));
/// assert_eq!(
///     "12 parsecs".parse::<Size>().unwrap_err().to_string(),
///     "'12 parsecs': unknown unit 'parsecs' (use KiB, MiB or GiB)"
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Size(pub u64);

/// Why a text is not a [`Size`]; its message quotes the text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseSizeError(String);

impl FromStr for Size {
    type Err = ParseSizeError;

    fn from_str(text: &str) -> Result<Size, ParseSizeError> {
        let fail = |why: String| Err(ParseSizeError(why));
        let t = text.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (digits, unit) = t.split_at(split);
        if digits.is_empty() {
            return fail(format!(
                "'{text}' is not a size (expected e.g. 65536, 64KiB, 16MiB, 1GiB)"
            ));
        }
        let Ok(value) = digits.parse::<u64>() else {
            return fail(format!("'{text}' is too large"));
        };
        let shift = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 0,
            "k" | "kb" | "kib" => 10,
            "m" | "mb" | "mib" => 20,
            "g" | "gb" | "gib" => 30,
            "t" | "tb" | "tib" => 40,
            other => {
                return fail(format!(
                    "'{text}': unknown unit '{other}' (use KiB, MiB or GiB)"
                ))
            }
        };
        match value.checked_mul(1u64 << shift) {
            Some(bytes) => Ok(Size(bytes)),
            None => fail(format!("'{text}' is too large")),
        }
    }
}

/// The units, largest first: (log2 of the unit, its name).
const UNITS: [(u32, &str); 4] = [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")];

impl Size {
    /// The largest unit not above the count, if it is at least 1 KiB.
    fn unit(self) -> Option<(u32, &'static str)> {
        UNITS
            .iter()
            .copied()
            .find(|&(shift, _)| self.0 >= 1 << shift)
    }

    /// Writes the count in its largest unit with one decimal, or in bytes below 1 KiB.
    fn approximate(self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.unit() {
            Some((shift, unit)) => {
                write!(f, "{:.1} {unit}", self.0 as f64 / (1u64 << shift) as f64)
            }
            None => write!(f, "{} bytes", self.0),
        }
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            return self.approximate(f);
        }
        let n = self.0;
        // A whole number of a unit, if it is a short one (`1028 KiB`, not `625000 KiB`).
        if let Some((shift, unit)) = UNITS.iter().find(|(shift, _)| {
            n >= 1 << shift && n.is_multiple_of(1 << shift) && n >> shift < 10_000
        }) {
            return write!(f, "{} {unit}", n >> shift);
        }
        write!(f, "{n} bytes")?;
        if self.unit().is_some() {
            f.write_str(" (")?;
            self.approximate(f)?;
            f.write_str(")")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Size;

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(Size(65536).to_string(), "64 KiB");
        assert_eq!(Size(1 << 20).to_string(), "1 MiB");
        assert_eq!(Size(1 << 32).to_string(), "4 GiB");
        assert_eq!(Size(4096 + (1 << 20)).to_string(), "1028 KiB");
        assert_eq!(Size((1 << 20) + 8).to_string(), "1048584 bytes (1.0 MiB)");
        assert_eq!(Size(1000).to_string(), "1000 bytes");
        assert_eq!(Size(0).to_string(), "0 bytes");
        // Whole, but a long count in its unit: the bytes and the approximation instead.
        assert_eq!(Size(640_000_000).to_string(), "640000000 bytes (610.4 MiB)");
    }

    #[test]
    fn sizes_parse_in_binary_units() {
        let parse = |text: &str| text.parse::<Size>().map(|size| size.0);
        assert_eq!(parse("1GiB"), Ok(1 << 30));
        assert_eq!(parse("2kb"), Ok(2048));
        assert_eq!(parse(" 7 "), Ok(7));
        assert_eq!(parse("4096"), Ok(4096));
        assert!(parse("").is_err());
        assert!(parse("MiB").is_err());
        assert!(parse("99999999999999999999").is_err());
        assert!(parse("16777216TiB").is_err());
    }

    #[test]
    fn the_alternate_form_is_approximate() {
        assert_eq!(format!("{:#}", Size(512)), "512 bytes");
        assert_eq!(format!("{:#}", Size(1536)), "1.5 KiB");
        assert_eq!(format!("{:#}", Size(64 << 20)), "64.0 MiB");
        assert_eq!(format!("{:#}", Size(3 << 40)), "3.0 TiB");
    }
}
