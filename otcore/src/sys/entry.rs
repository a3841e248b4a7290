//! The C entry point of a `no_std` binary, so that the binaries themselves
//! hold no `unsafe` code: [`entry_point!`](crate::entry_point) defines
//! `main`, the panic handler and the C library link in the binary crate.

use core::ffi::{c_char, CStr};

use super::{c_strings, exit, getpid, pause_forever, reboot, sleep_ms, write_all, Power, STDERR};

/// Most arguments and environment entries kept; the rest are counted.
pub const MAX_ARGS: usize = 64;

/// The arguments and environment the C runtime passed to `main`.
pub struct Args {
    pub argv: heapless::Vec<&'static CStr, MAX_ARGS>,
    /// More arguments than [`MAX_ARGS`] were given (the rest are not in `argv`).
    pub argv_cut: bool,
    /// The C runtime's environment, read only when asked for (see [`Args::envp`]).
    envp: *const *const c_char,
}

impl Args {
    /// # Safety
    /// `argv` and `envp` must be the NULL-terminated arrays the C runtime
    /// passes to `main`.
    pub unsafe fn from_c(argv: *const *const c_char, envp: *const *const c_char) -> Args {
        let mut args = Args {
            argv: heapless::Vec::new(),
            argv_cut: false,
            envp,
        };
        // SAFETY: as required of our caller.
        for a in unsafe { c_strings(argv) } {
            args.argv_cut |= args.argv.push(a).is_err();
        }
        args
    }

    /// The environment (its first [`MAX_ARGS`] entries).
    pub fn envp(&self) -> heapless::Vec<&'static CStr, MAX_ARGS> {
        // SAFETY: `envp` is the C runtime's NULL-terminated array, valid for
        // the whole process, as `from_c` required.
        unsafe { c_strings(self.envp) }.take(MAX_ARGS).collect()
    }

    /// The arguments after the program name, as bytes.
    pub fn rest(&self) -> heapless::Vec<&'static [u8], MAX_ARGS> {
        self.argv.iter().skip(1).map(|a| a.to_bytes()).collect()
    }
}

/// What a panic does: say so (without formatting the message, whose
/// machinery alone costs kilobytes), and as PID 1 reboot rather than exit
/// into a kernel panic.
pub fn panic_exit(message: &str) -> ! {
    let _ = write_all(STDERR, message.as_bytes());
    if getpid() == 1 {
        sleep_ms(5000);
        reboot(Power::Reboot);
        pause_forever()
    }
    exit(101)
}

/// Define the C entry point of a `no_std`, `no_main` binary: `main` calls
/// `$run(&Args) -> i32`; a panic prints `$name: internal error (panic)`.
#[macro_export]
macro_rules! entry_point {
    (name: $name:literal, run: $run:path) => {
        // Without `std`, nothing links the C library for us. On musl it is
        // linked statically (libc.a ships with Rust's musl target).
        #[cfg_attr(
            target_env = "musl",
            link(name = "c", kind = "static", modifiers = "-bundle")
        )]
        #[cfg_attr(not(target_env = "musl"), link(name = "c"))]
        extern "C" {}

        /// The C entry point, called by the C library's start-up code.
        ///
        /// # Safety
        /// `argv` and `envp` must be the NULL-terminated arrays the C
        /// runtime passes.
        #[no_mangle]
        unsafe extern "C" fn main(
            _argc: ::core::ffi::c_int,
            argv: *const *const ::core::ffi::c_char,
            envp: *const *const ::core::ffi::c_char,
        ) -> ::core::ffi::c_int {
            // SAFETY: argv and envp come from the C runtime, as required.
            let args = unsafe { $crate::sys::Args::from_c(argv, envp) };
            $run(&args)
        }

        /// A panic is a bug (every input error is an error value).
        #[panic_handler]
        fn panic(_: &::core::panic::PanicInfo) -> ! {
            $crate::sys::panic_exit(concat!($name, ": internal error (panic), please report\n"))
        }

        /// The precompiled `core` carries unwind tables that name the
        /// personality routine; without LTO (debug builds) the linker wants
        /// it. The panic handler never unwinds, so it is never called.
        #[no_mangle]
        extern "C" fn rust_eh_personality() {}
    };
}
