//! A global allocator that counts heap allocations, so a bench can report allocations per
//! collection (or per datagram) next to its time.
//!
//! Included by a bench with `#[path = "common/counting_alloc.rs"] mod counting_alloc;`; the
//! `#[global_allocator]` below then applies to that bench's binary (only to the benches that
//! report allocations: the others measure with the system allocator as it is).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Allocations and reallocations since the bench started (frees are not counted).
pub static ALLOCS: AtomicU64 = AtomicU64::new(0);

struct Counting;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;
