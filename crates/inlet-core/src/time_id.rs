//! Ids are UUID v7 text: their first 48 bits are the Unix time in
//! milliseconds, so ids sort by the time they were made. A time range over
//! rows keyed by such ids is a range of their keys, which the key's own
//! index serves; no second index on a time column is written per row.

use uuid::{NoContext, Timestamp, Uuid};

/// The lowest id that can be made at or after the millisecond of `micros`:
/// every id made before that millisecond sorts below it.
pub fn floor(micros: i64) -> String {
    let millis = micros.div_euclid(1_000).clamp(0, (1 << 48) - 1);
    format!("{:08x}-{:04x}-0000-0000-000000000000", millis >> 16, millis & 0xffff)
}

/// A new id as if made at `micros`, for rows whose time is given rather than
/// now (tests that place rows in the past).
pub fn made_at(micros: i64) -> String {
    let nanos = micros.max(0) * 1_000;
    let at = Timestamp::from_unix(
        NoContext,
        (nanos / 1_000_000_000) as u64,
        (nanos % 1_000_000_000) as u32,
    );
    Uuid::new_v7(at).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_made_before_a_millisecond_sort_below_its_floor_and_the_rest_at_or_above() {
        let at = 1_764_150_000_123_456; // 2025-11-26, mid-millisecond
        let floor = floor(at);
        assert!(made_at(at - 457) < floor, "the millisecond before");
        assert!(made_at(at - 456) >= floor, "the millisecond's first microsecond");
        assert!(made_at(at) >= floor);
        assert!(made_at(at + 10_000_000) > floor);
        assert!(Uuid::now_v7().to_string() > floor);
    }

    #[test]
    fn the_floor_has_the_shape_of_an_id() {
        assert_eq!(floor(0), "00000000-0000-0000-0000-000000000000");
        assert_eq!(floor(-5), floor(0));
        assert_eq!(floor(1_000).len(), Uuid::nil().to_string().len());
        assert_eq!(floor(65_536_000), "00000001-0000-0000-0000-000000000000");
    }
}
