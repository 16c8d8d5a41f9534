use leakhost_guest::{check_eq, Suite, TestResult};
fn declare(s: &mut Suite) {
    s.test("ok", || -> TestResult { check_eq!(1, 1); Ok(()) });
    s.test("boom", || { let v: Vec<u8> = Vec::new(); assert_eq!(v.len(), 1); });
}
leakhost_guest::suite!(declare);
