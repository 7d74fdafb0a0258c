//! Scheduling groups share the CPU by their shares (counted in polls).

use std::cell::Cell;
use std::rc::Rc;

use seastar_core::promise::promise;
use seastar_core::task::{SchedulingGroup, current_scheduling_group, spawn_local_in};
use seastar_core::{Runtime, spawn_local, yield_now};

fn rt() -> Runtime {
    Runtime::builder()
        .shards(1)
        .handle_signals(false)
        .build()
        .unwrap()
}

/// About the same CPU time per call, whatever the group.
fn burn() {
    let mut x = 0u64;
    for i in 0..2_000u64 {
        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
    }
    std::hint::black_box(x);
}

/// High/low polls of two groups (shares 400 and 100) of four CPU-bound
/// tasks each, over 25,000 polls.
fn polls_ratio_of_shares_400_to_100() -> f64 {
    rt().run(async {
        let low = SchedulingGroup::new("low", 100).unwrap();
        let high = SchedulingGroup::new("high", 400).unwrap();
        let polls = Rc::new([Cell::new(0u64), Cell::new(0u64)]);
        let stop = Rc::new(Cell::new(false));
        let (done_tx, done_rx) = promise::<()>();
        let done_tx = Rc::new(Cell::new(Some(done_tx)));
        const TOTAL: u64 = 25_000;
        for (slot, group) in [(0, low), (1, high)] {
            for _ in 0..4 {
                let (polls, stop, done_tx) = (polls.clone(), stop.clone(), done_tx.clone());
                spawn_local_in(group, async move {
                    while !stop.get() {
                        burn();
                        polls[slot].set(polls[slot].get() + 1);
                        if polls[0].get() + polls[1].get() >= TOTAL {
                            stop.set(true);
                            if let Some(tx) = done_tx.take() {
                                tx.set_value(());
                            }
                        }
                        yield_now().await;
                    }
                })
                .detach();
            }
        }
        done_rx.await.unwrap();
        polls[1].get() as f64 / polls[0].get() as f64
    })
}

#[test]
fn cpu_bound_groups_share_polls_by_their_shares() {
    // Runtime is measured in wall-clock time, so a stretch the VM's host
    // takes the CPU away (steal) is charged to the group that was running:
    // up to three tries, one of which must land within 10% of 4 (a wrong
    // split fails all three).
    let mut ratios = Vec::new();
    for _ in 0..3 {
        let ratio = polls_ratio_of_shares_400_to_100();
        ratios.push(ratio);
        if (3.6..=4.4).contains(&ratio) {
            return;
        }
    }
    panic!("high/low polls = {ratios:.2?}, want 4 within 10%");
}

#[seastar_core::test]
async fn tasks_inherit_the_spawning_group_and_report_it() {
    let g = SchedulingGroup::new("inherit", 200).unwrap();
    assert_eq!(current_scheduling_group(), SchedulingGroup::main());
    let inner = spawn_local_in(g, async {
        let nested = spawn_local(async { current_scheduling_group() });
        (current_scheduling_group(), nested.await.unwrap())
    });
    let (outer, nested) = inner.await.unwrap();
    assert_eq!(outer, g);
    assert_eq!(nested, g);
    assert_eq!(g.name(), "inherit");
    assert_eq!(g.shares(), 200);
}

#[seastar_core::test]
async fn a_waking_latency_group_is_served_before_a_busy_background_group() {
    let background = SchedulingGroup::new("background", 100).unwrap();
    let stop = Rc::new(Cell::new(false));
    for _ in 0..4 {
        let stop = stop.clone();
        spawn_local_in(background, async move {
            while !stop.get() {
                burn();
                yield_now().await;
            }
        })
        .detach();
    }
    // The main group (1000 shares) keeps getting turns while the
    // background group is saturated: 200 round trips through the queue.
    for _ in 0..200 {
        yield_now().await;
    }
    stop.set(true);
}

#[test]
fn zero_shares_are_refused() {
    assert!(SchedulingGroup::new("none", 0).is_err());
}
