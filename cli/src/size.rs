//! Byte sizes on the command line: `65536`, `64KiB`, `16MiB`, `1GiB` (also `k`, `M`, `G`, `KB`...,
//! all binary multiples: `1MB` is 1 MiB), as clap value parsers. The parsing and the display
//! are the library's [`Size`]'s.

pub use ringfile::units::Size;

/// Parses a size such as `64KiB`, `16MiB`, `1GiB` or a plain byte count.
///
/// ```
/// use ringfile_cli::size::parse_size;
/// assert_eq!(parse_size("64KiB"), Ok(65536));
/// assert_eq!(parse_size("16M"), Ok(16 << 20));
/// assert_eq!(parse_size("4096"), Ok(4096));
/// assert!(parse_size("12 parsecs").is_err());
/// ```
pub fn parse_size(text: &str) -> Result<u64, String> {
    text.parse::<Size>()
        .map(|size| size.0)
        .map_err(|e| e.to_string())
}

/// A clap value parser for a ring capacity: a size that is a power of two in the range a
/// ring allows.
pub fn parse_capacity(text: &str) -> Result<u64, String> {
    let capacity = parse_size(text)?;
    let (min, max) = (
        ringfile::format::MIN_CAPACITY,
        ringfile::format::MAX_CAPACITY,
    );
    if !capacity.is_power_of_two() {
        return Err(format!("{capacity} bytes is not a power of two"));
    }
    if !(min..=max).contains(&capacity) {
        return Err(format!("{capacity} bytes is outside {min} bytes ..= 4GiB"));
    }
    Ok(capacity)
}

/// A clap value parser for a non-zero size that fits in memory.
pub fn parse_nonzero_size(text: &str) -> Result<usize, String> {
    match parse_size(text)? {
        0 => Err("must be at least 1 byte".to_string()),
        n => usize::try_from(n).map_err(|_| format!("'{text}' is too large")),
    }
}

/// Parses a duration such as `90s`, `10m`, `2h`, `1d`, `500ms` or a plain number of
/// seconds.
///
/// ```
/// use ringfile_cli::size::parse_duration;
/// use std::time::Duration;
/// assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
/// assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
/// assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
/// assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
/// assert!(parse_duration("soon").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let seconds = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1.0,
        "ms" => 1e-3,
        "m" | "min" | "mins" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        other => {
            return Err(format!(
                "'{text}': unknown unit '{other}' (use ms, s, m, h or d, as in 90s or 10m)"
            ))
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (as in 90s, 10m, 2h)"))?;
    std::time::Duration::try_from_secs_f64(value * seconds)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("'{text}' is not a positive duration"))
}

/// Shows a duration as the largest whole unit that fits: `90s`, `10m`, `2h`, `1d`.
pub struct Duration(pub std::time::Duration);

impl std::fmt::Display for Duration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = self.0.as_millis();
        for (unit, size) in [
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1000),
        ] {
            if ms >= size && ms.is_multiple_of(size) {
                return write!(f, "{}{unit}", ms / size);
            }
        }
        if ms >= 1000 {
            write!(f, "{:.1}s", self.0.as_secs_f64())
        } else {
            write!(f, "{ms}ms")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_show_in_their_largest_whole_unit() {
        let show = |s: &str| Duration(parse_duration(s).unwrap()).to_string();
        assert_eq!(show("90s"), "90s");
        assert_eq!(show("120s"), "2m");
        assert_eq!(show("1d"), "1d");
        assert_eq!(show("250ms"), "250ms");
        assert_eq!(show("1.5"), "1.5s");
    }

    #[test]
    fn capacities() {
        assert_eq!(parse_capacity("64KiB"), Ok(65536));
        assert!(parse_capacity("3000").unwrap_err().contains("power of two"));
        assert!(parse_capacity("32").is_err());
        assert!(parse_capacity("8GiB").is_err());
    }
}
