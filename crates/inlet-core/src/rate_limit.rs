//! Rate-limit arithmetic: a sliding-window counter. The estimate weighs the
//! previous window by how much of it still overlaps the sliding window, so
//! there is no burst of twice the limit at a window edge, and memory is two
//! counters per key.

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub requests: u32,
    pub window_seconds: u32,
}

#[derive(Debug, Clone)]
pub struct SlidingWindow {
    window_us: i64,
    limit: u32,
    current_start: i64,
    current: u32,
    previous: u32,
}

impl SlidingWindow {
    pub fn new(limit: RateLimit, now_us: i64) -> Self {
        Self {
            window_us: i64::from(limit.window_seconds.max(1)) * 1_000_000,
            limit: limit.requests,
            current_start: now_us,
            current: 0,
            previous: 0,
        }
    }

    pub fn limit(&self) -> RateLimit {
        RateLimit {
            requests: self.limit,
            window_seconds: (self.window_us / 1_000_000) as u32,
        }
    }

    fn roll(&mut self, now_us: i64) {
        let windows = (now_us - self.current_start).div_euclid(self.window_us);
        if windows >= 1 {
            self.previous = if windows == 1 { self.current } else { 0 };
            self.current = 0;
            self.current_start += windows * self.window_us;
        }
    }

    fn estimate(&self, now_us: i64) -> f64 {
        let elapsed = (now_us - self.current_start).clamp(0, self.window_us) as f64;
        let overlap = 1.0 - elapsed / self.window_us as f64;
        f64::from(self.previous) * overlap + f64::from(self.current)
    }

    /// Whether a request now would be refused (and the seconds to wait), without counting it.
    pub fn peek(&mut self, now_us: i64) -> Result<(), u64> {
        self.roll(now_us);
        if self.estimate(now_us) + 1.0 <= f64::from(self.limit) {
            Ok(())
        } else {
            Err((self.retry_after_us(now_us).max(0) as u64).div_ceil(1_000_000).max(1))
        }
    }

    /// Counts the request, or refuses it with the seconds to wait (at least 1).
    pub fn try_acquire(&mut self, now_us: i64) -> Result<(), u64> {
        self.peek(now_us)?;
        self.current += 1;
        Ok(())
    }

    /// When the estimate will have room for one more request.
    fn retry_after_us(&self, now_us: i64) -> i64 {
        let w = self.window_us as f64;
        let room = f64::from(self.limit) - 1.0;
        let wait_in_window = if f64::from(self.current) <= room && self.previous > 0 {
            // previous * (1 - e/w) + current <= room
            let e = w * (1.0 - (room - f64::from(self.current)) / f64::from(self.previous));
            Some(self.current_start + e.ceil() as i64 - now_us)
        } else {
            None
        };
        wait_in_window.unwrap_or_else(|| {
            // Next window: current becomes previous; current * (1 - x/w) <= room.
            let x = if self.current == 0 {
                0.0
            } else {
                w * (1.0 - room / f64::from(self.current)).max(0.0)
            };
            self.current_start + self.window_us + x.ceil() as i64 - now_us
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    fn limiter(requests: u32, window_seconds: u32) -> SlidingWindow {
        SlidingWindow::new(
            RateLimit {
                requests,
                window_seconds,
            },
            0,
        )
    }

    #[test]
    fn allows_the_limit_then_refuses() {
        let mut l = limiter(5, 60);
        for _ in 0..5 {
            assert!(l.try_acquire(S).is_ok());
        }
        let wait = l.try_acquire(S).unwrap_err();
        assert!((1..=120).contains(&wait), "{wait}");
        assert!(l.try_acquire(S + wait as i64 * S).is_ok());
    }

    #[test]
    fn no_double_burst_at_the_window_edge() {
        let mut l = limiter(100, 60);
        for _ in 0..100 {
            assert!(l.try_acquire(59 * S).is_ok());
        }
        // Just after the edge the previous window still weighs almost fully.
        let admitted = (0..100).filter(|_| l.try_acquire(61 * S).is_ok()).count();
        assert!(admitted <= 4, "admitted {admitted} right after the edge");
        // One whole window later everything has slid out.
        let admitted = (0..100).filter(|_| l.try_acquire(181 * S).is_ok()).count();
        assert_eq!(admitted, 100);
    }

    #[test]
    fn retry_after_is_honest() {
        let mut l = limiter(10, 10);
        for _ in 0..10 {
            l.try_acquire(0).unwrap();
        }
        let wait = l.try_acquire(0).unwrap_err();
        assert!(l.try_acquire((wait as i64 - 1) * S).is_err(), "too early at {wait}-1 s");
        assert!(l.try_acquire(wait as i64 * S).is_ok(), "allowed after {wait} s");
    }

    #[test]
    fn retry_after_within_a_window_with_history() {
        let mut l = limiter(10, 10);
        for _ in 0..10 {
            l.try_acquire(0).unwrap();
        }
        // 5 s into the next window: previous (10) weighs half -> 5 free.
        let admitted = (0..10).filter(|_| l.try_acquire(15 * S).is_ok()).count();
        assert_eq!(admitted, 5);
        let wait = l.try_acquire(15 * S).unwrap_err();
        assert!(l.try_acquire(15 * S + (wait as i64) * S).is_ok());
    }
}
