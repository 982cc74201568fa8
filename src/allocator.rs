//! The process allocator. An ingest allocates on the decode threads and frees on the writer
//! thread, hundreds of MiB a second; mimalloc handles that far better than glibc malloc
//! (README, Performance). The binary installs it:
//!
//! ```text
//! #[global_allocator]
//! static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
//! ```

/// `mi_option_purge_delay` in mimalloc v3's `mi_option_e`; libmimalloc-sys (pinned) builds
/// that C source but does not export this constant, so a test checks the number.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// By default mimalloc gives freed memory back to the OS after a second. An ingest frees and
/// reallocates memory constantly, and re-faulting (zeroing) those pages took more CPU than
/// decoding. Freed memory is kept for reuse instead; peak memory is unchanged.
pub fn keep_freed_memory() {
    // SAFETY: sets a plain integer option; mimalloc allows that at any time.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_number_is_the_purge_delay() {
        // SAFETY: reads and sets an integer option.
        let default = unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) };
        assert_eq!(
            default, 1000,
            "mimalloc v3's purge delay default is 1000 ms"
        );
        keep_freed_memory();
        assert_eq!(unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) }, -1);
    }
}
