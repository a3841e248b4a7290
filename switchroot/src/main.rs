//! The `ostree-prepare-root` binary: no `std`, no heap, one static executable.
#![no_std]
#![no_main]

use core::ffi::{c_char, c_int, CStr};

use switchroot::{pid1, sys};

// Without `std`, nothing links the C library for us. On musl it is linked
// statically (libc.a ships with Rust's musl target).
#[cfg_attr(
    target_env = "musl",
    link(name = "c", kind = "static", modifiers = "-bundle")
)]
#[cfg_attr(not(target_env = "musl"), link(name = "c"))]
extern "C" {}

/// Most arguments and environment entries we look at.
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
    // SAFETY: argv and envp come from the C runtime, as required.
    let (argv, envp): (
        heapless::Vec<&CStr, MAX_ARGS>,
        heapless::Vec<&CStr, MAX_ARGS>,
    ) = unsafe {
        (
            sys::c_strings(argv).take(MAX_ARGS).collect(),
            sys::c_strings(envp).take(MAX_ARGS).collect(),
        )
    };
    let args: heapless::Vec<&[u8], MAX_ARGS> = argv.iter().skip(1).map(|a| a.to_bytes()).collect();

    // PID 1 runs the boot; `--pid1=initramfs|root` forces it (for tests).
    let forced = match args.first().copied() {
        Some(b"--pid1=initramfs") => Some(Some(pid1::Kind::Initramfs)),
        Some(b"--pid1=root") => Some(Some(pid1::Kind::NoInitramfs)),
        _ if switchroot::sys::getpid() == 1 => Some(None),
        _ => None,
    };
    match forced {
        Some(kind) => {
            // Do not pass our own flag on to init.
            let skip = if kind.is_some() { 1 } else { 0 };
            let init_argv: heapless::Vec<&CStr, MAX_ARGS> = argv
                .iter()
                .take(1)
                .chain(argv.iter().skip(1 + skip))
                .copied()
                .collect();
            pid1::run(kind, &init_argv, &envp)
        }
        None => {
            // Markers and staging files are opened for writing: none may
            // land on a closed 1 or 2 (PID 1 fills them from the console).
            sys::fill_std_fds(b"/dev/null");
            switchroot::app::main(&args)
        }
    }
}

/// A panic is a bug (every input error is an `Error`). Say so without
/// formatting the panic message (that machinery alone costs kilobytes), and as
/// PID 1 reboot rather than exit into a kernel panic.
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    let _ = switchroot::sys::write_all_raw(
        2,
        b"ostree-prepare-root: internal error (panic), please report\n",
    );
    if switchroot::sys::getpid() == 1 {
        switchroot::sys::sleep_ms(5000);
        switchroot::sys::reboot(switchroot::sys::Power::Reboot);
        switchroot::sys::pause_forever()
    }
    switchroot::sys::exit(101)
}

/// The precompiled `core` carries unwind tables that name the personality
/// routine; without LTO (debug builds, `cargo test`) the linker wants it.
/// Our panic handler never unwinds, so it is never called.
#[no_mangle]
extern "C" fn rust_eh_personality() {}
