//! In-memory rate limiting for the receiver: per key (the trigger's
//! setting) and per client address for requests to unknown keys, so nobody
//! can probe keys at speed. No query per request; on PostgreSQL each node
//! counts its own share.

use inlet_core::rate_limit::{RateLimit, SlidingWindow};
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;

const MAX_TRACKED: usize = 100_000;

pub struct Limiters {
    per_key: Mutex<HashMap<String, SlidingWindow>>,
    unknown_per_ip: Mutex<HashMap<IpAddr, SlidingWindow>>,
    unknown_limit: RateLimit,
}

impl Limiters {
    pub fn new(unknown_key_limit_per_minute: u32) -> Self {
        Self {
            per_key: Mutex::new(HashMap::new()),
            unknown_per_ip: Mutex::new(HashMap::new()),
            unknown_limit: RateLimit {
                requests: unknown_key_limit_per_minute,
                window_seconds: 60,
            },
        }
    }

    /// Counts one request on the key; `Err(seconds)` when over its limit.
    pub fn acquire_key(&self, key_id: &str, limit: RateLimit, now_us: i64) -> Result<(), u64> {
        acquire(&self.per_key, key_id, limit, now_us, true)
    }

    /// Whether this address is refused for having probed too many unknown keys.
    pub fn unknown_key_block(&self, ip: IpAddr, now_us: i64) -> Result<(), u64> {
        acquire(&self.unknown_per_ip, &ip, self.unknown_limit, now_us, false)
    }

    pub fn count_unknown_key(&self, ip: IpAddr, now_us: i64) {
        let _ = acquire(&self.unknown_per_ip, &ip, self.unknown_limit, now_us, true);
    }
}

fn acquire<K, Q>(
    map: &Mutex<HashMap<K, SlidingWindow>>,
    key: &Q,
    limit: RateLimit,
    now_us: i64,
    count: bool,
) -> Result<(), u64>
where
    K: Eq + Hash + Borrow<Q>,
    Q: ?Sized + Eq + Hash + ToOwned<Owned = K>,
{
    let mut map = map.lock().expect("limiter lock");
    if map.len() >= MAX_TRACKED && !map.contains_key(key) {
        // Keys seen once long ago are the bulk; forgetting them only resets
        // windows, it never admits more than one extra window's worth.
        map.clear();
    }
    let window = match map.get_mut(key) {
        // A changed setting starts a fresh window.
        Some(window) if window.limit() == limit => window,
        _ => {
            map.insert(key.to_owned(), SlidingWindow::new(limit, now_us));
            map.get_mut(key).expect("just inserted")
        }
    };
    if count {
        window.try_acquire(now_us)
    } else {
        window.peek(now_us)
    }
}
