//! The CPU cost of the stack's own work per UDP echo, without a device or
//! a runtime: a received frame checked and queued on its port, taken, and
//! the reply built in place in a device's buffer. Run in release:
//!
//! ```sh
//! cargo test --release -p seastar-net --features native --test native_stack_cost -- --ignored --nocapture
//! ```

#![cfg(feature = "native")]

mod native_stack_support;

use std::io;
use std::os::fd::RawFd;
use std::time::Instant;

use native_stack_support::*;
use seastar_net::native::device::Device;
use seastar_net::native::ethernet::Mac;
use seastar_net::native::iface::Iface;
use seastar_net::native::state::{StackOptions, State};

/// A device that builds each frame in one reused buffer and drops it.
struct Sink {
    buf: Vec<u8>,
    sent: u64,
}

impl Device for Sink {
    fn receive(&mut self, _: usize, _: &mut dyn FnMut(&[u8])) -> usize {
        0
    }
    fn transmit(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> io::Result<()> {
        fill(&mut self.buf[..len]);
        self.sent += 1;
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn wake_fd(&self) -> RawFd {
        -1
    }
    fn mac(&self) -> [u8; 6] {
        US_MAC
    }
    fn frame_max(&self) -> usize {
        1514
    }
}

fn echo_cost(payload: usize, rounds: u32) -> f64 {
    let iface = Iface {
        addr: US,
        netmask: std::net::Ipv4Addr::new(255, 255, 255, 0),
        gateway: None,
        mac: Mac(US_MAC),
    };
    let mut st = State::new(iface, StackOptions::default(), 0, 1, true, 1514);
    st.open_port(7).unwrap();
    let now = Instant::now();
    st.input(&arp_reply(PEER_MAC, PEER, US_MAC, US), now, false);
    let frame = udp_in(5555, 7, &vec![b'x'; payload]);
    let mut dev = Sink {
        buf: vec![0; 1514],
        sent: 0,
    };
    let start = Instant::now();
    for _ in 0..rounds {
        st.input(&frame, now, false);
        let (from, data) = st.take_datagram(7).expect("delivered");
        st.send_udp(Some(&mut dev), now, 7, from, &data).unwrap();
    }
    let ns = start.elapsed().as_nanos() as f64 / f64::from(rounds);
    assert_eq!(dev.sent, u64::from(rounds));
    assert_eq!(&dev.buf[..6], &PEER_MAC);
    ns
}

#[test]
fn echo_costs_little_and_sends_every_reply() {
    // Checked in any build: every round delivers and replies.
    let ns = echo_cost(32, 1000);
    assert!(ns > 0.0);
}

#[test]
#[ignore = "a measurement: run in release with --ignored --nocapture"]
fn measure_echo_cost() {
    for payload in [32, 512, 1400] {
        echo_cost(payload, 10_000);
        let ns = echo_cost(payload, 1_000_000);
        println!("UDP echo through the stack, {payload}-byte payload: {ns:.0} ns");
    }
}
