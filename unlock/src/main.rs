//! The `ostree-unlock` binary: no `std`, no heap, one static executable
//! (the same recipe as `ostree-prepare-root`'s).
#![no_std]
#![no_main]

use core::ffi::{c_char, c_int, CStr};

use switchroot::sys;

// Without `std`, nothing links the C library for us. On musl it is linked
// statically (libc.a ships with Rust's musl target).
#[cfg_attr(
    target_env = "musl",
    link(name = "c", kind = "static", modifiers = "-bundle")
)]
#[cfg_attr(not(target_env = "musl"), link(name = "c"))]
extern "C" {}

/// Most arguments accepted (the longest valid command line has six).
const MAX_ARGS: usize = 64;

/// The C entry point, called by musl's startup code.
///
/// # Safety
/// `argv` and `envp` must be the NULL-terminated arrays the C runtime passes.
#[no_mangle]
pub unsafe extern "C" fn main(
    _argc: c_int,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    // The origin file and markers are opened for writing: none may land on
    // a closed 1 or 2, where messages would be written into it.
    sys::fill_std_fds(b"/dev/null");
    // SAFETY: envp comes from the C runtime, as required.
    let mut env = unsafe { sys::c_strings(envp) }.map(CStr::to_bytes);
    // The first definition counts, as with getenv.
    if let Some(v) = env.find_map(|e| e.strip_prefix(b"OSTREE_UNLOCK_STOP_AFTER=")) {
        unlock::app::set_stop_after(v);
    }
    let mut args: heapless::Vec<&[u8], MAX_ARGS> = heapless::Vec::new();
    // SAFETY: argv comes from the C runtime, as required.
    for a in unsafe { sys::c_strings(argv) }.skip(1).map(CStr::to_bytes) {
        if args.push(a).is_err() {
            switchroot::warn!("ostree-unlock: more than {MAX_ARGS} arguments (see --help)");
            return 2;
        }
    }
    unlock::app::main(&args)
}

/// A panic is a bug (every input error is an `Error`). Say so without
/// formatting the panic message (that machinery alone costs kilobytes).
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    let _ = switchroot::sys::write_all_raw(
        2,
        b"ostree-unlock: internal error (panic), please report\n",
    );
    switchroot::sys::exit(101)
}

/// The precompiled `core` carries unwind tables that name the personality
/// routine; without LTO (debug builds, `cargo test`) the linker wants it.
/// Our panic handler never unwinds, so it is never called.
#[no_mangle]
extern "C" fn rust_eh_personality() {}
