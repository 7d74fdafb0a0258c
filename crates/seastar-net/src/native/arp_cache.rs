//! The ARP cache of one shard: resolved addresses with an expiry, and a
//! bounded queue of frames waiting for a resolution.
//!
//! Times come from the caller (the shard clock), so the cache is a plain
//! value that tests drive with any instants.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::ethernet::Mac;
use super::word_hash::WordMap;

/// How the cache ages entries and bounds its queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpTimes {
    /// How long a learned address stays valid.
    pub entry_ttl: Duration,
    /// How long a frame waits for its resolution before it is dropped.
    pub resolve_timeout: Duration,
    /// The interval between two requests for the same address.
    pub retry: Duration,
    /// The most frames waiting for resolutions (all addresses together).
    pub queue_max: usize,
}

impl Default for ArpTimes {
    fn default() -> ArpTimes {
        ArpTimes {
            entry_ttl: Duration::from_secs(60),
            resolve_timeout: Duration::from_secs(3),
            retry: Duration::from_secs(1),
            queue_max: 64,
        }
    }
}

/// A frame waiting for its next hop's address: an Ethernet frame whose
/// destination MAC (bytes 0..6) is written on resolution.
#[derive(Debug)]
struct Waiting {
    next_hop: Ipv4Addr,
    since: Instant,
    frame: Vec<u8>,
}

/// What [`ArpCache::enqueue`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enqueued {
    /// Queued; send a request now (first frame for the address, or the
    /// last request is older than the retry interval).
    SendRequest,
    /// Queued behind a request already sent.
    Queued,
    /// The queue is full: the frame was dropped.
    Full,
}

/// One shard's ARP cache.
#[derive(Debug, Default)]
pub struct ArpCache {
    times: ArpTimes,
    entries: WordMap<Ipv4Addr, (Mac, Instant)>,
    waiting: VecDeque<Waiting>,
    requested: WordMap<Ipv4Addr, Instant>,
    /// The entry the last lookup found (a server answers the same few
    /// neighbours over and over): checked before the map, forgotten when
    /// any entry is learned or dropped.
    last: Option<(Ipv4Addr, Mac, Instant)>,
}

impl ArpCache {
    /// An empty cache.
    pub fn new(times: ArpTimes) -> ArpCache {
        ArpCache {
            times,
            ..ArpCache::default()
        }
    }

    /// The address of `ip` if known and not expired at `now`.
    pub fn lookup(&mut self, ip: Ipv4Addr, now: Instant) -> Option<Mac> {
        if let Some((last, mac, expires)) = self.last
            && last == ip
            && now < expires
        {
            return Some(mac);
        }
        match self.entries.get(&ip) {
            Some(&(mac, expires)) if now < expires => {
                self.last = Some((ip, mac, expires));
                Some(mac)
            }
            Some(_) => {
                self.entries.remove(&ip);
                self.last = None;
                None
            }
            None => None,
        }
    }

    /// Whether `ip` has an entry (expired or not).
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        self.entries.contains_key(&ip)
    }

    /// Records `ip` at `mac` and returns the frames that waited for it,
    /// their destination MAC written.
    pub fn learn(&mut self, ip: Ipv4Addr, mac: Mac, now: Instant) -> Vec<Vec<u8>> {
        self.entries.insert(ip, (mac, now + self.times.entry_ttl));
        self.last = None;
        self.requested.remove(&ip);
        let mut ready = Vec::new();
        self.waiting.retain_mut(|w| {
            if w.next_hop != ip {
                return true;
            }
            let mut frame = std::mem::take(&mut w.frame);
            frame[0..6].copy_from_slice(&mac.0);
            ready.push(frame);
            false
        });
        ready
    }

    /// Queues `frame` (destination MAC to be written) for `next_hop`.
    pub fn enqueue(&mut self, next_hop: Ipv4Addr, frame: Vec<u8>, now: Instant) -> Enqueued {
        if self.waiting.len() >= self.times.queue_max {
            return Enqueued::Full;
        }
        self.waiting.push_back(Waiting {
            next_hop,
            since: now,
            frame,
        });
        match self.requested.get(&next_hop) {
            Some(&at) if now < at + self.times.retry => Enqueued::Queued,
            _ => {
                self.requested.insert(next_hop, now);
                Enqueued::SendRequest
            }
        }
    }

    /// Drops the frames that waited past the timeout (returns how many)
    /// and lists the addresses whose request should be sent again.
    pub fn tick(&mut self, now: Instant, resend: &mut Vec<Ipv4Addr>) -> usize {
        let before = self.waiting.len();
        let timeout = self.times.resolve_timeout;
        self.waiting.retain(|w| now < w.since + timeout);
        let dropped = before - self.waiting.len();
        let waiting = &self.waiting;
        self.requested
            .retain(|ip, _| waiting.iter().any(|w| w.next_hop == *ip));
        for (ip, at) in self.requested.iter_mut() {
            if now >= *at + self.times.retry {
                *at = now;
                resend.push(*ip);
            }
        }
        dropped
    }

    /// Frames waiting for resolutions.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// When [`tick`](Self::tick) next has work (a retry or a timeout), if
    /// anything waits.
    pub fn next_deadline(&self) -> Option<Instant> {
        let retry = self
            .requested
            .values()
            .map(|&at| at + self.times.retry)
            .min();
        let timeout = self
            .waiting
            .front()
            .map(|w| w.since + self.times.resolve_timeout);
        match (retry, timeout) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 9);
    const MAC: Mac = Mac([2, 0, 0, 0, 0, 9]);

    #[test]
    fn entries_expire_after_their_ttl() {
        let t0 = Instant::now();
        let mut c = ArpCache::new(ArpTimes::default());
        assert_eq!(c.lookup(IP, t0), None);
        assert!(c.learn(IP, MAC, t0).is_empty());
        assert_eq!(c.lookup(IP, t0 + Duration::from_secs(59)), Some(MAC));
        assert_eq!(c.lookup(IP, t0 + Duration::from_secs(60)), None);
        assert!(!c.contains(IP));
    }

    #[test]
    fn the_remembered_last_entry_follows_what_is_learned() {
        let t0 = Instant::now();
        let mut c = ArpCache::new(ArpTimes::default());
        let other = Ipv4Addr::new(10, 0, 0, 10);
        let moved = Mac([2, 0, 0, 0, 0, 0x19]);
        c.learn(IP, MAC, t0);
        assert_eq!(c.lookup(IP, t0), Some(MAC));
        assert_eq!(
            c.lookup(other, t0),
            None,
            "another address is not the last one's"
        );
        c.learn(IP, moved, t0 + Duration::from_secs(30));
        assert_eq!(c.lookup(IP, t0 + Duration::from_secs(31)), Some(moved));
        // The relearned entry lives 60 s from its learning, not the first.
        assert_eq!(c.lookup(IP, t0 + Duration::from_secs(89)), Some(moved));
        assert_eq!(c.lookup(IP, t0 + Duration::from_secs(90)), None);
    }

    #[test]
    fn waiting_frames_get_their_mac_in_order() {
        let t0 = Instant::now();
        let mut c = ArpCache::new(ArpTimes::default());
        assert_eq!(c.enqueue(IP, vec![0; 14], t0), Enqueued::SendRequest);
        assert_eq!(c.enqueue(IP, vec![1; 14], t0), Enqueued::Queued);
        let other = Ipv4Addr::new(10, 0, 0, 8);
        assert_eq!(c.enqueue(other, vec![2; 14], t0), Enqueued::SendRequest);
        let ready = c.learn(IP, MAC, t0);
        assert_eq!(ready.len(), 2);
        assert_eq!(&ready[0][..6], &MAC.0);
        assert_eq!(&ready[0][6..], &[0; 8]);
        assert_eq!(&ready[1][6..], &[1; 8]);
        assert_eq!(c.waiting(), 1);
    }

    #[test]
    fn the_queue_is_bounded_and_times_out_with_retries() {
        let t0 = Instant::now();
        let times = ArpTimes {
            queue_max: 3,
            ..ArpTimes::default()
        };
        let mut c = ArpCache::new(times);
        for _ in 0..3 {
            assert_ne!(c.enqueue(IP, vec![0; 14], t0), Enqueued::Full);
        }
        assert_eq!(c.enqueue(IP, vec![0; 14], t0), Enqueued::Full);
        assert_eq!(c.next_deadline(), Some(t0 + Duration::from_secs(1)));
        let mut resend = Vec::new();
        assert_eq!(c.tick(t0 + Duration::from_millis(500), &mut resend), 0);
        assert!(resend.is_empty());
        assert_eq!(c.tick(t0 + Duration::from_secs(1), &mut resend), 0);
        assert_eq!(resend, [IP]);
        assert_eq!(c.tick(t0 + Duration::from_secs(3), &mut resend), 3);
        assert_eq!(c.waiting(), 0);
        assert_eq!(c.next_deadline(), None);
    }
}
