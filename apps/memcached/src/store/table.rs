//! The item table: a slab of entries, a hash index and an LRU list.
//!
//! Entries live in a `Vec` of slots and refer to each other by index: the
//! LRU is a doubly linked list threaded through `prev`/`next` (head = most
//! recently used), free slots form a singly linked free list. The hash index
//! is a `hashbrown::HashTable<u32>` of slot numbers that hashes and compares
//! through the slot, so each key is stored exactly once (in its entry) and
//! no `unsafe` or self-reference is needed. Indices are `u32`: a shard holds
//! at most 4 billion items.
//!
//! This layer knows nothing of time, memory limits or statistics; the
//! store (`store/mod.rs`) enforces those on top.

use std::hash::BuildHasher;

use bytes::Bytes;
use foldhash::fast::RandomState;
use hashbrown::HashTable;

use super::ValueBlock;
use crate::protocol::encode;

/// "No slot" in links.
pub(crate) const NIL: u32 = u32::MAX;

/// One stored item.
#[derive(Debug)]
pub(crate) struct Entry {
    /// The item's answer to a text `get`, `VALUE <key> <flags> <bytes>\r\n
    /// <value>\r\n` ([`encode::value_block`]), built once when it is stored
    /// (memcached keeps the same suffix in its items): key and value are
    /// slices of it. One allocation per item, shared (`Bytes`): a large
    /// hit goes to the socket by reference, not copied.
    data: Bytes,
    /// Length of the key (keys are at most 250 bytes).
    klen: u8,
    /// Where the value starts in `data`.
    value_at: u16,
    pub flags: u32,
    /// Expiry deadline in server seconds (see `time`).
    pub deadline: i64,
    pub cas: u64,
    /// Last store or access time, for `flush_all` and the meta `l` flag.
    pub time: i64,
    pub fetched: bool,
    pub stale: bool,
    pub token_sent: bool,
    prev: u32,
    next: u32,
}

/// Where the key starts in an entry's `data` (after `VALUE `).
const KEY_AT: usize = 6;

impl Entry {
    /// Builds an unlinked entry from key and value.
    pub fn new(key: &[u8], value: &[u8], flags: u32, deadline: i64, cas: u64, time: i64) -> Self {
        let (data, value_at) = encode::value_block(key, flags, value);
        Entry {
            data: Bytes::from(data),
            klen: u8::try_from(key.len()).unwrap_or(u8::MAX),
            // The `VALUE` line is at most 6 + 255 + 2 * 21 + 2 bytes.
            value_at: value_at as u16,
            flags,
            deadline,
            cas,
            time,
            fetched: false,
            stale: false,
            token_sent: false,
            prev: NIL,
            next: NIL,
        }
    }

    pub fn key(&self) -> &[u8] {
        &self.data[KEY_AT..KEY_AT + usize::from(self.klen)]
    }

    pub fn value(&self) -> &[u8] {
        &self.data[usize::from(self.value_at)..self.data.len() - 2]
    }

    /// The text `VALUE` block, for [`Out::put_block`](crate::protocol::Out::put_block).
    pub fn block(&self) -> ValueBlock<'_> {
        ValueBlock {
            bytes: &self.data,
            line_end: usize::from(self.value_at) - 2,
            cas: self.cas,
        }
    }

    /// Bytes charged against the memory limit ([`item_cost`]).
    pub fn size(&self) -> usize {
        item_cost(self.data.len())
    }
}

/// Bytes of the hash index charged per item: a `u32` slot number and a
/// control byte, doubled for the free room the index keeps (a load factor
/// between 7/16 and 7/8).
const INDEX_COST: usize = 2 * (4 + 1);

/// What an item whose `VALUE` block is `block_len` bytes really costs: the
/// block's allocation (malloc's 16-byte granularity and header), its table
/// slot (the entry itself) and its share of the hash index. This is what
/// `-m` bounds, as memcached's slabs bound whole chunks.
pub(crate) fn item_cost(block_len: usize) -> usize {
    block_len.div_ceil(16) * 16 + 16 + std::mem::size_of::<Slot>() + INDEX_COST
}

#[derive(Debug)]
enum Slot {
    Used(Entry),
    Free { next_free: u32 },
}

/// Slab + hash index + LRU list.
#[derive(Debug)]
pub(crate) struct Table {
    slots: Vec<Slot>,
    free: u32,
    index: HashTable<u32>,
    hasher: RandomState,
    head: u32,
    tail: u32,
    len: usize,
}

fn used(slots: &[Slot], i: u32) -> Option<&Entry> {
    match slots.get(i as usize) {
        Some(Slot::Used(e)) => Some(e),
        _ => None,
    }
}

impl Table {
    pub fn new() -> Self {
        Table {
            slots: Vec::new(),
            free: NIL,
            index: HashTable::new(),
            hasher: RandomState::default(),
            head: NIL,
            tail: NIL,
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Number of slots (used or free), for the sweeper's cursor.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    pub fn find(&self, key: &[u8]) -> Option<u32> {
        let h = self.hasher.hash_one(key);
        let slots = &self.slots;
        self.index
            .find(h, |&i| used(slots, i).is_some_and(|e| e.key() == key))
            .copied()
    }

    pub fn get(&self, i: u32) -> Option<&Entry> {
        used(&self.slots, i)
    }

    pub fn get_mut(&mut self, i: u32) -> Option<&mut Entry> {
        match self.slots.get_mut(i as usize) {
            Some(Slot::Used(e)) => Some(e),
            _ => None,
        }
    }

    /// The least recently used entry.
    pub fn tail(&self) -> Option<u32> {
        (self.tail != NIL).then_some(self.tail)
    }

    /// Links a new entry at the LRU head. The key must not be present.
    pub fn insert(&mut self, mut entry: Entry) -> u32 {
        let h = self.hasher.hash_one(entry.key());
        entry.prev = NIL;
        entry.next = self.head;
        let i = if self.free != NIL {
            let i = self.free;
            if let Slot::Free { next_free } = self.slots[i as usize] {
                self.free = next_free;
            }
            self.slots[i as usize] = Slot::Used(entry);
            i
        } else {
            self.slots.push(Slot::Used(entry));
            (self.slots.len() - 1) as u32
        };
        if let Some(old_head) = self.get_mut(self.head) {
            old_head.prev = i;
        }
        self.head = i;
        if self.tail == NIL {
            self.tail = i;
        }
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.index.insert_unique(h, i, |&j| {
            used(slots, j).map_or(0, |e| hasher.hash_one(e.key()))
        });
        self.len += 1;
        i
    }

    /// Unlinks and returns the entry in slot `i`.
    pub fn remove(&mut self, i: u32) -> Option<Entry> {
        let (prev, next, h) = {
            let e = self.get(i)?;
            (e.prev, e.next, self.hasher.hash_one(e.key()))
        };
        if let Ok(found) = self.index.find_entry(h, |&j| j == i) {
            found.remove();
        }
        self.unlink(i, prev, next);
        let slot = std::mem::replace(
            &mut self.slots[i as usize],
            Slot::Free {
                next_free: self.free,
            },
        );
        self.free = i;
        self.len -= 1;
        match slot {
            Slot::Used(e) => Some(e),
            Slot::Free { .. } => None,
        }
    }

    /// Moves slot `i` to the LRU head.
    pub fn bump(&mut self, i: u32) {
        if self.head == i {
            return;
        }
        let Some((prev, next)) = self.get(i).map(|e| (e.prev, e.next)) else {
            return;
        };
        self.unlink(i, prev, next);
        let old_head = self.head;
        if let Some(e) = self.get_mut(i) {
            e.prev = NIL;
            e.next = old_head;
        }
        if let Some(h) = self.get_mut(old_head) {
            h.prev = i;
        }
        self.head = i;
        if self.tail == NIL {
            self.tail = i;
        }
    }

    fn unlink(&mut self, i: u32, prev: u32, next: u32) {
        match self.get_mut(prev) {
            Some(p) => p.next = next,
            None => self.head = next,
        }
        match self.get_mut(next) {
            Some(n) => n.prev = prev,
            None => self.tail = prev,
        }
        if let Some(e) = self.get_mut(i) {
            e.prev = NIL;
            e.next = NIL;
        }
    }

    /// Keys from most to least recently used (tests and debugging).
    #[cfg(test)]
    pub fn lru_keys(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut i = self.head;
        while let Some(e) = self.get(i) {
            out.push(e.key().to_vec());
            i = e.next;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(k: &str) -> Entry {
        Entry::new(k.as_bytes(), b"v", 0, i64::MAX, 1, 0)
    }

    fn keys(t: &Table) -> Vec<String> {
        t.lru_keys()
            .into_iter()
            .map(|k| String::from_utf8(k).unwrap())
            .collect()
    }

    /// An entry's kept block is `encode::value`'s reply, byte for byte, and
    /// its key and value are the ones stored.
    #[test]
    fn the_kept_value_block_is_the_text_reply() {
        let long_key = vec![b'k'; 250];
        let cases: [(&[u8], &[u8], u32); 4] = [
            (b"a", b"", 0),
            (b"key", b"hello world", 7),
            (&long_key, &[b'v'; 1000], u32::MAX),
            (b"k", b"with\r\ninside", 1_000_000),
        ];
        for (key, value, flags) in cases {
            let e = Entry::new(key, value, flags, i64::MAX, 42, 0);
            assert_eq!(e.key(), key);
            assert_eq!(e.value(), value);
            for cas in [None, Some(42), Some(u64::MAX)] {
                let mut want = bytes::BytesMut::new();
                encode::value(&mut want, key, flags, value, cas);
                let mut got = bytes::BytesMut::new();
                let b = e.block();
                encode::stored_value(&mut got, b.bytes, b.line_end, cas);
                assert_eq!(got, want, "flags {flags}, cas {cas:?}");
            }
        }
    }

    #[test]
    fn insert_find_remove() {
        let mut t = Table::new();
        let a = t.insert(entry("a"));
        let b = t.insert(entry("b"));
        assert_eq!(t.find(b"a"), Some(a));
        assert_eq!(t.find(b"b"), Some(b));
        assert_eq!(t.find(b"c"), None);
        assert_eq!(t.remove(a).unwrap().key(), b"a");
        assert_eq!(t.find(b"a"), None);
        assert_eq!(t.len(), 1);
        // The freed slot is reused.
        assert_eq!(t.insert(entry("c")), a);
        assert_eq!(t.capacity(), 2);
    }

    #[test]
    fn lru_order_follows_inserts_and_bumps() {
        let mut t = Table::new();
        let a = t.insert(entry("a"));
        let _b = t.insert(entry("b"));
        let c = t.insert(entry("c"));
        assert_eq!(keys(&t), ["c", "b", "a"]);
        assert_eq!(t.tail(), Some(a));
        t.bump(a);
        assert_eq!(keys(&t), ["a", "c", "b"]);
        t.bump(a);
        assert_eq!(keys(&t), ["a", "c", "b"]);
        t.remove(c);
        assert_eq!(keys(&t), ["a", "b"]);
        let b = t.find(b"b").unwrap();
        t.remove(b);
        assert_eq!(t.tail(), Some(a));
        t.remove(a);
        assert_eq!(t.tail(), None);
        assert!(keys(&t).is_empty());
    }

    #[test]
    fn many_keys_survive_table_growth() {
        let mut t = Table::new();
        for i in 0..2000 {
            t.insert(entry(&format!("key{i}")));
        }
        for i in (0..2000).step_by(2) {
            let idx = t.find(format!("key{i}").as_bytes()).unwrap();
            t.remove(idx);
        }
        for i in 0..2000 {
            assert_eq!(t.find(format!("key{i}").as_bytes()).is_some(), i % 2 == 1);
        }
        assert_eq!(t.len(), 1000);
    }
}
