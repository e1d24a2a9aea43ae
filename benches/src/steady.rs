//! Telling a run taken on a steady machine from one taken while the machine changed speed.
//!
//! A shared virtual machine (this project's 2-core one) switches every few minutes between a
//! fast mode and one about four times slower (the bare floor at 8 B: ~185 against ~50 M msg/s),
//! and the slow mode moves the bottleneck (memory bandwidth), so ratios taken in it are ratios
//! of another machine. The report takes a short *speed probe*, the same fixed workload each
//! time, before each measurement of a run and after the last, and redoes a run whose probes
//! disagree (the machine changed speed during it, if only for a moment) or fall well below the
//! fastest probe of the report (the run was taken in a slow spell). What is kept and what was
//! redone is said in the report.

/// A run is steady when its slowest probe is at least this fraction of its fastest. The fast
/// mode's own spread is about 1.5× (the floor at 8 B: 155 to 245 M msg/s), the slow mode
/// about a quarter of the fast one: a half tells them apart with room on both sides.
pub const STEADY_WITHIN: f64 = 0.5;

/// A run's slowest probe must reach this fraction of the fastest probe seen in the report.
pub const SLOW_BELOW: f64 = 0.5;

/// The slowest and the fastest of the speed probes taken before, between and after the
/// measurements of one run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Probed {
    /// The slowest probe's rate (messages per second).
    pub low: f64,
    /// The fastest probe's rate.
    pub high: f64,
}

impl Probed {
    /// The range of `probes` (not empty).
    pub fn of(probes: &[f64]) -> Probed {
        Probed {
            low: probes.iter().copied().fold(f64::INFINITY, f64::min),
            high: probes.iter().copied().fold(0.0, f64::max),
        }
    }

    /// Whether the machine kept its speed through the run (the probes agree).
    pub fn steady(&self) -> bool {
        self.low >= STEADY_WITHIN * self.high
    }
}

/// The fastest probe seen so far, against which every run's probes are judged.
#[derive(Clone, Copy, Debug, Default)]
pub struct SpeedGate {
    best: f64,
}

impl SpeedGate {
    /// Takes a run's probes into account (the fastest probe can only rise).
    pub fn note(&mut self, p: &Probed) {
        self.best = self.best.max(p.high);
    }

    /// The fastest probe seen.
    pub fn best(&self) -> f64 {
        self.best
    }

    /// Whether a run with these probes is kept: steady, and not in a slow spell.
    pub fn accepts(&self, p: &Probed) -> bool {
        p.steady() && p.low >= SLOW_BELOW * self.best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probed(before: f64, after: f64) -> Probed {
        Probed::of(&[before, after])
    }

    #[test]
    fn a_run_whose_probes_agree_at_full_speed_is_kept() {
        let mut gate = SpeedGate::default();
        let p = probed(185e6, 180e6);
        gate.note(&p);
        assert!(gate.accepts(&p));
    }

    #[test]
    fn a_run_during_which_the_machine_changed_speed_even_briefly_is_redone() {
        let mut gate = SpeedGate::default();
        let p = Probed::of(&[185e6, 180e6, 50e6, 183e6]);
        gate.note(&p);
        assert!(!p.steady());
        assert!(!gate.accepts(&p));
    }

    #[test]
    fn a_steady_run_in_a_slow_spell_is_redone_once_a_faster_probe_is_seen() {
        let mut gate = SpeedGate::default();
        let slow = probed(50e6, 52e6);
        gate.note(&slow);
        assert!(gate.accepts(&slow), "nothing faster seen yet");
        gate.note(&probed(185e6, 183e6));
        assert!(slow.steady());
        assert!(!gate.accepts(&slow));
        assert!(
            gate.accepts(&probed(150e6, 170e6)),
            "ordinary noise is kept"
        );
    }
}
