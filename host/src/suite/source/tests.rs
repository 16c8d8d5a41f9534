use super::*;

/// A custom section named `name` with `content`.
fn custom(name: &str, content: &[u8]) -> Vec<u8> {
    let mut body = vec![name.len() as u8];
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(content);
    let mut section = vec![0];
    leb(&mut section, body.len());
    section.extend(body);
    section
}

fn leb(out: &mut Vec<u8>, mut value: usize) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        out.push(if value == 0 { byte } else { byte | 0x80 });
        if value == 0 {
            break;
        }
    }
}

/// A module's sections as (id, whole section bytes), in file order.
fn split(module: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut at = 8;
    let mut out = Vec::new();
    while at < module.len() {
        let (size, len) = leb_u32(&module[at + 1..]).unwrap();
        let end = at + 1 + len + size as usize;
        out.push((module[at], module[at..end].to_vec()));
        at = end;
    }
    out
}

/// A scratch directory of this test process.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("leakhost-source-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A module with a function, a name section, and custom sections before and after its code.
fn module_with_debug() -> (Vec<u8>, Vec<u8>) {
    let plain = wat::parse_str(r#"(module (func $f (export "f") (result i32) i32.const 7))"#).unwrap();
    let sections = split(&plain);
    let code = sections.iter().position(|(id, _)| *id == 10).unwrap();
    let mut with_debug = plain[..8].to_vec();
    for (i, (_, bytes)) in sections.iter().enumerate() {
        if i == code {
            with_debug.extend(custom("producers", &[0; 300]));
        }
        with_debug.extend_from_slice(bytes);
    }
    // Large enough that its contents would spill over what a header read sees.
    with_debug.extend(custom(".debug_info", &[0xab; 70_000]));
    with_debug.extend(custom(".debug_line", &[0xcd; 100]));
    (plain, with_debug)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn the_lean_module_is_the_file_without_custom_sections_but_name() {
    let (plain, with_debug) = module_with_debug();
    let dir = scratch("lean");
    let lean = read(&write(&dir, "a.wasm", &with_debug), 1 << 20).unwrap();
    let streamed = lean.source.lean_hash();
    let (bytes, source) = lean.into_bytes().unwrap();
    assert_eq!(bytes, plain, "the name section stays, the rest goes, the order is kept");
    assert_eq!(source.lean_hash(), streamed, "the hash read through the small buffer is the bytes'");
    assert_eq!(streamed, blake3::hash(&plain));
    assert_eq!(source.dropped_bytes() as usize, with_debug.len() - plain.len());
    // The code start is the file's (the producers section before the code moved it there).
    let in_plain = read(&write(&dir, "plain.wasm", &plain), 1 << 20).unwrap().source.code_start().unwrap();
    assert_eq!(source.code_start().unwrap(), in_plain + custom("producers", &[0; 300]).len() as u32);
    assert_eq!(&with_debug[source.code_start().unwrap() as usize..][..1], &plain[in_plain as usize..][..1]);
    // The same module with other debug sections (a rebuild with other paths) shares its cache key.
    let stripped = read(&write(&dir, "b.wasm", &plain), 1 << 20).unwrap();
    assert_eq!(stripped.source.lean_hash(), streamed);
    assert_eq!(stripped.source.dropped_bytes(), 0);
    assert_eq!(stripped.into_bytes().unwrap().0, bytes);
    assert_eq!(lean_of_bytes(&with_debug), plain);
}

#[test]
fn sections_longer_than_the_hash_buffer_hash_as_their_bytes() {
    let data: String = (0..40_000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    let module = wat::parse_str(format!(r#"(module (memory 1) (data (i32.const 0) "{data}"))"#)).unwrap();
    let mut with_debug = module.clone();
    with_debug.extend(custom(".debug_info", &[0xab; 20_000]));
    let dir = scratch("long");
    let lean = read(&write(&dir, "a.wasm", &with_debug), 1 << 20).unwrap();
    assert_eq!(lean.source.lean_hash(), blake3::hash(&module));
}

#[test]
fn a_module_compiled_after_it_changed_is_keyed_by_what_is_compiled() {
    let (plain, _) = module_with_debug();
    let dir = scratch("changed");
    let path = write(&dir, "a.wasm", &plain);
    let lean = read(&path, 1 << 20).unwrap();
    let hashed = lean.source.lean_hash();
    let mut changed = plain.clone();
    let last = changed.len() - 1;
    changed[last] ^= 1;
    std::fs::write(&path, &changed).unwrap();
    let (bytes, source) = lean.into_bytes().unwrap();
    assert_eq!(bytes, changed);
    assert_eq!(source.lean_hash(), blake3::hash(&changed));
    assert_ne!(source.lean_hash(), hashed);
}

#[test]
fn debug_sections_are_read_again_only_from_the_same_module() {
    let (_, with_debug) = module_with_debug();
    let dir = scratch("again");
    let path = write(&dir, "a.wasm", &with_debug);
    let lean = read(&path, 1 << 20).unwrap();
    assert_eq!(lean.source.debug_file().unwrap(), with_debug);
    // Other DWARF over the same code still names it.
    let mut other_dwarf = with_debug.clone();
    let last = other_dwarf.len() - 1;
    other_dwarf[last] ^= 1;
    std::fs::write(&path, &other_dwarf).unwrap();
    assert_eq!(lean.source.debug_file().unwrap(), other_dwarf);
    // Another module's line tables never name this one's code.
    let other = wat::parse_str(r#"(module (func (export "g")))"#).unwrap();
    std::fs::write(&path, other).unwrap();
    assert_eq!(lean.source.debug_file().unwrap_err(), "the suite file changed after it was loaded");
    std::fs::remove_file(&path).unwrap();
    assert!(lean.source.debug_file().unwrap_err().starts_with("the suite file cannot be read again"));
}

#[test]
fn files_that_are_not_modules_or_too_large_are_refused_and_broken_sections_kept_whole() {
    let dir = scratch("refused");
    let text = write(&dir, "t.wasm", b"(module)");
    assert!(matches!(read(&text, 1 << 20), Err(SuiteError::NotWasm { .. })));
    let (_, with_debug) = module_with_debug();
    let big = write(&dir, "big.wasm", &with_debug);
    assert!(matches!(read(&big, 1000), Err(SuiteError::TooLarge { limit: 1000, .. })));
    // A section that runs past the end: compiled as it is, so wasmtime says what is wrong.
    let mut cut = with_debug.clone();
    cut.truncate(with_debug.len() - 10);
    let lean = read(&write(&dir, "cut.wasm", &cut), 1 << 20).unwrap();
    assert_eq!(lean.source.dropped_bytes(), 0);
    assert_eq!(lean.source.lean_hash(), blake3::hash(&cut));
    assert_eq!(lean.into_bytes().unwrap().0, cut);
    assert!(matches!(read(&dir.join("none.wasm"), 1 << 20), Err(SuiteError::Read { .. })));
}

#[test]
fn a_custom_section_is_name_only_by_its_whole_name() {
    assert!(custom_name_is(&[4, b'n', b'a', b'm', b'e'], 5));
    assert!(!custom_name_is(&[5, b'n', b'a', b'm', b'e', b's'], 6));
    assert!(!custom_name_is(&[4, b'n', b'a', b'm', b'e'], 4), "a name longer than its section");
    assert!(!custom_name_is(&[3, b'n', b'a', b'm'], 4));
    assert!(!custom_name_is(&[], 0));
}
