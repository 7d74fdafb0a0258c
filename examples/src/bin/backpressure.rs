//! Chapter 6: back-pressure with semaphores and gates.
use seastar_core::{
    Runtime, spawn_local,
    sync::{Gate, Semaphore},
    timer,
};
use std::{cell::Cell, rc::Rc, time::Duration};

fn main() {
    Runtime::builder()
        .shards(1)
        .handle_signals(false)
        .build()
        .unwrap()
        .run(async {
            let limit = Semaphore::new(2); // at most 2 requests at a time
            let gate = Gate::new(); // tracks the work still running
            let running = Rc::new(Cell::new(0));
            let peak = Rc::new(Cell::new(0));
            for _ in 0..10 {
                let units = limit.acquire(1).await.unwrap(); // waits while 2 are running
                let guard = gate.enter().unwrap();
                let (running, peak) = (running.clone(), peak.clone());
                spawn_local(async move {
                    running.set(running.get() + 1);
                    peak.set(peak.get().max(running.get()));
                    timer::sleep(Duration::from_millis(2)).await;
                    running.set(running.get() - 1);
                    drop(units);
                    drop(guard);
                })
                .detach();
            }
            gate.close().await; // no new entries; waits for the guards to drop
            println!("peak concurrency: {}", peak.get());
            println!(
                "gate closed, entering again fails: {}",
                gate.enter().is_err()
            );
        });
}
