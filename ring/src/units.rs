//! Byte sizes in messages, in the binary units (KiB, MiB, GiB) the programs' options use.

use std::fmt;

/// A byte count shown as `64 KiB`, `1 MiB` or `4 GiB` when it is a whole number of them,
/// else as `1048577 bytes (1.0 MiB)`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Size(pub u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u32, &str); 4] = [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")];
        let n = self.0;
        if let Some((shift, unit)) = UNITS
            .iter()
            .find(|(shift, _)| n >= 1 << shift && n.is_multiple_of(1 << shift))
        {
            return write!(f, "{} {unit}", n >> shift);
        }
        match UNITS.iter().find(|(shift, _)| n >= 1 << shift) {
            Some((shift, unit)) => {
                write!(
                    f,
                    "{n} bytes ({:.1} {unit})",
                    n as f64 / (1u64 << shift) as f64
                )
            }
            None => write!(f, "{n} bytes"),
        }
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
    }
}
