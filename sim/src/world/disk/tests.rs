//! SimDisk tests: each fault shown on a madsim runtime with the plugin registered.
//! `#[madsim::test]` cannot register a plugin, so every test builds its own runtime.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use madsim::plugin::simulator;
use madsim::runtime::{Handle, Runtime};
use madsim::task::NodeId;
use madsim::time::{sleep, TimeHandle};

use super::*;

/// Runs `body` as the supervisor of a fresh runtime with SimDisk registered and seeded.
fn run<T, Fut: Future<Output = T>>(seed: u64, body: impl FnOnce() -> Fut) -> T {
    let rt = Runtime::with_seed_and_config(seed, madsim::Config::default());
    rt.add_simulator::<SimDisk>();
    rt.block_on(async move {
        disk().seed(seed);
        body().await
    })
}

fn disk() -> std::sync::Arc<SimDisk> {
    simulator::<SimDisk>()
}

/// A node whose disk has no write/read latency, a 1 ms sync and the given crash policy.
fn node_with(name: &str, drop_pct: u8, keep_pct: u8, torn_pct: u8) -> NodeId {
    let node = Handle::current().create_node().name(name).build().id();
    disk().configure(
        node,
        DiskConfig {
            write_latency_us: (0, 0),
            sync_latency_us: (1_000, 1_000),
            read_latency_us: (0, 0),
            crash: CrashPolicy { drop_pct, keep_pct, torn_pct },
            ..DiskConfig::default()
        },
    );
    node
}

/// Runs `task` on `node` (its current incarnation) and waits for it.
async fn on<T: Send + 'static>(node: NodeId, task: impl Future<Output = T> + Send + 'static) -> T {
    let handle = Handle::current().get_node(node).expect("node exists");
    handle.spawn(task).await.expect("node task finished")
}

fn crash(node: NodeId) {
    Handle::current().kill(node);
    Handle::current().restart(node);
}

fn bytes_of(byte: u8, len: usize) -> Bytes {
    Bytes::from(vec![byte; len])
}

async fn write_all(path: &'static str, writes: Vec<(u64, Bytes)>) {
    for (offset, data) in writes {
        disk().write(path, offset, data).await.expect("write");
    }
}

async fn read_all(node: NodeId, path: &'static str) -> Bytes {
    on(node, async move { disk().read_all(path).await.expect("read_all") }).await
}

#[test]
fn crash_drops_every_pending_write_under_drop_policy() {
    run(1, || async {
        let node = node_with("n1", 100, 0, 0);
        on(node, async {
            disk().write("log", 0, bytes_of(1, 100)).await.expect("write");
            disk().sync("log").await.expect("sync");
            write_all("log", vec![(100, bytes_of(2, 50)), (0, bytes_of(3, 10))]).await;
            assert_eq!(disk().len("log"), Some(150));
        })
        .await;
        crash(node);
        assert_eq!(read_all(node, "log").await, bytes_of(1, 100));
        let report = disk().last_crash_report(node);
        assert_eq!(report.len(), 2);
        assert!(report.iter().all(|d| d.outcome == CrashOutcome::Dropped));
        assert_eq!((report[0].offset, report[0].len), (100, 50));
        let stats = disk().stats(node);
        assert_eq!((stats.crashes, stats.crash_dropped_writes), (1, 2));
        assert_eq!(stats.crash_dropped_bytes, 60);
        assert_eq!(disk().pending_bytes(node), 0);
    });
}

#[test]
fn crash_keeps_every_pending_write_under_keep_policy() {
    run(2, || async {
        let node = node_with("n1", 0, 100, 0);
        on(node, async {
            write_all("log", vec![(0, bytes_of(1, 100)), (50, bytes_of(2, 100))]).await;
        })
        .await;
        crash(node);
        let mut expected = vec![1u8; 50];
        expected.extend([2u8; 100]);
        assert_eq!(read_all(node, "log").await, expected);
        let report = disk().last_crash_report(node);
        assert!(report.iter().all(|d| d.outcome == CrashOutcome::Kept));
        assert_eq!(disk().stats(node).crash_kept_bytes, 200);
    });
}

#[test]
fn crash_tears_pending_writes_at_sector_boundaries() {
    // (offset, len): spans two boundaries, spans none, ends exactly on one, spans many.
    let writes: [(u64, usize); 4] = [(100, 1_000), (1_200, 100), (1_300, 748), (2_048, 4_000)];
    for seed in 0..8 {
        run(seed, || async move {
            let node = node_with("n1", 0, 0, 100);
            on(node, async move {
                for (i, (offset, len)) in writes.into_iter().enumerate() {
                    let data = bytes_of(10 + i as u8, len);
                    disk().write("seg", offset, data).await.expect("write");
                }
            })
            .await;
            crash(node);
            let durable = disk().durable_bytes(node, "seg").expect("file survives");
            let report = disk().last_crash_report(node);
            assert_eq!(report.len(), writes.len());
            for (i, decision) in report.iter().enumerate() {
                let CrashOutcome::Torn { kept_len } = decision.outcome else {
                    panic!("seed {seed}: write {i} not torn: {decision:?}");
                };
                assert!(kept_len <= decision.len);
                let (first, count) = file::torn_boundaries(decision.offset, decision.len);
                if count == 0 {
                    assert_eq!(kept_len, 0, "seed {seed}: write {i} spans no boundary");
                    continue;
                }
                let end = decision.offset + kept_len;
                assert_eq!(end % 512, 0, "seed {seed}: write {i} torn at {end}");
                assert!(end >= first && kept_len > 0);
                let kept = &durable[decision.offset as usize..end as usize];
                assert!(kept.iter().all(|b| *b == 10 + i as u8), "seed {seed}: write {i}");
            }
            // The write at 1200 spans no boundary: nothing of it is on disk.
            assert!(durable.len() <= 1_200 || durable[1_200..1_300].iter().all(|b| *b == 0));
            let stats = disk().stats(node);
            assert_eq!(stats.crash_torn_writes, 4);
            assert_eq!(stats.crash_torn_bytes_kept + stats.crash_torn_bytes_lost, 5_848);
        });
    }
}

#[test]
fn dropped_earlier_write_leaves_a_hole_of_zeros_before_a_kept_later_one() {
    // Seeds are searched for the decision pair [Dropped, Kept]; the search is deterministic.
    let found = (0..64).find_map(|seed| {
        run(seed, || async move {
            let node = node_with("n1", 50, 50, 0);
            on(node, async {
                write_all("log", vec![(0, bytes_of(7, 100)), (100, bytes_of(8, 100))]).await;
            })
            .await;
            crash(node);
            let outcomes: Vec<CrashOutcome> =
                disk().last_crash_report(node).iter().map(|d| d.outcome).collect();
            if outcomes != [CrashOutcome::Dropped, CrashOutcome::Kept] {
                return None;
            }
            Some(read_all(node, "log").await)
        })
    });
    let data = found.expect("some seed in 0..64 drops the first write and keeps the second");
    assert_eq!(data.len(), 200);
    assert!(data[..100].iter().all(|b| *b == 0), "hole of zeros");
    assert!(data[100..].iter().all(|b| *b == 8));
}

#[test]
fn synced_writes_survive_a_kill() {
    run(3, || async {
        let node = node_with("n1", 100, 0, 0);
        let offsets = on(node, async {
            let first = disk().append("log", bytes_of(1, 300)).await.expect("append");
            disk().sync("log").await.expect("sync");
            let second = disk().append("log", bytes_of(2, 300)).await.expect("append");
            disk().sync("log").await.expect("sync");
            (first, second)
        })
        .await;
        assert_eq!(offsets, (0, 300));
        crash(node);
        let data = read_all(node, "log").await;
        assert_eq!(data.len(), 600);
        assert!(data[..300].iter().all(|b| *b == 1) && data[300..].iter().all(|b| *b == 2));
        assert!(disk().last_crash_report(node).is_empty());
        assert_eq!(disk().stats(node).bytes_synced, 600);
    });
}

#[test]
fn sync_does_not_cover_writes_issued_during_its_latency() {
    run(4, || async {
        let node = node_with("n1", 100, 0, 0);
        let slow_sync = DiskConfig {
            write_latency_us: (0, 0),
            sync_latency_us: (5_000, 5_000),
            crash: CrashPolicy { drop_pct: 100, keep_pct: 0, torn_pct: 0 },
            ..DiskConfig::default()
        };
        disk().configure(node, slow_sync);
        let late = Handle::current().get_node(node).expect("node").spawn(async {
            sleep(Duration::from_micros(300)).await; // wakes after 1 ms, inside the sync
            disk().append("log", bytes_of(2, 10)).await.expect("append")
        });
        on(node, async {
            disk().append("log", bytes_of(1, 10)).await.expect("append");
            disk().sync("log").await.expect("sync");
        })
        .await;
        assert_eq!(late.await.expect("late append"), 10);
        assert_eq!(disk().durable_bytes(node, "log"), Some(bytes_of(1, 10)));
        assert_eq!(disk().pending_bytes(node), 10);
        crash(node);
        assert_eq!(read_all(node, "log").await, bytes_of(1, 10));
    });
}

#[test]
fn kill_during_sync_leaves_its_writes_to_the_crash() {
    run(5, || async {
        let node = node_with("n1", 100, 0, 0);
        disk().configure(
            node,
            DiskConfig {
                write_latency_us: (0, 0),
                sync_latency_us: (10_000, 10_000),
                crash: CrashPolicy { drop_pct: 100, keep_pct: 0, torn_pct: 0 },
                ..DiskConfig::default()
            },
        );
        let _syncing = Handle::current().get_node(node).expect("node").spawn(async {
            disk().append("log", bytes_of(1, 10)).await.expect("append");
            disk().sync("log").await.expect("sync");
        });
        sleep(Duration::from_millis(5)).await;
        crash(node);
        sleep(Duration::from_millis(20)).await;
        assert_eq!(read_all(node, "log").await, Bytes::new());
        let stats = disk().stats(node);
        assert_eq!((stats.syncs, stats.crash_dropped_writes), (0, 1));
    });
}

#[test]
fn sync_takes_its_latency_and_slow_multiplies_it() {
    run(6, || async {
        let node = node_with("n1", 100, 0, 0);
        let timed_sync = || async {
            disk().append("log", bytes_of(1, 10)).await.expect("append");
            // Simulated time since the runtime started (std's Instant is banned by clippy.toml).
            let start = TimeHandle::current().elapsed();
            disk().sync("log").await.expect("sync");
            TimeHandle::current().elapsed() - start
        };
        let normal = on(node, timed_sync()).await;
        assert!(normal >= Duration::from_millis(1) && normal < Duration::from_millis(2));
        disk().set_slow(node, 10);
        let slow = on(node, timed_sync()).await;
        assert!(slow >= Duration::from_millis(10) && slow < Duration::from_millis(11));
        disk().heal(node);
        let healed = on(node, timed_sync()).await;
        assert!(healed < Duration::from_millis(2), "healed sync took {healed:?}");
    });
}

#[test]
fn full_disk_gives_no_space_and_adds_no_bytes() {
    run(7, || async {
        let node = node_with("n1", 100, 0, 0);
        disk().set_full(node, true);
        on(node, async {
            let err = disk().append("new", bytes_of(1, 10)).await.unwrap_err();
            assert_eq!(err, DiskError::NoSpace { path: "new".into() });
            assert_eq!(disk().len("new"), None);
        })
        .await;
        disk().set_full(node, false);
        on(node, async {
            disk().append("log", bytes_of(1, 100)).await.expect("append");
        })
        .await;
        disk().set_full(node, true);
        on(node, async {
            let err = disk().write("log", 95, bytes_of(2, 10)).await.unwrap_err();
            assert!(matches!(err, DiskError::NoSpace { .. }));
            assert!(disk().append("log", bytes_of(2, 1)).await.is_err());
            assert!(disk().truncate("log", 200).await.is_err());
            assert_eq!(disk().len("log"), Some(100));
            // Overwriting existing bytes adds none, and shrinking frees some: both allowed.
            disk().write("log", 0, bytes_of(3, 50)).await.expect("overwrite");
            disk().truncate("log", 90).await.expect("shrink");
        })
        .await;
        assert_eq!(disk().stats(node).no_space_errors, 4);
        assert_eq!(disk().pending_bytes(node), 90 + 50);
    });
}

#[test]
fn capacity_limits_the_bytes_over_all_files() {
    run(8, || async {
        let node = node_with("n1", 100, 0, 0);
        let config = DiskConfig { capacity_bytes: 1_000, ..DiskConfig::default() };
        disk().configure(node, config);
        on(node, async {
            disk().append("a", bytes_of(1, 600)).await.expect("fits");
            disk().append("b", bytes_of(1, 400)).await.expect("fits exactly");
            let err = disk().append("b", bytes_of(1, 1)).await.unwrap_err();
            assert_eq!(err, DiskError::NoSpace { path: "b".into() });
            assert!(disk().write("c", u64::MAX, bytes_of(1, 2)).await.is_err());
            assert_eq!(disk().len("b"), Some(400));
            disk().delete("a").await.expect("delete");
            disk().append("b", bytes_of(1, 600)).await.expect("fits after delete");
        })
        .await;
    });
}

#[test]
fn io_errors_hit_only_the_chosen_op_kind() {
    run(9, || async {
        let node = node_with("n1", 100, 0, 0);
        let kinds = [DiskOp::Read, DiskOp::Write, DiskOp::Sync, DiskOp::Truncate];
        for kind in kinds {
            let rates = IoErrorRates {
                read: if kind == DiskOp::Read { 1.0 } else { 0.0 },
                write: if kind == DiskOp::Write { 1.0 } else { 0.0 },
                sync: if kind == DiskOp::Sync { 1.0 } else { 0.0 },
                metadata: if kind == DiskOp::Truncate { 1.0 } else { 0.0 },
            };
            disk().set_io_errors(node, IoErrorRates::default());
            on(node, async { disk().append("log", bytes_of(1, 10)).await.expect("setup") }).await;
            disk().set_io_errors(node, rates);
            let results = on(node, async {
                [
                    disk().read("log", 0, 5).await.err(),
                    disk().append("log", bytes_of(2, 10)).await.err(),
                    disk().sync("log").await.err(),
                    disk().truncate("log", 5).await.err(),
                ]
            })
            .await;
            for (op, result) in kinds.iter().zip(results) {
                let expected = (*op == kind).then(|| DiskError::Io { op: *op, path: "log".into() });
                assert_eq!(result, expected, "errors set for {kind:?}, op {op:?}");
            }
        }
        assert_eq!(disk().stats(node).io_errors_injected, 4);
    });
}

#[test]
fn flip_bits_changes_exactly_the_reported_bits() {
    run(10, || async {
        let node = node_with("n1", 100, 0, 0);
        let paths = ["a", "b", "c"];
        on(node, async move {
            for (i, path) in paths.into_iter().enumerate() {
                disk().append(path, bytes_of(0x5a, 100 * (i + 1))).await.expect("append");
                disk().sync(path).await.expect("sync");
            }
        })
        .await;
        let before: Vec<Bytes> =
            paths.iter().map(|p| disk().durable_bytes(node, p).expect("file")).collect();
        let flips = disk().flip_bits(node, 20);
        assert_eq!(flips.len(), 20);
        let mut changed = BTreeSet::new();
        for (path, old) in paths.iter().zip(&before) {
            let new = disk().durable_bytes(node, path).expect("file");
            assert_eq!(new.len(), old.len());
            for (offset, (o, n)) in old.iter().zip(new.iter()).enumerate() {
                for bit in 0..8u8 {
                    if (o ^ n) & (1 << bit) != 0 {
                        changed.insert(BitFlip {
                            path: (*path).to_owned(),
                            offset: offset as u64,
                            bit,
                        });
                    }
                }
            }
        }
        assert_eq!(changed, flips.iter().cloned().collect::<BTreeSet<_>>());
        // The node reads the flipped bytes: nothing here detects them (the log's CRC does).
        let flip = flips[0].clone();
        let path: &'static str = paths.into_iter().find(|p| *p == flip.path).expect("path");
        let byte =
            on(node, async move { disk().read(path, flip.offset, 1).await.expect("read")[0] })
                .await;
        assert_eq!(byte, 0x5a ^ (1 << flip.bit));
        assert_eq!(disk().stats(node).bits_flipped, 20);
        assert!(disk().flip_bits(node, 0).is_empty());
    });
}

/// A run with many pending writes under the default policy, crashed, then bits flipped.
fn crash_and_flip(seed: u64) -> (Vec<CrashDecision>, Vec<BitFlip>) {
    run(seed, || async {
        let node = Handle::current().create_node().name("n1").build().id();
        on(node, async {
            for i in 0..8 {
                let path: &'static str = ["x", "y"][i % 2];
                disk().append(path, bytes_of(i as u8, 700)).await.expect("append");
                if i == 3 {
                    disk().sync("x").await.expect("sync");
                    disk().sync("y").await.expect("sync");
                }
            }
            for i in 0..32 {
                disk().append("z", bytes_of(i, 1_100)).await.expect("append");
            }
        })
        .await;
        crash(node);
        (disk().last_crash_report(node), disk().flip_bits(node, 8))
    })
}

#[test]
fn same_seed_same_crash_decisions_and_flips_different_seed_differs() {
    let first = crash_and_flip(42);
    assert_eq!(first.0.len(), 36);
    assert_eq!(first, crash_and_flip(42));
    assert_ne!(first.0, crash_and_flip(43).0);
    assert_ne!(first.1, crash_and_flip(43).1);
}

#[test]
fn missing_files_are_errors_and_the_supervisor_has_a_default_disk() {
    run(11, || async {
        // The supervisor (node 0) was never configured: it gets the default disk.
        let d = disk();
        assert_eq!(d.read_all("nope").await, Err(DiskError::NotFound { path: "nope".into() }));
        assert!(matches!(d.sync("nope").await, Err(DiskError::NotFound { .. })));
        assert!(matches!(d.truncate("nope", 0).await, Err(DiskError::NotFound { .. })));
        assert!(matches!(d.delete("nope").await, Err(DiskError::NotFound { .. })));
        assert_eq!(d.len("nope"), None);
        for path in ["t/1", "t/0", "u/0", "t/2"] {
            d.write(path, 10, bytes_of(1, 1)).await.expect("write");
        }
        assert_eq!(d.list("t/"), ["t/0", "t/1", "t/2"]);
        assert_eq!(d.read("t/0", 0, 100).await.expect("read"), {
            let mut gap = vec![0u8; 10];
            gap.push(1);
            gap
        });
        assert!(d.read("t/0", 50, 10).await.expect("read past end").is_empty());
    });
}

#[test]
fn truncate_is_durable_at_once() {
    run(12, || async {
        let node = node_with("n1", 100, 0, 0);
        on(node, async {
            disk().append("log", bytes_of(1, 1_000)).await.expect("append");
            disk().sync("log").await.expect("sync");
            disk().append("log", bytes_of(2, 100)).await.expect("append");
            disk().truncate("log", 600).await.expect("truncate");
        })
        .await;
        assert_eq!(disk().pending_bytes(node), 0);
        crash(node);
        assert_eq!(read_all(node, "log").await, bytes_of(1, 600));
        assert_eq!(disk().stats(node).truncates, 1);
    });
}

#[test]
fn sub_millisecond_latencies_add_up_instead_of_rounding_to_a_sleep_each() {
    run(13, || async {
        let node = node_with("n1", 100, 0, 0);
        let config = DiskConfig { write_latency_us: (100, 100), ..DiskConfig::default() };
        disk().configure(node, config);
        let elapsed = on(node, async {
            let start = TimeHandle::current().elapsed();
            for _ in 0..25 {
                disk().append("log", bytes_of(1, 10)).await.expect("append");
            }
            TimeHandle::current().elapsed() - start
        })
        .await;
        // 25 x 100 µs = 2.5 ms: two 1 ms sleeps paid, 0.5 ms still owed.
        assert!(elapsed >= Duration::from_millis(2) && elapsed < Duration::from_millis(3));
    });
}
