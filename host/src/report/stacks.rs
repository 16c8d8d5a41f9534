//! How allocation stacks read: the text under a leaking layer, the same for the
//! terminal (each guest string made safe with `.line()`) and for JUnit's system-out.

use crate::leak::stacks::{Frame, LeakStacks, StackGroup};
use crate::run::LayerRef;

/// `function  file:line` with guest text made safe for a terminal.
fn frame_line(frame: &Frame) -> String {
    match (&frame.file, frame.line) {
        (Some(file), Some(line)) => format!("{}  {}:{line}", frame.function.line(), file.line()),
        (Some(file), None) => format!("{}  {}", frame.function.line(), file.line()),
        _ => frame.function.line().to_string(),
    }
}

/// "2 blocks, 124 bytes per iteration, allocated by test_a at:", or for what reallocations
/// added to blocks already live, "36 bytes per iteration added to live blocks by test_a at:".
pub(super) fn group_heading(group: &StackGroup) -> String {
    let (blocks, bytes, per) = match group.per_iteration() {
        Some((blocks, bytes)) => (blocks, bytes, " per iteration".to_string()),
        None => (group.blocks, group.bytes, format!(" in {} counted iterations", group.iterations)),
    };
    let by = match group.tests.as_slice() {
        [] => String::new(),
        tests => {
            let names: Vec<String> = tests.iter().map(|t| t.line().to_string()).collect();
            format!(" by {}", names.join(", "))
        }
    };
    let heading = match blocks {
        0 => format!("{bytes} bytes{per} added to live blocks{by} at:"),
        _ => format!("{blocks} {}, {bytes} bytes{per}, allocated{by} at:", plural(blocks, "block")),
    };
    match group.user_frames {
        true => heading,
        false => format!(
            "{heading} (no frame of the suite's own code: it was inlined away; build with debug = \"limited\" to see it)"
        ),
    }
}

fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        word.to_string()
    } else {
        format!("{word}s")
    }
}

/// The lines shown for one leaking layer's stacks, indented under its verdict.
pub fn stack_lines(layer: &LayerRef, stacks: &LeakStacks) -> Vec<String> {
    let mut lines = vec![format!("  Where {} leaks (allocation stacks from a traced replay):", layer.name.line())];
    for note in &stacks.notes {
        lines.push(format!("    ({})", note.line()));
    }
    if stacks.groups.is_empty() && stacks.notes.is_empty() {
        lines.push("    no leaked block outlived the layer in the replay".into());
    }
    for group in &stacks.groups {
        lines.push(format!("    {}", group_heading(group)));
        lines.extend(group.frames.iter().map(|f| format!("      {}", frame_line(f))));
    }
    lines
}

/// The text of the groups a test took part in, for its JUnit system-out.
pub fn test_text(test: &str, stacks: &LeakStacks) -> String {
    let mut text = String::new();
    for group in stacks.groups.iter().filter(|g| g.tests.iter().any(|t| t.raw() == test)) {
        text.push_str(&group_heading(group));
        text.push('\n');
        for frame in &group.frames {
            text.push_str("  ");
            text.push_str(&frame_line(frame));
            text.push('\n');
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leak::stacks::Origin;
    use crate::run::LayerId;
    use crate::text::GuestText;

    fn stacks() -> LeakStacks {
        let frame = |f: &str, line| Frame {
            function: f.into(),
            file: Some("src/lib.rs".into()),
            path: None,
            line: Some(line),
            module_offsets: vec![1],
            origin: Origin::User,
        };
        LeakStacks {
            groups: vec![StackGroup {
                blocks: 6,
                bytes: 372,
                iterations: 3,
                tests: vec!["test_rc_cycle".into()],
                frames: vec![frame("leaky::build_tree", 21), frame("leaky::test_rc_cycle", 101)],
                user_frames: true,
            }],
            notes: vec![],
            partial: false,
        }
    }

    #[test]
    fn groups_read_per_iteration_with_their_frames() {
        let layer = LayerRef { id: LayerId(0), name: GuestText::from("leak.Tree") };
        let lines = stack_lines(&layer, &stacks());
        assert_eq!(lines[1], "    2 blocks, 124 bytes per iteration, allocated by test_rc_cycle at:");
        assert_eq!(lines[2], "      leaky::build_tree  src/lib.rs:21");
        assert_eq!(lines[3], "      leaky::test_rc_cycle  src/lib.rs:101");
        assert!(test_text("test_rc_cycle", &stacks()).contains("leaky::build_tree  src/lib.rs:21\n"));
        assert!(test_text("other", &stacks()).is_empty());
    }

    #[test]
    fn uneven_totals_are_not_divided() {
        let mut s = stacks();
        s.groups[0].blocks = 7;
        assert!(group_heading(&s.groups[0]).starts_with("7 blocks, 372 bytes in 3 counted iterations"));
    }

    #[test]
    fn growth_by_reallocation_and_stacks_without_the_suites_code_say_so() {
        let mut s = stacks();
        s.groups[0].blocks = 0;
        assert_eq!(group_heading(&s.groups[0]), "124 bytes per iteration added to live blocks by test_rc_cycle at:");
        s.groups[0].user_frames = false;
        assert!(group_heading(&s.groups[0]).ends_with("build with debug = \"limited\" to see it)"));
    }
}
