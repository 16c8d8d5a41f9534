//! The epoch ticker: what interrupts a call that runs past its `--timeout`.
//!
//! On Linux a process-wide interval timer raises SIGALRM every [`EPOCH_PERIOD`], and its handler
//! ticks the epoch of every engine being ticked. No thread has to start, which costs a run about
//! 70 µs here (issue 26). `Engine::increment_epoch` is signal-safe: an atomic increment. The
//! handler is installed with `SA_RESTART`, so the host's blocking system calls resume after it;
//! those Linux never resumes (poll, nanosleep, futex waits with a timeout) return EINTR, which std
//! retries, and the host makes them only through std. Where the timer is not available (another
//! handler owns SIGALRM, every slot is taken, another OS), a thread ticks instead.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use wasmtime::Engine;

use super::EPOCH_PERIOD;

/// Ticks the engine's epoch so calls past their deadline are interrupted.
/// Stops when dropped.
pub struct EpochTicker {
    how: How,
}

enum How {
    #[cfg(target_os = "linux")]
    Timer(usize),
    Thread {
        stop: Arc<AtomicBool>,
        thread: Option<std::thread::JoinHandle<()>>,
    },
}

impl EpochTicker {
    /// Starts ticking `engine` every [`EPOCH_PERIOD`].
    pub fn start(engine: &Engine) -> Self {
        #[cfg(target_os = "linux")]
        if let Some(slot) = timer::register(engine) {
            return EpochTicker { how: How::Timer(slot) };
        }
        EpochTicker { how: thread_ticker(engine) }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        match &mut self.how {
            #[cfg(target_os = "linux")]
            How::Timer(slot) => timer::unregister(*slot),
            How::Thread { stop, thread } => {
                stop.store(true, Ordering::Relaxed);
                if let Some(thread) = thread.take() {
                    thread.thread().unpark();
                    let _ = thread.join();
                }
            }
        }
    }
}

fn thread_ticker(engine: &Engine) -> How {
    let stop = Arc::new(AtomicBool::new(false));
    let (engine, flag) = (engine.clone(), stop.clone());
    let thread = std::thread::Builder::new()
        .name("leakhost-epoch".into())
        // It only parks and ticks.
        .stack_size(64 << 10)
        .spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                std::thread::park_timeout(EPOCH_PERIOD);
                engine.increment_epoch();
            }
        })
        .ok();
    How::Thread { stop, thread }
}

#[cfg(target_os = "linux")]
mod timer {
    use std::sync::atomic::{AtomicPtr, Ordering};
    use std::sync::Mutex;

    use wasmtime::Engine;

    use super::EPOCH_PERIOD;

    /// The engines being ticked. An entry's engine is never freed: the handler may be reading it
    /// on another thread when it is taken out, and one engine handle per ticker is all it costs.
    static ENGINES: [AtomicPtr<Engine>; 4] = [const { AtomicPtr::new(std::ptr::null_mut()) }; 4];
    /// Serialises registering, so that the timer runs exactly while an entry is in use.
    static REGISTER: Mutex<bool> = Mutex::new(false);

    extern "C" fn on_alarm(_signal: libc::c_int) {
        for entry in &ENGINES {
            let engine = entry.load(Ordering::Acquire);
            if !engine.is_null() {
                // SAFETY: entries point at leaked engines, valid for the process's life.
                unsafe { (*engine).increment_epoch() };
            }
        }
    }

    /// Adds `engine` to the ticked ones, starting the timer if it is the first; its entry, or
    /// `None` if the timer cannot be used.
    pub(super) fn register(engine: &Engine) -> Option<usize> {
        let mut installed = REGISTER.lock().unwrap_or_else(|e| e.into_inner());
        let slot = ENGINES.iter().position(|e| e.load(Ordering::Relaxed).is_null())?;
        if !*installed {
            *installed = install_handler()?;
        }
        unblock_alarm();
        let first = ENGINES.iter().all(|e| e.load(Ordering::Relaxed).is_null());
        ENGINES[slot].store(Box::into_raw(Box::new(engine.clone())), Ordering::Release);
        if first && !set_timer(EPOCH_PERIOD) {
            ENGINES[slot].store(std::ptr::null_mut(), Ordering::Release);
            return None;
        }
        Some(slot)
    }

    /// Stops ticking entry `slot`, and the timer with the last one.
    pub(super) fn unregister(slot: usize) {
        let _installed = REGISTER.lock().unwrap_or_else(|e| e.into_inner());
        ENGINES[slot].store(std::ptr::null_mut(), Ordering::Release);
        if ENGINES.iter().all(|e| e.load(Ordering::Relaxed).is_null()) {
            // A timer that cannot be disarmed only ticks nobody.
            let _ = set_timer(std::time::Duration::ZERO);
        }
    }

    /// Installs the SIGALRM handler unless another handler has it; whether it is installed.
    fn install_handler() -> Option<bool> {
        // SAFETY: sigaction reads and writes only the structs it is given; the handler is
        // async-signal-safe (atomic loads and increments).
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGALRM, std::ptr::null(), &mut old) != 0 {
                return None;
            }
            if old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN {
                return None;
            }
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_alarm as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            (libc::sigaction(libc::SIGALRM, &action, std::ptr::null_mut()) == 0).then_some(true)
        }
    }

    /// Lets this thread, and the threads it starts, take SIGALRM (a parent may have blocked it).
    fn unblock_alarm() {
        // SAFETY: the set is initialised by sigemptyset before use.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGALRM);
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        }
    }

    /// Arms the process's real-time interval timer at `period`, or disarms it at zero.
    fn set_timer(period: std::time::Duration) -> bool {
        let interval = libc::timeval {
            tv_sec: period.as_secs() as libc::time_t,
            tv_usec: period.subsec_micros() as libc::suseconds_t,
        };
        let timer = libc::itimerval { it_interval: interval, it_value: interval };
        // SAFETY: setitimer reads only the struct it is given.
        unsafe { libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut()) == 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The epoch moves while a ticker lives: a store whose deadline is one tick away is
    /// interrupted in a loop that never ends on its own.
    #[test]
    fn a_ticking_engine_interrupts_an_endless_loop() {
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        let engine = Engine::new(&config).unwrap();
        let wasm = wat::parse_str(r#"(module (func (export "spin") (loop br 0)))"#).unwrap();
        let module = wasmtime::Module::new(&engine, wasm).unwrap();
        let ticker = EpochTicker::start(&engine);
        let mut store = wasmtime::Store::new(&engine, ());
        store.set_epoch_deadline(2);
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
        let spin = instance.get_typed_func::<(), ()>(&mut store, "spin").unwrap();
        let trap = spin.call(&mut store, ()).unwrap_err();
        assert_eq!(trap.downcast_ref::<wasmtime::Trap>(), Some(&wasmtime::Trap::Interrupt), "{trap:?}");
        drop(ticker);
    }
}
