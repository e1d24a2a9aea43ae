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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacities() {
        assert_eq!(parse_capacity("64KiB"), Ok(65536));
        assert!(parse_capacity("3000").unwrap_err().contains("power of two"));
        assert!(parse_capacity("32").is_err());
        assert!(parse_capacity("8GiB").is_err());
    }
}
