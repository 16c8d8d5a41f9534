//! The cost of a traced allocator call (ABI v2's `leakhost.trace_alloc`) to the call
//! that makes it.

use super::GuestState;

/// Fuel one traced allocator call costs on top of the guest's own instructions: the
/// host's work for it (a stack walk, the tracer's bookkeeping) takes the time of a few
/// thousand wasm instructions, and a guest that floods the tracer from a loop of a few
/// instructions must run out of `--fuel` as it would doing that work itself.
pub const TRACE_CALL_FUEL: u64 = 1_000;

/// Charges one traced allocator call to the call's fuel and holds it to the call's time
/// limit: a loop of allocations costs host work that neither the guest's instructions
/// nor the epoch, checked only in wasm code, account for.
pub(super) fn charge_trace_call(caller: &mut wasmtime::Caller<'_, GuestState>) -> wasmtime::Result<()> {
    // Fuel is on exactly when --fuel is given.
    if let Ok(fuel) = caller.get_fuel() {
        if fuel < TRACE_CALL_FUEL {
            let _ = caller.set_fuel(0);
            return Err(wasmtime::Trap::OutOfFuel.into());
        }
        let _ = caller.set_fuel(fuel - TRACE_CALL_FUEL);
    }
    let state = caller.data();
    if state.timeout.is_some_and(|limit| state.call_started.elapsed() > limit) {
        return Err(wasmtime::Trap::Interrupt.into());
    }
    Ok(())
}
