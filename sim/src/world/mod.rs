//! The simulated world the system runs in, beyond what madsim gives: the per-node disk
//! (`disk`). Node shells, network faults and clocks join here as they land.

pub mod disk;
