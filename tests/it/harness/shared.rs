//! Values every test of the binary shares: made by the first test that asks, kept until exit.

use std::future::Future;
use std::sync::{Arc, Mutex, Once, PoisonError};

/// One value for the whole test binary, started by the first test that needs it.
///
/// Tests run on many threads, each with its own Tokio runtime, so the value must not hold
/// anything tied to the runtime that started it (servers here are processes and folders).
/// A static is never dropped, so the first start also registers an exit hook that drops the
/// value when the binary ends: that stops its server and deletes its folder.
pub struct Shared<T> {
    slot: tokio::sync::Mutex<Option<Arc<T>>>,
}

impl<T: Send + Sync + 'static> Shared<T> {
    pub const fn new() -> Self {
        Self {
            slot: tokio::sync::Mutex::const_new(None),
        }
    }

    /// The shared value, started with `start` if no test has yet. Tests that ask while it
    /// starts wait for it; if it fails to start (panics), the next test that asks tries again.
    pub async fn get_or_start<F>(&'static self, start: impl FnOnce() -> F) -> Arc<T>
    where
        F: Future<Output = T>,
    {
        let mut slot = self.slot.lock().await;
        if let Some(value) = slot.as_ref() {
            return value.clone();
        }
        let value = Arc::new(start().await);
        *slot = Some(value.clone());
        at_exit(move || {
            // Every test has finished (and dropped its handle) by then: this is the last one.
            if let Ok(mut slot) = self.slot.try_lock() {
                slot.take();
            }
        });
        value
    }
}

type Hook = Box<dyn FnOnce() + Send>;

static EXIT_HOOKS: Mutex<Vec<Hook>> = Mutex::new(Vec::new());

/// Runs `hook` when the test binary exits, whether the tests passed or not (libtest returns
/// from `main` or calls `exit`; both run the C library's exit handlers). Hooks run last first.
fn at_exit(hook: impl FnOnce() + Send + 'static) {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        extern "C" {
            fn atexit(hook: extern "C" fn()) -> std::ffi::c_int;
        }
        // SAFETY: `run_exit_hooks` is a plain function that lives as long as the program, which
        // is all `atexit` asks of its argument.
        let refused = unsafe { atexit(run_exit_hooks) };
        assert_eq!(
            refused, 0,
            "atexit did not take the hook that stops the servers"
        );
    });
    EXIT_HOOKS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Box::new(hook));
}

extern "C" fn run_exit_hooks() {
    let hooks = std::mem::take(&mut *EXIT_HOOKS.lock().unwrap_or_else(PoisonError::into_inner));
    for hook in hooks.into_iter().rev() {
        hook();
    }
}
