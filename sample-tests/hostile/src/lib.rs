//! A suite whose names, messages and output try to take over the terminal or break the
//! reports: ESC sequences, BEL, NUL, CR, a C1 control (CSI, U+009B), an OSC 52
//! clipboard write, and newlines that forge a `Ran 99 tests` line. The end-to-end tests
//! check that every human output shows them escaped and every report stays well-formed.

use leakhost_guest::{check, Layer, Suite, TestResult};

/// An OSC 52 sequence that would write "hi" to the clipboard.
const OSC52: &str = "\u{1b}]52;c;aGk=\u{7}";

fn declare(s: &mut Suite) {
    s.test("test_esc_\u{1b}[2K_erases", || -> TestResult { Ok(()) });
    s.test("test_forges\nRan 99 tests with 0 failures, 0 errors and 0 skipped in 0.001 seconds.", || -> TestResult {
        Ok(())
    });
    s.test("test_cr\r\u{1b}[2Koverwritten", || -> TestResult { Ok(()) });
    s.test("test_bel_nul\u{7}\u{0}", || -> TestResult { Ok(()) });
    s.test("test_c1_\u{9b}31m_red", || -> TestResult { Ok(()) });
    s.test(format!("test_osc52_{OSC52}"), || -> TestResult { Ok(()) });
    s.test("test_fails_with_escapes", || -> TestResult {
        println!("output \u{1b}[31mred\u{1b}[0m {OSC52} bell\u{7} cr\rnul\u{0}");
        check!(1 + 1 == 3, "message \u{1b}[2J cleared {OSC52}\r\nRan 99 tests");
        Ok(())
    });
    s.test("test_panics_with_escapes", || -> TestResult { panic!("panic \u{1b}]0;title\u{7} \u{9b}2J") });
    let layer = s.layer(
        Layer::new("hostile.\u{1b}[31mRed\nLayer")
            .set_up(|| println!("set-up writes \u{1b}[2J"))
            .test_set_up(|| -> TestResult { Ok(()) }),
    );
    s.test_in(layer, "test_in_\u{1b}]8;;http://x\u{7}link", || -> TestResult { Ok(()) });
}

leakhost_guest::suite!(declare);
