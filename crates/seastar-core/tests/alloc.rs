//! The per-shard accounting allocator: stats per shard, limits, reclaimers,
//! frees on another shard. Runs on whichever backend
//! `SEASTAR_REACTOR_BACKEND` selects.
#![cfg(feature = "alloc")]

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::hint::black_box;
use std::rc::Rc;

use seastar_core::alloc::{self, ShardAllocator, Stats};
use seastar_core::smp::submit_to;
use seastar_core::{Runtime, RuntimeBuilder};

#[global_allocator]
static ALLOC: ShardAllocator = ShardAllocator::new();

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;
/// Room for what the runtime itself allocates or frees between two reads.
const SLACK: i64 = 256 * KIB as i64;

fn rt(shards: usize) -> RuntimeBuilder {
    Runtime::builder().shards(shards).handle_signals(false)
}

fn delta(after: &Stats, before: &Stats) -> i64 {
    after.allocated as i64 - before.allocated as i64
}

fn assert_near(got: i64, want: i64, what: &str) {
    assert!(
        (got - want).abs() <= SLACK,
        "{what}: {got} bytes, expected about {want}"
    );
}

async fn stats_on(shard: usize) -> Stats {
    submit_to(shard, || async { alloc::stats() }).await.unwrap()
}

/// An LRU-ish cache of byte buffers that evicts from the front when its
/// reclaimer is called.
#[derive(Clone, Default)]
struct Cache {
    items: Rc<RefCell<VecDeque<Vec<u8>>>>,
    calls: Rc<Cell<usize>>,
}

impl Cache {
    fn reclaimer(&self) -> alloc::Reclaimer {
        let this = self.clone();
        alloc::register_reclaimer(move |wanted| {
            this.calls.set(this.calls.get() + 1);
            let Ok(mut items) = this.items.try_borrow_mut() else {
                return 0;
            };
            let mut freed = 0;
            while freed < wanted {
                match items.pop_front() {
                    Some(item) => freed += item.capacity(),
                    None => break,
                }
            }
            freed
        })
    }

    fn insert(&self, item: Vec<u8>) {
        self.items.borrow_mut().push_back(item);
    }
}

#[test]
fn stats_follow_allocations_on_each_shard() {
    let figures = rt(2).build().unwrap().run(async {
        let mut out = Vec::new();
        for shard in 0..2 {
            let f = submit_to(shard, || async {
                let before = alloc::stats();
                let v = black_box(vec![1u8; MIB]);
                let during = alloc::stats();
                drop(v);
                let after = alloc::stats();
                (before, during, after)
            });
            out.push(f.await.unwrap());
        }
        out
    });
    for (shard, (before, during, after)) in figures.into_iter().enumerate() {
        assert_eq!(during.shard, Some(shard));
        assert_eq!(during.limit, None);
        assert_near(delta(&during, &before), MIB as i64, "allocated by the vec");
        assert_near(delta(&after, &before), 0, "after dropping it");
        assert!(during.allocations > before.allocations);
        assert!(after.frees > during.frees);
        assert!(after.allocations >= after.frees);
    }
}

#[test]
fn realloc_moves_the_figures() {
    rt(1).build().unwrap().run(async {
        let mut v: Vec<u8> = Vec::with_capacity(KIB);
        v.push(1);
        let before = alloc::stats();
        v.reserve_exact(4 * MIB);
        let grown = alloc::stats();
        assert_near(delta(&grown, &before), 4 * MIB as i64, "grown by realloc");
        // A realloc is one free and one allocation.
        assert!(grown.allocations > before.allocations);
        assert!(grown.frees > before.frees);
        v.shrink_to(KIB);
        assert_near(delta(&alloc::stats(), &before), 0, "shrunk back");
        black_box(v);
    });
}

#[test]
fn memory_is_split_between_shards() {
    let limits = rt(2)
        .memory(10 * MIB as u64)
        .build()
        .unwrap()
        .run(async { [stats_on(0).await.limit, stats_on(1).await.limit] });
    assert_eq!(limits, [Some(5 * MIB as u64); 2]);
}

#[test]
fn reclaimer_evicts_under_a_small_limit() {
    let limit = 8 * MIB as u64;
    rt(2).memory(2 * limit).build().unwrap().run(async move {
        let cache = Cache::default();
        let _reclaimer = cache.reclaimer();
        let start = alloc::stats();
        assert_eq!(start.limit, Some(limit));
        // 16 MiB of 64 KiB items into an 8 MiB shard.
        for i in 0..256u32 {
            cache.insert(vec![i as u8; 64 * KIB]);
            let s = alloc::stats();
            assert!(
                s.allocated <= limit + SLACK as u64,
                "item {i}: {} bytes allocated over a {limit} limit",
                s.allocated
            );
        }
        let s = alloc::stats();
        let kept = cache.items.borrow().len();
        assert!(cache.calls.get() > 0, "reclaimer never called");
        assert!(s.reclaims > start.reclaims);
        assert!(s.reclaimed >= (256 - kept as u64) * 64 * KIB as u64);
        assert!(kept < 128, "kept {kept} items of 64 KiB");
        assert!(kept > 0);
        // The newest items survive: eviction is from the front.
        assert_eq!(cache.items.borrow().back().unwrap()[0], 255);
        // The other shard has its own limit and no reclaimer.
        let other = stats_on(1).await;
        assert_eq!(other.limit, Some(limit));
        assert_eq!(other.reclaims, 0);
    });
}

#[test]
fn reclaimer_may_allocate_and_is_not_reentered() {
    rt(1).memory(4 * MIB as u64).build().unwrap().run(async {
        let depth = Rc::new(Cell::new(0u32));
        let max_depth = Rc::new(Cell::new(0u32));
        let calls = Rc::new(Cell::new(0u32));
        let (d, m, c) = (depth.clone(), max_depth.clone(), calls.clone());
        let _reclaimer = alloc::register_reclaimer(move |_wanted| {
            c.set(c.get() + 1);
            d.set(d.get() + 1);
            m.set(m.get().max(d.get()));
            // Over the limit again, from inside reclaim: must not recurse.
            let scratch = black_box(vec![0u8; 8 * MIB]);
            drop(scratch);
            d.set(d.get() - 1);
            0
        });
        let before = alloc::stats();
        let big = black_box(vec![0u8; 8 * MIB]);
        let s = alloc::stats();
        drop(big);
        assert_eq!(calls.get(), 1);
        assert_eq!(max_depth.get(), 1);
        assert_eq!(s.reclaims, before.reclaims + 1);
        // The reclaimer's own allocation and `big` both went through.
        assert!(s.over_limit >= before.over_limit + 2);
        assert_near(delta(&alloc::stats(), &before), 0, "after dropping");
    });
}

#[test]
fn reclaimers_run_in_order_until_enough_is_freed() {
    rt(1).memory(4 * MIB as u64).build().unwrap().run(async {
        let first = Cache::default();
        let second = Cache::default();
        let _r1 = first.reclaimer();
        let _r2 = second.reclaimer();
        second.insert(vec![0; MIB]);
        // Nothing to free in the first: the second is asked too.
        let big = black_box(vec![0u8; 4 * MIB]);
        assert_eq!((first.calls.get(), second.calls.get()), (1, 1));
        assert!(second.items.borrow().is_empty());
        drop(big);
        // Enough freed by the first: the second is not asked.
        first.insert(vec![0; 2 * MIB]);
        second.insert(vec![0; MIB]);
        let big = black_box(vec![0u8; 2 * MIB]);
        assert_eq!((first.calls.get(), second.calls.get()), (2, 1));
        assert_eq!(second.items.borrow().len(), 1);
        drop(big);
    });
}

#[test]
fn dropped_or_panicking_reclaimers_are_not_called() {
    rt(1).memory(2 * MIB as u64).build().unwrap().run(async {
        let calls = Rc::new(Cell::new(0u32));
        let c = calls.clone();
        drop(alloc::register_reclaimer(move |_| {
            c.set(c.get() + 1);
            0
        }));
        let c = calls.clone();
        let _panicky = alloc::register_reclaimer(move |_| {
            c.set(c.get() + 10);
            panic!("reclaimer panics (expected by the test)");
        });
        let before = alloc::stats();
        let a = black_box(vec![0u8; 4 * MIB]);
        let b = black_box(vec![0u8; 4 * MIB]);
        assert_eq!(calls.get(), 10, "the panicking one ran once");
        let s = alloc::stats();
        assert_eq!(s.reclaims, before.reclaims + 1);
        assert!(s.over_limit >= before.over_limit + 2);
        drop((a, b));
    });
}

#[test]
fn free_on_another_shard_is_credited_to_the_owner() {
    rt(2).build().unwrap().run(async {
        let s1_before = stats_on(1).await;
        let s0_before = alloc::stats();
        // Allocated on shard 1, freed on shard 0.
        let block: Vec<u8> = submit_to(1, || async { vec![7u8; 4 * MIB] }).await.unwrap();
        let s1_mid = stats_on(1).await;
        assert_near(
            delta(&s1_mid, &s1_before),
            4 * MIB as i64,
            "shard 1 owns the block",
        );
        drop(block);
        let s0_after = alloc::stats();
        let s1_after = stats_on(1).await;
        assert_near(
            delta(&s1_after, &s1_before),
            0,
            "shard 1 after the foreign free",
        );
        assert!(s1_after.foreign_frees > s1_mid.foreign_frees);
        assert!(s1_after.frees > s1_mid.frees);
        // Shard 0 freed it but is not debited for it.
        // (Shard 0's own foreign frees move too: shard 1 frees the
        // closures shard 0 sends it.)
        assert_near(delta(&s0_after, &s0_before), 0, "shard 0");
    });
}

#[test]
fn free_after_the_owner_exited_counts_nowhere() {
    let block = rt(2)
        .build()
        .unwrap()
        .run(async { submit_to(1, || async { vec![7u8; MIB] }).await.unwrap() });
    // Shard 1's thread has exited; this thread (shard 0) is still accounted.
    let before = alloc::stats();
    assert_eq!(before.shard, None);
    drop(block);
    let after = alloc::stats();
    assert_eq!(after.allocated, before.allocated);
    assert_eq!(after.frees, before.frees);
}

#[test]
fn threads_that_are_not_shards_are_not_accounted() {
    std::thread::spawn(|| {
        let v = black_box(vec![0u8; MIB]);
        let s = alloc::stats();
        drop(v);
        assert_eq!(s, Stats::default());
    })
    .join()
    .unwrap();
}

#[cfg(feature = "cli")]
#[test]
fn memory_flag_accepts_suffixes() {
    use clap::Parser;
    use seastar_core::runtime::{MemoryArgs, RuntimeArgs};

    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        runtime: RuntimeArgs,
        #[command(flatten)]
        memory: MemoryArgs,
    }
    let parse = |s: &str| Args::try_parse_from(["app", "--memory", s]).map(|a| a.memory.memory);
    assert_eq!(parse("4096").unwrap(), Some(4096));
    assert_eq!(parse("64k").unwrap(), Some(64 << 10));
    assert_eq!(parse("512M").unwrap(), Some(512 << 20));
    assert_eq!(parse("2G").unwrap(), Some(2 << 30));
    assert_eq!(parse("2GiB").unwrap(), Some(2 << 30));
    assert_eq!(parse("1T").unwrap(), Some(1 << 40));
    assert!(parse("12X").is_err());
    assert!(parse("G").is_err());
    assert!(parse("99999999999T").is_err());
    assert_eq!(Args::parse_from(["app"]).memory.memory, None);

    let args = Args::parse_from(["app", "--smp", "2", "--memory", "64M"]);
    let limit = args
        .memory
        .apply(args.runtime.builder().unwrap())
        .handle_signals(false)
        .build()
        .unwrap()
        .run(async { alloc::stats().limit });
    assert_eq!(limit, Some(32 << 20));
}
