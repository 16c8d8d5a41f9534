//! The guest's file calls that leakhost polices on top of wasmtime-wasi.
//!
//! A bound on the files a guest holds open: wasmtime-wasi's preview1 descriptor table
//! has no limit, and each open file is a host file descriptor. A guest that opened a
//! preopened file in a loop took all of the host's, and leakhost could not write its
//! reports. Past [`MAX_OPEN_FILES`], `path_open` fails in the guest with `EMFILE`, as
//! it would on a host; the host's own descriptors are never touched.
//!
//! `path_symlink` refuses targets that could lead out of the directory (absolute, or
//! with `..`): the guest cannot follow such a link, but a host tool walking a `:rw`
//! directory afterwards would.
//!
//! `path_open` and `fd_close` are wrapped: the wrapper counts, and calls wasmtime-wasi's
//! own implementation exactly as its linker glue does. As a backstop against a
//! miscount, the instance's resource table is capped too (a trap rather than an errno,
//! but still a bound).

use wasmtime::{AsContextMut, Caller, Extern, Linker};
use wasmtime_wasi::p1::wasi_snapshot_preview1::{self as wasi, WasiSnapshotPreview1};
use wasmtime_wasi::WasiView;

use super::GuestState;

/// Files (and directories) a guest may hold open through `path_open` at once, per instance.
pub const MAX_OPEN_FILES: usize = 256;
/// Entries the instance's WASI resource table may hold: the open files, each with a few
/// streams, the standard streams and the preopens.
const RESOURCE_TABLE_CAPACITY: usize = 16 * MAX_OPEN_FILES + 4096;

const WASI: &str = "wasi_snapshot_preview1";
/// WASI's `errno::fault`: an address outside linear memory.
const ERRNO_FAULT: i32 = 21;
/// WASI's `errno::mfile`: too many open files in this process.
const ERRNO_MFILE: i32 = 33;
/// WASI's `errno::perm`: operation not permitted.
const ERRNO_PERM: i32 = 63;

/// Caps the resource table of a fresh instance's WASI context.
pub(super) fn cap_resource_table(ctx: &mut wasmtime_wasi::p1::WasiP1Ctx) {
    ctx.ctx().table.set_max_capacity(RESOURCE_TABLE_CAPACITY);
}

/// Runs `call` on the guest's memory and WASI context, as wasmtime-wasi's own glue does.
fn with_wasi<R>(
    caller: &mut Caller<'_, GuestState>,
    call: impl AsyncFnOnce(&mut wasmtime_wasi::p1::WasiP1Ctx, &mut wiggle::GuestMemory<'_>) -> wasmtime::Result<R>,
) -> wasmtime::Result<R> {
    let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
        return Err(wasmtime::Error::msg("missing required memory export"));
    };
    // The budget wasmtime-wasi's glue hands each call, for copying guest buffers.
    let fuel = caller.as_context_mut().hostcall_fuel();
    let (data, state) = memory.data_and_store_mut(caller);
    state.wasi.set_hostcall_fuel(fuel);
    let mut guest = wiggle::GuestMemory::Unshared(data);
    wasmtime_wasi::runtime::in_tokio(call(&mut state.wasi, &mut guest))
}

/// Replaces `path_open` and `fd_close` with counting wrappers and `path_symlink` with a
/// checking one (the linker must allow shadowing).
pub(super) fn add_to_linker(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        WASI,
        "path_open",
        |mut caller: Caller<'_, GuestState>,
         fd: i32,
         dirflags: i32,
         path: i32,
         path_len: i32,
         oflags: i32,
         rights: i64,
         inheriting: i64,
         fdflags: i32,
         opened: i32|
         -> wasmtime::Result<i32> {
            if caller.data().open_files >= MAX_OPEN_FILES {
                return Ok(ERRNO_MFILE);
            }
            let errno = with_wasi(&mut caller, async |ctx, memory| {
                wasi::path_open(ctx, memory, fd, dirflags, path, path_len, oflags, rights, inheriting, fdflags, opened)
                    .await
            })?;
            if errno == 0 {
                caller.data_mut().open_files += 1;
            }
            Ok(errno)
        },
    )?;
    linker.func_wrap(WASI, "fd_close", |mut caller: Caller<'_, GuestState>, fd: i32| -> wasmtime::Result<i32> {
        let errno = with_wasi(&mut caller, async |ctx, memory| wasi::fd_close(ctx, memory, fd).await)?;
        // Closing a standard stream or a preopen also counts down; that only lets the
        // guest open what it gave back, and the table cap still holds.
        if errno == 0 {
            let open = &mut caller.data_mut().open_files;
            *open = open.saturating_sub(1);
        }
        Ok(errno)
    })?;
    linker.func_wrap(
        WASI,
        "path_symlink",
        |mut caller: Caller<'_, GuestState>, target: i32, target_len: i32, fd: i32, link: i32, link_len: i32| {
            match symlink_target_escapes(&mut caller, target, target_len) {
                Some(true) => return Ok(ERRNO_PERM),
                None => return Ok(ERRNO_FAULT),
                Some(false) => {}
            }
            with_wasi(&mut caller, async |ctx, memory| {
                wasi::path_symlink(ctx, memory, target, target_len, fd, link, link_len).await
            })
        },
    )?;
    Ok(())
}

/// Whether a symlink with this target text could point outside the directory it is
/// created in: absolute, or climbing with `..` (even a climb that would stay inside is
/// refused, since where the link sits below the preopen is not known here). `None` if
/// the text lies outside linear memory.
fn symlink_target_escapes(caller: &mut Caller<'_, GuestState>, ptr: i32, len: i32) -> Option<bool> {
    let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
        return None;
    };
    let (start, len) = (ptr as u32 as usize, len as u32 as usize);
    let text = memory.data(&*caller).get(start..start.checked_add(len)?)?;
    Some(text.starts_with(b"/") || text.split(|&b| b == b'/').any(|part| part == b".."))
}
