//! Byte sizes on the command line: `65536`, `64KiB`, `16MiB`, `1GiB` (also `k`, `M`, `G`, `KB`...,
//! all binary multiples: `1MB` is 1 MiB), and sizes shown to people, in the same units.

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
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    if digits.is_empty() {
        return Err(format!(
            "'{text}' is not a size (expected e.g. 65536, 64KiB, 16MiB, 1GiB)"
        ));
    }
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is too large"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        other => {
            return Err(format!(
                "'{text}': unknown unit '{other}' (use KiB, MiB or GiB)"
            ))
        }
    };
    value
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("'{text}' is too large"))
}

/// A byte count for people: `1.5 KiB`, `640.0 MiB`, `3.2 GiB` (binary units, like the options),
/// or `512 bytes`.
///
/// ```
/// use ringfile_cli::size::format_size;
/// assert_eq!(format_size(512), "512 bytes");
/// assert_eq!(format_size(64 << 20), "64.0 MiB");
/// ```
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(u32, &str); 4] = [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")];
    match UNITS.iter().find(|(shift, _)| bytes >= 1 << shift) {
        Some((shift, unit)) => format!("{:.1} {unit}", bytes as f64 / (1u64 << shift) as f64),
        None => format!("{bytes} bytes"),
    }
}

/// A byte count for people, exact and readable: `512 bytes`, `64000 bytes (62.5 KiB)`.
///
/// ```
/// use ringfile_cli::size::format_bytes;
/// assert_eq!(format_bytes(512), "512 bytes");
/// assert_eq!(format_bytes(64000), "64000 bytes (62.5 KiB)");
/// ```
pub fn format_bytes(bytes: u64) -> String {
    if bytes < 1024 {
        format!("{bytes} bytes")
    } else {
        format!("{bytes} bytes ({})", format_size(bytes))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("2kb"), Ok(2048));
        assert_eq!(parse_size(" 7 "), Ok(7));
        assert!(parse_size("").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("99999999999999999999").is_err());
        assert!(parse_size("16777216TiB").is_err());
    }

    #[test]
    fn capacities() {
        assert_eq!(parse_capacity("64KiB"), Ok(65536));
        assert!(parse_capacity("3000").unwrap_err().contains("power of two"));
        assert!(parse_capacity("32").is_err());
        assert!(parse_capacity("8GiB").is_err());
    }
}
