//! [`SemaphoreUnits`]: units held from a [`Semaphore`], returned on drop.
//!
//! Holding units as a value rather than as a count to remember to give
//! back is what makes a semaphore safe to use with `?` and cancellation:
//! whatever path a task leaves by, the units go back. A holder can be
//! split (hand part of a budget to a sub-task), partly returned early
//! (release what a shrinking request no longer needs), merged, or
//! forgotten (the resource is gone for good).

use std::fmt;

use super::Semaphore;

/// Units held from a [`Semaphore`]; dropping them returns them.
///
/// ```
/// # seastar_core::block_on(async {
/// let sem = seastar_core::sync::Semaphore::new(4);
/// let mut units = sem.acquire(4).await.unwrap();
/// let part = units.split(1);
/// units.return_units(2);
/// assert_eq!((units.count(), part.count(), sem.available_units()), (1, 1, 2));
/// # });
/// ```
#[must_use = "dropping the units returns them at once"]
pub struct SemaphoreUnits {
    pub(super) sem: Semaphore,
    pub(super) units: usize,
}

impl fmt::Debug for SemaphoreUnits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphoreUnits")
            .field("units", &self.units)
            .finish()
    }
}

impl SemaphoreUnits {
    /// Number of units held.
    ///
    /// ```
    /// let sem = seastar_core::sync::Semaphore::new(2);
    /// assert_eq!(sem.try_acquire(2).unwrap().count(), 2);
    /// ```
    pub fn count(&self) -> usize {
        self.units
    }

    /// Moves `units` of these units into a new holder.
    ///
    /// ```
    /// let sem = seastar_core::sync::Semaphore::new(3);
    /// let mut all = sem.try_acquire(3).unwrap();
    /// let one = all.split(1);
    /// assert_eq!((all.count(), one.count()), (2, 1));
    /// ```
    ///
    /// # Panics
    ///
    /// If `units` exceeds [`count`](Self::count).
    pub fn split(&mut self, units: usize) -> SemaphoreUnits {
        assert!(units <= self.units, "split {units} of {} units", self.units);
        self.units -= units;
        self.sem.units(units)
    }

    /// Returns `units` of these units to the semaphore now.
    ///
    /// ```
    /// let sem = seastar_core::sync::Semaphore::new(3);
    /// let mut u = sem.try_acquire(3).unwrap();
    /// u.return_units(2);
    /// assert_eq!(sem.available_units(), 2);
    /// ```
    ///
    /// # Panics
    ///
    /// If `units` exceeds [`count`](Self::count).
    pub fn return_units(&mut self, units: usize) {
        assert!(
            units <= self.units,
            "return {units} of {} units",
            self.units
        );
        self.units -= units;
        self.sem.signal(units);
    }

    /// Takes over `other`'s units (both must come from one semaphore).
    ///
    /// ```
    /// let sem = seastar_core::sync::Semaphore::new(3);
    /// let mut a = sem.try_acquire(1).unwrap();
    /// a.adopt(sem.try_acquire(2).unwrap());
    /// assert_eq!(a.count(), 3);
    /// ```
    ///
    /// # Panics
    ///
    /// If `other` belongs to another semaphore.
    pub fn adopt(&mut self, mut other: SemaphoreUnits) {
        assert!(
            self.sem.same_as(&other.sem),
            "adopting units of another semaphore"
        );
        self.units += std::mem::take(&mut other.units);
    }

    /// Keeps the units out of the semaphore for good; returns how many.
    ///
    /// ```
    /// let sem = seastar_core::sync::Semaphore::new(2);
    /// assert_eq!(sem.try_acquire(2).unwrap().forget(), 2);
    /// assert_eq!(sem.available_units(), 0);
    /// ```
    pub fn forget(mut self) -> usize {
        std::mem::take(&mut self.units)
    }
}

impl Drop for SemaphoreUnits {
    fn drop(&mut self) {
        if self.units > 0 {
            self.sem.signal(self.units);
        }
    }
}
