//! `sync::Queue`: back-pressure both ways, FIFO hand-off, abort,
//! cancellation. Manual clock; runs on the backend chosen by
//! `SEASTAR_REACTOR_BACKEND`.

use std::cell::RefCell;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use futures::poll;
use seastar_core::sync::{Cause, Error, PushError, Queue};
use seastar_core::timer::{self, ManualClock};
use seastar_core::{spawn_local, yield_now};

async fn settle() {
    for _ in 0..4 {
        yield_now().await;
    }
}

#[seastar_core::test(manual_clock)]
async fn queue_pop_waits_for_a_push() {
    let q = Queue::new(2);
    let mut pop = q.pop();
    assert!(poll!(&mut pop).is_pending());
    q.push(7).await.unwrap();
    assert!(
        q.is_empty(),
        "the item went to the buffer, not the waiting consumer"
    );
    assert!(matches!(poll!(&mut pop), Poll::Ready(Ok(7))));
}

#[seastar_core::test(manual_clock)]
async fn queue_push_waits_for_room() {
    let q = Queue::new(2);
    q.push(1).await.unwrap();
    q.push(2).await.unwrap();
    let mut third = q.push(3);
    assert!(poll!(&mut third).is_pending());
    assert_eq!(q.len(), q.capacity());
    assert_eq!(q.pop().await.unwrap(), 1);
    assert_eq!(q.len(), 2, "the pop did not let the waiting push in");
    assert!(matches!(poll!(&mut third), Poll::Ready(Ok(()))));
    assert_eq!(q.try_pop().unwrap(), Some(2));
    assert_eq!(q.try_pop().unwrap(), Some(3));
}

#[seastar_core::test(manual_clock)]
async fn queue_slow_consumer_bounds_a_fast_producer() {
    let q = Queue::new(3);
    let tx = q.clone();
    let producer = spawn_local(async move {
        for i in 0..20 {
            tx.push(i).await.unwrap();
        }
    });
    let mut got = Vec::new();
    while got.len() < 20 {
        settle().await; // the producer runs as far as it can
        assert_eq!(
            q.len(),
            (20 - got.len()).min(3),
            "producer not held at capacity"
        );
        got.push(q.pop().await.unwrap());
    }
    producer.await.unwrap();
    assert_eq!(got, (0..20).collect::<Vec<_>>());
}

#[seastar_core::test(manual_clock)]
async fn queue_waiting_pushes_enter_in_fifo_order() {
    let q = Queue::new(1);
    q.try_push(0).unwrap();
    let mut pushes: Vec<_> = (1..=3).map(|i| Box::pin(q.push(i))).collect();
    for p in &mut pushes {
        assert!(poll!(p.as_mut()).is_pending());
    }
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(q.pop().await.unwrap());
    }
    assert_eq!(got, vec![0, 1, 2, 3]);
    for p in pushes {
        p.await.unwrap();
    }
}

#[seastar_core::test(manual_clock)]
async fn queue_waiting_pops_are_served_in_fifo_order() {
    let q = Queue::new(4);
    let mut a = q.pop();
    let mut b = q.pop();
    assert!(poll!(&mut a).is_pending());
    assert!(poll!(&mut b).is_pending());
    q.try_push("first").unwrap();
    q.try_push("second").unwrap();
    assert!(matches!(poll!(&mut b), Poll::Ready(Ok("second"))));
    assert!(matches!(poll!(&mut a), Poll::Ready(Ok("first"))));
}

#[seastar_core::test(manual_clock)]
async fn queue_try_push_on_full_queue_gives_the_item_back() {
    let q = Queue::new(1);
    q.try_push(String::from("a")).unwrap();
    let Err(PushError::Full(item)) = q.try_push(String::from("b")) else {
        panic!()
    };
    assert_eq!(item, "b");
}

#[seastar_core::test(manual_clock)]
async fn queue_try_push_does_not_overtake_a_waiting_push() {
    let q = Queue::new(1);
    q.try_push(1).unwrap();
    let mut waiting = q.push(2);
    assert!(poll!(&mut waiting).is_pending());
    assert_eq!(q.try_pop().unwrap(), Some(1)); // room goes to `waiting`
    assert!(matches!(q.try_push(3), Err(PushError::Full(3))));
    assert!(poll!(&mut waiting).is_ready());
    assert_eq!(q.try_pop().unwrap(), Some(2));
}

#[seastar_core::test(manual_clock)]
async fn queue_try_pop_on_empty_queue_is_none() {
    let q = Queue::<u8>::new(1);
    assert_eq!(q.try_pop().unwrap(), None);
}

#[seastar_core::test(manual_clock)]
async fn queue_abort_fails_waiting_pushes_and_pops() {
    let full = Queue::new(1);
    full.try_push(1).unwrap();
    let mut push = full.push(2);
    assert!(poll!(&mut push).is_pending());
    full.abort(Cause::msg("consumer gone"));
    let Err(PushError::Aborted(item, cause)) = push.await else {
        panic!("push not failed")
    };
    assert_eq!((item, cause.to_string()), (2, "consumer gone".to_string()));

    let empty = Queue::<u8>::new(1);
    let mut pop = empty.pop();
    assert!(poll!(&mut pop).is_pending());
    empty.abort(Cause::msg("producer gone"));
    let err = pop.await.unwrap_err();
    assert!(matches!(err, Error::Broken(_)));
    assert_eq!(err.to_string(), "broken: producer gone");
}

#[seastar_core::test(manual_clock)]
async fn queue_abort_drops_buffered_items_and_refuses_new_work() {
    let item = Rc::new(());
    let q = Queue::new(2);
    q.try_push(item.clone()).unwrap();
    q.abort(Cause::msg("stop"));
    assert_eq!(Rc::strong_count(&item), 1, "buffered item not dropped");
    assert!(q.is_empty());
    assert!(matches!(
        q.try_push(item.clone()),
        Err(PushError::Aborted(..))
    ));
    assert!(q.push(item.clone()).await.is_err());
    assert!(q.try_pop().is_err());
    assert!(q.pop().await.is_err());
}

#[seastar_core::test(manual_clock)]
async fn queue_cancelled_push_drops_its_item_and_its_turn() {
    let q = Queue::new(1);
    q.try_push(0).unwrap();
    let mut gone = q.push(1);
    let mut kept = q.push(2);
    assert!(poll!(&mut gone).is_pending());
    assert!(poll!(&mut kept).is_pending());
    drop(gone);
    assert_eq!(q.pop().await.unwrap(), 0);
    assert!(poll!(&mut kept).is_ready());
    assert_eq!(q.pop().await.unwrap(), 2);
    assert!(q.is_empty());
}

#[seastar_core::test(manual_clock)]
async fn queue_cancelled_pop_holding_an_item_passes_it_to_the_next_pop() {
    let q = Queue::new(1);
    let mut gone = q.pop();
    let mut next = q.pop();
    assert!(poll!(&mut gone).is_pending());
    assert!(poll!(&mut next).is_pending());
    q.try_push("x").unwrap(); // handed to `gone`, which never runs again
    drop(gone);
    assert!(matches!(poll!(&mut next), Poll::Ready(Ok("x"))));
}

#[seastar_core::test(manual_clock)]
async fn queue_cancelled_pop_holding_an_item_puts_it_back_at_the_head() {
    let q = Queue::new(2);
    let mut gone = q.pop();
    assert!(poll!(&mut gone).is_pending());
    q.try_push(1).unwrap();
    q.try_push(2).unwrap();
    drop(gone);
    assert_eq!(q.try_pop().unwrap(), Some(1), "item lost or reordered");
    assert_eq!(q.try_pop().unwrap(), Some(2));
}

#[seastar_core::test(manual_clock)]
async fn queue_pop_under_timeout_loses_no_item() {
    let q = Queue::new(4);
    let got = Rc::new(RefCell::new(Vec::new()));
    let (rx, g) = (q.clone(), got.clone());
    let consumer = spawn_local(async move {
        let mut timeouts = 0;
        while g.borrow().len() < 3 {
            match timer::timeout(Duration::from_secs(1), rx.pop()).await {
                Ok(item) => g.borrow_mut().push(item.unwrap()),
                Err(_) => timeouts += 1,
            }
        }
        timeouts
    });
    for i in 0..3 {
        settle().await;
        ManualClock::advance(Duration::from_secs(1)).await; // one timeout
        settle().await;
        q.push(i).await.unwrap();
    }
    assert_eq!(consumer.await.unwrap(), 3);
    assert_eq!(*got.borrow(), vec![0, 1, 2]);
}

#[seastar_core::test(manual_clock)]
async fn queue_reports_len_capacity_and_emptiness() {
    let q = Queue::new(3);
    assert!(q.is_empty());
    assert_eq!((q.len(), q.capacity()), (0, 3));
    q.try_push(()).unwrap();
    assert!(!q.is_empty());
    assert_eq!(q.len(), 1);
}

#[test]
#[should_panic(expected = "capacity of at least 1")]
fn queue_with_zero_capacity_is_refused() {
    let _ = Queue::<u8>::new(0);
}
