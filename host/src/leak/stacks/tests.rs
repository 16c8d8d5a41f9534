use proptest::prelude::*;

use super::*;

fn frame(function: &str) -> Frame {
    Frame {
        function: function.into(),
        file: None,
        path: None,
        line: None,
        module_offsets: Vec::new(),
        origin: Origin::of_name(function),
    }
}

fn at(function: &str, line: u32, offset: u32) -> Frame {
    Frame { file: Some("demo/src/lib.rs".into()), line: Some(line), module_offsets: vec![offset], ..frame(function) }
}

#[test]
fn allocator_runtime_and_sdk_frames_are_trimmed() {
    let frames = [
        "leakhost_guest::alloc::report",
        "__rust_alloc",
        "<alloc::vec::Vec<u8> as Clone>::clone",
        "leak::helper",
        "std::thread::local::LocalKey<T>::with",
        "leak::test_body",
        "leak::_::__leakhost_body",
        "leakhost_guest::runtime::run_test",
        "leakhost_run_test",
    ]
    .map(frame)
    .to_vec();
    let (kept, user) = trim(frames);
    let names: Vec<String> = kept.iter().map(Frame::text).collect();
    assert_eq!(names, ["leak::helper", "leak::test_body"]);
    assert!(user);
    assert_eq!(Origin::of_name("leakhost_demo::cache::put"), Origin::User, "a crate may start with leakhost_");
    assert_eq!(Origin::of_name("leakhost_counters"), Origin::Sdk);
    assert_eq!(Origin::of_name("malloc"), Origin::Std);
}

#[test]
fn a_stack_without_the_suites_code_says_so_and_keeps_what_it_has() {
    let (kept, user) =
        trim(vec![frame("alloc::alloc::alloc"), frame("leakhost_guest::x"), frame("std::thread::spawn")]);
    assert!(!user);
    assert_eq!(kept, vec![frame("alloc::alloc::alloc"), frame("std::thread::spawn")]);
}

#[test]
fn rust_symbols_are_demangled_without_hash() {
    assert_eq!(demangle("_ZN4leak6helper17h0123456789abcdefE"), "leak::helper");
    assert_eq!(demangle("_RNvCs1234_4leak6helper"), "leak::helper");
    assert_eq!(demangle("malloc"), "malloc");
}

fn contribution(stack: u32, blocks: u64, bytes: i64, cause: &str) -> Contribution {
    Contribution { stack: StackId(stack), blocks, bytes, cause: cause.into() }
}

/// Stacks 0 and 1 differ only in their offsets; 2 is bigger; 3 is allocator frames only.
fn named(id: StackId) -> Vec<Frame> {
    match id.0 {
        0 => vec![frame("__rust_alloc"), at("demo::small", 3, 10), at("demo::test_a", 9, 20)],
        1 => vec![frame("__rust_alloc"), at("demo::small", 3, 11), at("demo::test_a", 9, 21)],
        2 => vec![at("demo::big", 5, 30)],
        _ => vec![frame("alloc::raw_vec::grow")],
    }
}

#[test]
fn stacks_with_the_same_text_are_one_group_with_every_offset() {
    let contributions = [
        contribution(0, 1, 8, "t2"),
        contribution(1, 1, 8, "t1"),
        contribution(2, 1, 100, "t3"),
        contribution(2, 0, 36, "t3"),
        contribution(3, 0, -4, "t3"),
    ];
    let groups = group(&contributions, 2, named);
    assert_eq!(groups.len(), 2, "{groups:?}");
    assert_eq!((groups[0].blocks, groups[0].bytes), (1, 136), "a realloc adds bytes, not a block");
    assert_eq!((groups[1].blocks, groups[1].bytes), (2, 16));
    assert_eq!(groups[1].tests, vec![GuestText::from("t1"), GuestText::from("t2")]);
    assert_eq!(groups[1].frames[0].module_offsets, vec![10, 11]);
    assert_eq!(groups[1].frames[1].module_offsets, vec![20, 21]);
    assert_eq!(groups[1].per_iteration(), Some((1, 8)));
}

fn arbitrary_contribution() -> impl Strategy<Value = Contribution> {
    (0u32..4, 0u64..2, -8i64..64, prop::sample::select(vec!["a", "b", "c"]))
        .prop_map(|(stack, blocks, bytes, cause)| contribution(stack, blocks, bytes, cause))
}

proptest! {
    /// Whatever order the blocks come in (threads, hash maps), the groups come out the same.
    #[test]
    fn shuffled_contributions_give_the_same_groups(
        contributions in prop::collection::vec(arbitrary_contribution(), 0..40),
        seed in any::<u64>(),
    ) {
        let mut shuffled = contributions.clone();
        let mut state = seed;
        for i in (1..shuffled.len()).rev() {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (state >> 33) as usize % (i + 1));
        }
        let (a, b) = (group(&contributions, 3, named), group(&shuffled, 3, named));
        prop_assert_eq!(&a, &b);
        let mut reordered = a.clone();
        reordered.reverse();
        order(&mut reordered);
        prop_assert_eq!(a, reordered);
    }
}
