//! The data Kestra moves between components, in Kestra's JSON shape.
//!
//! `Execution`, `TaskRun` and `State` serialize exactly as Kestra's REST API prints them
//! (`state.current`, `state.histories`, `taskRunList[]` …), so tools written against Kestra
//! read flowbench's output unchanged.

mod execution;
mod log;
mod state;

pub use execution::{
    Execution, ExecutionMetadata, ExecutionTrigger, Label, TaskRun, TaskRunAttempt,
    WorkerTaskResult,
};
pub use log::{Level, LogEntry};
pub use state::{History, State, StateType, iso_duration};

/// The current instant, as every component stamps it.
pub fn now() -> jiff::Timestamp {
    jiff::Timestamp::now()
}

/// A fresh id in Kestra's form (`IdUtils.create()`, FriendlyId's `createFriendlyId`): a
/// random UUID written as a number in base 62 (`0-9A-Za-z`), at most 22 characters, like
/// `4wjtkzwVGBM9yKnjm3yv8r`. Ids are not ordered in time (Kestra's are not either): order
/// executions by their dates.
pub fn new_id() -> String {
    base62(uuid::Uuid::new_v4().as_u128())
}

/// `n` in FriendlyId's base 62, most significant digit first, without padding.
fn base62(mut n: u128) -> String {
    const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut id = Vec::with_capacity(22);
    loop {
        id.push(DIGITS[(n % 62) as usize]);
        n /= 62;
        if n == 0 {
            break;
        }
    }
    id.reverse();
    String::from_utf8(id).expect("base-62 digits are ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_kestras_short_base_62_form() {
        // FriendlyId's own example: c3587ec5-0976-497f-8374-61e0c2ea3da5.
        assert_eq!(
            base62(0xc3587ec5_0976_497f_8374_61e0c2ea3da5),
            "5wbwf6yUxVBcr48AMbz9cb"
        );
        assert_eq!(base62(0), "0");
        assert_eq!(base62(62), "10");
        assert_eq!(base62(u128::MAX), "7n42DGM5Tflk9n8mt7Fhc7");
        let ids: std::collections::HashSet<String> = (0..100).map(|_| new_id()).collect();
        assert_eq!(ids.len(), 100);
        assert!(
            ids.iter()
                .all(|id| id.len() <= 22 && id.bytes().all(|b| b.is_ascii_alphanumeric()))
        );
    }
}
