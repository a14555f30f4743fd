//! The controller node shell (being wired: see the replication issue).

use super::WorldRef;

pub async fn controller_main(_world: WorldRef, _index: u32) {}
