//! [`IoClass`]: a priority class of I/O requests.

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

struct ClassInfo {
    id: usize,
    name: Arc<str>,
    shares: AtomicU32,
}

/// A priority class: requests of each class wait in their own queue, and
/// while several classes have requests waiting each gets disk time in
/// proportion to its shares. A class is a cheap handle that can be sent to
/// and used on every shard (each shard keeps its own queue for it).
///
/// ```
/// use seastar_io::IoClass;
/// let compaction = IoClass::new("compaction", 100);
/// let query = IoClass::new("query", 1000);
/// assert_eq!(query.shares(), 1000);
/// compaction.set_shares(50);
/// assert_eq!((compaction.name(), compaction.shares()), ("compaction", 50));
/// assert_eq!(IoClass::default().name(), "default");
/// ```
#[derive(Clone)]
pub struct IoClass(Arc<ClassInfo>);

impl IoClass {
    /// A new class with `shares` (at least 1).
    pub fn new(name: impl Into<String>, shares: u32) -> IoClass {
        IoClass(Arc::new(ClassInfo {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            name: name.into().into(),
            shares: AtomicU32::new(shares.max(1)),
        }))
    }

    /// The class name (the `class` label of the metrics).
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// Current shares.
    pub fn shares(&self) -> u32 {
        self.0.shares.load(Ordering::Relaxed)
    }

    /// Changes the shares (at least 1); takes effect on every shard with
    /// the next dispatch.
    pub fn set_shares(&self, shares: u32) {
        self.0.shares.store(shares.max(1), Ordering::Relaxed);
    }

    pub(crate) fn id(&self) -> usize {
        self.0.id
    }
}

impl Default for IoClass {
    /// The class of requests that name none: `"default"`, 100 shares.
    fn default() -> IoClass {
        static DEFAULT: OnceLock<IoClass> = OnceLock::new();
        DEFAULT
            .get_or_init(|| {
                IoClass(Arc::new(ClassInfo {
                    id: 0,
                    name: "default".into(),
                    shares: AtomicU32::new(100),
                }))
            })
            .clone()
    }
}

impl PartialEq for IoClass {
    fn eq(&self, other: &IoClass) -> bool {
        self.0.id == other.0.id
    }
}

impl Eq for IoClass {}

impl fmt::Debug for IoClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IoClass")
            .field("name", &self.name())
            .field("shares", &self.shares())
            .finish()
    }
}
