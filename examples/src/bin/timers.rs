//! Chapter 3: timers.
use seastar_core::{Runtime, timer};
use std::{cell::Cell, rc::Rc, time::Duration};

fn main() {
    Runtime::builder()
        .shards(1)
        .handle_signals(false)
        .build()
        .unwrap()
        .run(async {
            let start = timer::now();
            timer::sleep(Duration::from_millis(20)).await;
            println!(
                "slept at least 20 ms: {}",
                start.elapsed() >= Duration::from_millis(20)
            );

            // `timeout` gives up on a future that takes too long.
            let slow = timer::sleep(Duration::from_secs(10));
            let r = timer::timeout(Duration::from_millis(10), slow).await;
            println!("timed out: {}", r.is_err());

            // A callback timer, here periodic.
            let ticks = Rc::new(Cell::new(0));
            let t = ticks.clone();
            let periodic = timer::Timer::new(move || t.set(t.get() + 1));
            periodic.arm_periodic(Duration::from_millis(5));
            timer::sleep(Duration::from_millis(60)).await;
            periodic.cancel();
            println!("ticked: {}", ticks.get() >= 3);
        });
}
