//! Chapter 2: futures and tasks on a shard.
use seastar_core::{Runtime, promise::promise, spawn_local, yield_now};
use std::{cell::RefCell, rc::Rc};

fn main() {
    Runtime::builder()
        .shards(1)
        .handle_signals(false)
        .build()
        .unwrap()
        .run(async {
            // Tasks stay on the shard that spawned them, so `Rc` and `RefCell` are fine.
            let log = Rc::new(RefCell::new(Vec::new()));
            let l = log.clone();
            let task = spawn_local(async move {
                l.borrow_mut().push("task starts");
                yield_now().await; // let the other ready tasks run
                l.borrow_mut().push("task ends");
                21 * 2
            });
            log.borrow_mut().push("main goes on");
            let answer = task.await.unwrap();
            println!("task returned {answer}");

            // A promise hands a value from one task to another.
            let (p, f) = promise::<String>();
            spawn_local(async move { p.set_value("kept".to_string()) }).detach();
            println!("promise {}", f.await.unwrap());
            println!("log: {:?}", log.borrow());
        });
}
