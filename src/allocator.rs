//! The process's memory allocator: mimalloc or the system's malloc, chosen once, at the
//! first allocation, from `SIMTALLY_ALLOCATOR` (`mimalloc`, the default, or `system`).
//!
//! Why two: a file ingest allocates on the decode threads and frees on the encoder threads,
//! hundreds of MiB a second, and mimalloc takes a third off glibc's CPU time there (docs/performance.md,
//! File ingest). A Kafka ingest runs pass after pass on new threads for hours; its live heap
//! is flat (heaptrack: 153 MiB at its peak for 1 M records and for 3 M), but mimalloc's
//! resident memory climbs with the backlog (431 MiB for 3 M records, 570 MiB for 6 M) while
//! glibc's malloc, held to two arenas, levels off (382 and 401 MiB) at the same wall time and
//! a little less CPU (docs/performance.md, Kafka ingest). The binary's `main` therefore reruns a
//! Kafka ingest on the system allocator.
//!
//! Choosing at the first allocation, and never again, is what makes the switch sound: every
//! block is freed by the allocator that made it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::CStr;
use std::sync::atomic::{AtomicU8, Ordering};

use mimalloc::MiMalloc;

/// The environment variable that chooses the allocator.
pub const ALLOCATOR_ENV: &str = "SIMTALLY_ALLOCATOR";
const ALLOCATOR_ENV_C: &CStr = c"SIMTALLY_ALLOCATOR";

/// How many malloc arenas the system allocator may use (glibc's default is 8 per core): each
/// arena keeps the memory freed into it, and a long run's threads spread over all of them.
const SYSTEM_ARENAS: std::ffi::c_int = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allocator {
    Mimalloc,
    System,
}

impl Allocator {
    /// The allocator a value of [`ALLOCATOR_ENV`] names; unset means mimalloc.
    pub fn named(value: Option<&[u8]>) -> Result<Self, String> {
        match value {
            None | Some(b"mimalloc") => Ok(Allocator::Mimalloc),
            Some(b"system") => Ok(Allocator::System),
            Some(other) => Err(format!(
                "{ALLOCATOR_ENV}={} is not an allocator: use `mimalloc` (the default) or `system`",
                String::from_utf8_lossy(other)
            )),
        }
    }

    /// The one this process allocates with.
    pub fn in_use() -> Self {
        match chosen() {
            SYSTEM => Allocator::System,
            _ => Allocator::Mimalloc,
        }
    }
}

/// The global allocator of the `simtally` binary.
pub struct ProcessAllocator;

const UNDECIDED: u8 = 0;
const MIMALLOC: u8 = 1;
const SYSTEM: u8 = 2;
static CHOSEN: AtomicU8 = AtomicU8::new(UNDECIDED);

fn chosen() -> u8 {
    match CHOSEN.load(Ordering::Acquire) {
        UNDECIDED => choose(),
        choice => choice,
    }
}

#[cold]
fn choose() -> u8 {
    // SAFETY: `getenv` reads the environment without allocating, which an allocator must
    // not do; the first allocation comes before any thread could change the environment.
    let value = unsafe {
        let value = libc::getenv(ALLOCATOR_ENV_C.as_ptr());
        (!value.is_null()).then(|| CStr::from_ptr(value).to_bytes())
    };
    // Not through `Allocator::named`, whose message for an unknown name would allocate and
    // come back here. An unknown name allocates with the default; `main` then refuses it.
    let choice = match value {
        Some(b"system") => SYSTEM,
        _ => MIMALLOC,
    };
    if choice == MIMALLOC {
        commit_arenas_on_demand();
    }
    match CHOSEN.compare_exchange(UNDECIDED, choice, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => choice,
        Err(earlier) => earlier,
    }
}

// SAFETY: every call goes to the allocator chosen at the first call, which never changes,
// so each block is reallocated and freed by the allocator that made it.
unsafe impl GlobalAlloc for ProcessAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match chosen() {
            SYSTEM => unsafe { System.alloc(layout) },
            _ => unsafe { MiMalloc.alloc(layout) },
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match chosen() {
            SYSTEM => unsafe { System.alloc_zeroed(layout) },
            _ => unsafe { MiMalloc.alloc_zeroed(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match chosen() {
            SYSTEM => unsafe { System.dealloc(ptr, layout) },
            _ => unsafe { MiMalloc.dealloc(ptr, layout) },
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        match chosen() {
            SYSTEM => unsafe { System.realloc(ptr, layout, new_size) },
            _ => unsafe { MiMalloc.realloc(ptr, layout, new_size) },
        }
    }
}

/// Holds the system allocator to [`SYSTEM_ARENAS`] arenas, unless `MALLOC_ARENA_MAX` says
/// otherwise. Call it before the process starts threads.
pub fn limit_system_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: sets a parameter of the C library's malloc; no other thread runs yet.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, SYSTEM_ARENAS) };
    }
}

/// Before mimalloc's first arena: its memory is committed as it is used, not all at once
/// (mimalloc's default on Linux commits an arena eagerly). Each thread's heap then holds only
/// the pages it touched: a file ingest of 1 M records peaks about 90 MiB lower, with less
/// system time, and a daily ingest no longer grows by a few threads' worth when delta-rs
/// writes a checkpoint on threads of its own (docs/performance.md, Provider scale).
/// `MIMALLOC_ARENA_EAGER_COMMIT` in the environment still decides, if set.
fn commit_arenas_on_demand() {
    // SAFETY: sets an integer option without allocating; mimalloc reads it when it
    // reserves an arena, which this runs before.
    unsafe { mi_option_set_default(MI_OPTION_ARENA_EAGER_COMMIT, 0) }
}

/// `mi_option_arena_eager_commit` in mimalloc.h (v3). Checked by the test below.
const MI_OPTION_ARENA_EAGER_COMMIT: std::ffi::c_int = 4;

/// `mi_option_purge_delay` in mimalloc.h (v3, the version libmimalloc-sys 0.1.49 builds by
/// default; its Rust bindings leave this option out). Checked by the test below.
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

extern "C" {
    fn mi_option_set_default(option: std::ffi::c_int, value: std::ffi::c_long);
    #[cfg(test)]
    fn mi_option_get(option: std::ffi::c_int) -> std::ffi::c_long;
}

/// For a Kafka ingest kept on mimalloc: pages freed by ended passes are returned at once
/// instead of after mimalloc's default second, which keeps the climb smaller.
/// `MIMALLOC_PURGE_DELAY` in the environment still decides, if set.
pub fn return_freed_memory_at_once() {
    set_purge_delay(0);
}

/// For a file ingest: freed pages are never returned, only reused. Returning them after the
/// default second made the workers fault fresh (zeroed) pages in for most of their chunks,
/// and first touches are the dearest thing on a VM that hands free memory back to its host
/// (docs/performance.md). The memory is the run's peak either way, and it ends with the run.
///
/// The same goes for the C library's malloc, which zstd uses: every compressed column of
/// every row group creates a compressor and a decompressor, several hundred KiB, and glibc
/// mapped each afresh and unmapped it when freed (90,000 page faults in an ingest of 1 M
/// records; 5,500 with these settings). `GLIBC_TUNABLES`, if set, decides instead.
pub fn keep_freed_memory() {
    set_purge_delay(-1);
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("GLIBC_TUNABLES").is_none() {
        const LARGEST_FROM_THE_HEAP: std::ffi::c_int = 32 * 1024 * 1024;
        const KEPT_FREE_AT_THE_TOP: std::ffi::c_int = 256 * 1024 * 1024;
        // SAFETY: sets parameters of the C library's malloc, which takes them at any time.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, LARGEST_FROM_THE_HEAP);
            libc::mallopt(libc::M_TRIM_THRESHOLD, KEPT_FREE_AT_THE_TOP);
        }
    }
}

fn set_purge_delay(milliseconds: std::ffi::c_long) {
    // SAFETY: sets an integer option of the mimalloc this crate links; mimalloc reads its
    // options on every purge, so a change at run time takes effect. The environment's
    // MIMALLOC_PURGE_DELAY, if set, still wins.
    unsafe { mi_option_set_default(MI_OPTION_PURGE_DELAY, milliseconds) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allocator_is_named_by_the_environment() {
        assert_eq!(Allocator::named(None), Ok(Allocator::Mimalloc));
        assert_eq!(Allocator::named(Some(b"mimalloc")), Ok(Allocator::Mimalloc));
        assert_eq!(Allocator::named(Some(b"system")), Ok(Allocator::System));
        let refused = Allocator::named(Some(b"jemalloc")).unwrap_err();
        assert!(refused.contains("SIMTALLY_ALLOCATOR=jemalloc"), "{refused}");
    }

    #[test]
    fn the_purge_delay_option_is_the_one_set() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // SAFETY: reads and sets integer options of the linked allocator.
        unsafe {
            // mimalloc v3's default purge delay: 1,000 ms.
            assert_eq!(mi_option_get(MI_OPTION_PURGE_DELAY), 1000);
            return_freed_memory_at_once();
            assert_eq!(mi_option_get(MI_OPTION_PURGE_DELAY), 0);
            keep_freed_memory();
            assert_eq!(mi_option_get(MI_OPTION_PURGE_DELAY), -1);
            set_purge_delay(1000);
        }
    }

    #[test]
    fn arenas_are_committed_on_demand() {
        if std::env::var_os("MIMALLOC_ARENA_EAGER_COMMIT").is_some() {
            return;
        }
        // SAFETY: reads and sets an integer option of the linked allocator.
        unsafe {
            // mimalloc v3's default: eager where the OS overcommits (Linux).
            assert_eq!(mi_option_get(MI_OPTION_ARENA_EAGER_COMMIT), 2);
            commit_arenas_on_demand();
            assert_eq!(mi_option_get(MI_OPTION_ARENA_EAGER_COMMIT), 0);
            mi_option_set_default(MI_OPTION_ARENA_EAGER_COMMIT, 2);
        }
    }
}
