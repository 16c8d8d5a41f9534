//! The bounds on what counters snapshots may cost: bytes per snapshot, names per run.

use super::*;

#[test]
fn a_snapshot_whose_names_pass_the_byte_limit_is_rejected() {
    let names: Vec<String> = (0..300).map(|i| format!("{i:04}{}", "n".repeat(4092))).collect();
    let rows: Vec<(&str, i64, i64)> = names.iter().map(|n| (n.as_str(), 1, 8)).collect();
    let (mem, addr) = counters_mem([0, 0, 0], &rows, &[]);
    let mut interner = NameInterner::default();
    let err = decode_counters_with(&mem.bytes, addr, &mut interner).unwrap_err();
    assert_eq!(err, AbiError::SnapshotTooLarge { limit: MAX_SNAPSHOT_NAME_BYTES });
    assert!(err.to_string().contains("1048576 bytes"), "{err}");
    // Under the limit (250 rows of 4 KB) the same rows decode.
    let (mem, addr) = counters_mem([0, 0, 0], &rows[..250], &[]);
    assert_eq!(decode_counters_with(&mem.bytes, addr, &mut interner).unwrap().types.len(), 250);
}

#[test]
fn repeated_snapshots_share_their_names() {
    let long = "T".repeat(4096);
    let (mem, addr) = counters_mem([0, 0, 0], &[(&long, 1, 8)], &[("open files", 1)]);
    let mut interner = NameInterner::default();
    let a = decode_counters_with(&mem.bytes, addr, &mut interner).unwrap();
    let b = decode_counters_with(&mem.bytes, addr, &mut interner).unwrap();
    assert!(std::sync::Arc::ptr_eq(&a.types[0].name, &b.types[0].name));
    assert!(std::sync::Arc::ptr_eq(&a.user[0].0, &b.user[0].0));
    assert_eq!(interner.len(), 2);
}

#[test]
fn new_names_past_the_run_limit_are_rejected() {
    let mut interner = NameInterner::default();
    for i in 0..MAX_DISTINCT_NAMES {
        interner.intern(&format!("n{i}")).unwrap();
    }
    let (mem, addr) = counters_mem([0, 0, 0], &[("n7", 1, 8)], &[]);
    assert!(decode_counters_with(&mem.bytes, addr, &mut interner).is_ok(), "known names still decode");
    let (mem, addr) = counters_mem([0, 0, 0], &[("brand new", 1, 8)], &[]);
    let err = decode_counters_with(&mem.bytes, addr, &mut interner).unwrap_err();
    assert!(matches!(err, AbiError::TooManyNames { .. }), "{err}");
    assert!(err.to_string().contains("65536 distinct names"), "{err}");
}
