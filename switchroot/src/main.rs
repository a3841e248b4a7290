//! The `ostree-prepare-root` binary: no `std`, no heap, one static executable.
#![no_std]
#![no_main]

use core::ffi::{c_char, c_int, CStr};

// Without `std`, nothing links the C library for us. On musl it is linked
// statically (libc.a ships with Rust's musl target).
#[cfg_attr(
    target_env = "musl",
    link(name = "c", kind = "static", modifiers = "-bundle")
)]
#[cfg_attr(not(target_env = "musl"), link(name = "c"))]
extern "C" {}

/// Most arguments we look at; the tool takes at most a handful.
const MAX_ARGS: usize = 16;

/// The C entry point, called by musl's startup code.
///
/// # Safety
/// `argv` must hold `argc` valid NUL-terminated strings, as the C runtime guarantees.
#[no_mangle]
pub unsafe extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    let mut args: heapless::Vec<&[u8], MAX_ARGS> = heapless::Vec::new();
    for i in 1..argc.max(0) as usize {
        // SAFETY: the C runtime passes `argc` valid, NUL-terminated strings in `argv`,
        // which live for the whole process.
        let arg = unsafe { CStr::from_ptr(*argv.add(i)) }.to_bytes();
        if args.push(arg).is_err() {
            switchroot::warn!("ostree-prepare-root: too many arguments (see --help)");
            return switchroot::error::EXIT_USAGE;
        }
    }
    switchroot::app::main(&args)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    switchroot::warn!("ostree-prepare-root: internal error: {}", info.message());
    switchroot::sys::exit(101)
}

/// The precompiled `core` carries unwind tables that name the personality
/// routine; without LTO (debug builds, `cargo test`) the linker wants it.
/// Our panic handler never unwinds, so it is never called.
#[no_mangle]
extern "C" fn rust_eh_personality() {}
