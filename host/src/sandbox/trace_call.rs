//! The cost of a traced allocator call (ABI v2's `leakhost.trace_alloc`) to the call
//! that makes it.

use super::GuestState;

/// Fuel one traced allocator call costs on top of the guest's own instructions: the
/// host's work for it (a stack walk, the tracer's bookkeeping) takes the time of a few
/// thousand wasm instructions, and a guest that floods the tracer from a loop of a few
/// instructions must run out of `--fuel` as it would doing that work itself.
pub const TRACE_CALL_FUEL: u64 = 1_000;

/// Traced calls between two readings of the clock against the call's time limit:
/// reading it on every call was a quarter of a flood's cost, and 64 calls take
/// microseconds, so a deadline is overrun by no more than that.
const CALLS_PER_CLOCK_READ: u32 = 64;

/// Charges one traced allocator call to the call's fuel and holds it to the call's time
/// limit: a loop of allocations costs host work that neither the guest's instructions
/// nor the epoch, checked only in wasm code, account for.
pub(super) fn charge_trace_call(caller: &mut wasmtime::Caller<'_, GuestState>) -> wasmtime::Result<()> {
    if caller.data().fuel {
        let fuel = caller.get_fuel()?;
        if fuel < TRACE_CALL_FUEL {
            let _ = caller.set_fuel(0);
            return Err(wasmtime::Trap::OutOfFuel.into());
        }
        caller.set_fuel(fuel - TRACE_CALL_FUEL)?;
    }
    let state = caller.data_mut();
    let Some(limit) = state.timeout else { return Ok(()) };
    state.trace_calls = state.trace_calls.wrapping_add(1);
    if state.trace_calls.is_multiple_of(CALLS_PER_CLOCK_READ) && state.call_started.elapsed() > limit {
        return Err(wasmtime::Trap::Interrupt.into());
    }
    Ok(())
}
