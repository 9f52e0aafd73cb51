//! Heap bytes a rule keeps alive, counted by a global allocator.
//!
//! `cargo run --release -p inlet-core --example rule_memory [N]` loads N rules (10,000 by
//! default) of two shapes as the engine's cache does (a [`StoredRule`] per stored JSON
//! spec), then compiles them (what the first event of their trigger does), and prints the
//! live heap per rule at each step. RSS is what the issue measured, but it also counts
//! allocator slack and other threads; live heap bytes are exact and repeatable.
//!
//! N=10,000, bytes per rule (issue's shape / bench/run's). Before (a `CompiledRule` per
//! rule, every rule compiled at load): 41,303 / 29,248. After: 336 / 347 loaded, which is
//! all a rule costs until an event of its trigger is evaluated; 25,923 / 26,224 compiled.

use inlet_core::automation::StoredRule;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to `System` unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The rule the issue describes: a comparison, a parameter that is one expression and a
/// literal one.
fn issue_rule(i: usize) -> String {
    serde_json::json!({
        "ref": format!("bench.other_{i}"), "trigger": "stripe.payment_succeeded", "action": "bench.true",
        "enabled": true, "condition": format!("payload.amount > {i}"),
        "parameters": {"customer": "{{ payload.customer }}", "n": i.to_string()},
    })
    .to_string()
}

/// The rule `bench/run` creates for `inlet-sqlite-rules`: its parameter is text around a
/// tag, a full template.
fn bench_rule(i: usize) -> String {
    serde_json::json!({
        "ref": format!("other.rule_{i}"), "trigger": "stripe.payment_succeeded", "action": "bench.true",
        "enabled": true, "condition": format!("payload.amount == {i} and payload.currency == 'eur'"),
        "parameters": {"n": format!("{{{{ payload.id }}}}-{i}")},
    })
    .to_string()
}

/// Live heap bytes per rule while `n` rules of `shape` are kept: loaded, then compiled.
fn bytes_per_rule(n: usize, shape: fn(usize) -> String) -> (f64, f64) {
    // One-time costs (the shared environment, lazily built) are not per rule.
    let _ = StoredRule::new(String::new(), shape(0)).compiled().is_ok();
    let before = LIVE.load(Ordering::Relaxed);
    let rules: Vec<StoredRule> = (0..n).map(|i| StoredRule::new(format!("rule_{i}"), shape(i))).collect();
    let loaded = LIVE.load(Ordering::Relaxed);
    for rule in &rules {
        rule.compiled().expect("the rule compiles");
    }
    let compiled = LIVE.load(Ordering::Relaxed);
    drop(rules);
    let per_rule = |bytes: isize| bytes as f64 / n as f64;
    (per_rule(loaded - before), per_rule(compiled - before))
}

fn main() {
    let n = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("N is a number"))
        .unwrap_or(10_000);
    for (name, shape) in [
        ("issue rule", issue_rule as fn(usize) -> String),
        ("bench rule", bench_rule),
    ] {
        let (loaded, compiled) = bytes_per_rule(n, shape);
        println!("{name}, N={n}: {loaded:.0} bytes per rule loaded, {compiled:.0} per rule compiled");
    }
}
